package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrationFiles are the migrations, NNNN_name.sql, applied in the order of
// NNNN, each once; never edit a released one.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one file of migrationFiles.
type migration struct {
	version int
	sql     string
}

// migrations reads migrationFiles in version order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		num, _, ok := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: the name must start with its version, NNNN_", name)
		}
		data, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, sql: string(data)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("two migrations with version %d", out[i].version)
		}
	}
	return out, nil
}

// migrationLock is the pg_advisory_lock key migrations run under ("camotp"
// in ASCII).
const migrationLock = int64(0x63616d6f7470)

// Time limits of migrations: how long a schema change waits for a table
// lock, and how long a node waits for another node's migrations.
const (
	migrationLockWait = 30 * time.Second
	migrationNodeWait = 10 * time.Minute
)

// advisoryLock takes migrationLock, trying again until wait has passed.
func advisoryLock(ctx context.Context, conn *pgx.Conn, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, migrationLock).Scan(&ok); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("migration lock: another node has been migrating the schema for over %s", wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("migration lock: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// migrate applies the migrations the database lacks, on a connection of
// its own holding migrationLock: a second node starting at the same time
// waits for the first, then finds nothing to do. Closing the connection
// ends the lock, whatever happens. A database already at the latest
// version is only read (so a read-only database opens, for reads).
func migrate(ctx context.Context, cfg *pgx.ConnConfig, lockWait time.Duration) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	// A schema change waiting behind another session's lock (a long
	// transaction, a pg_dump) gives up instead of hanging this start and,
	// queued ahead of them, every other node's reads of that table.
	if _, err := conn.Exec(ctx, fmt.Sprintf(`SET lock_timeout = %d`, lockWait.Milliseconds())); err != nil {
		return err
	}
	if err := advisoryLock(ctx, conn, migrationNodeWait); err != nil {
		return err
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_version') IS NOT NULL`).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return err
		}
	}
	var v int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if latest := all[len(all)-1].version; v > latest {
		return fmt.Errorf("database schema version %d is newer than this camotp (%d)", v, latest)
	}
	for _, m := range all {
		if m.version <= v {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, m.version)
			return err
		})
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55P03" {
			return fmt.Errorf("migration %d waited %s for a lock another session holds on the tables (a long transaction or a dump? see pg_stat_activity): %w", m.version, lockWait, err)
		}
		if err != nil {
			return fmt.Errorf("migration %d: %w", m.version, err)
		}
	}
	return nil
}
