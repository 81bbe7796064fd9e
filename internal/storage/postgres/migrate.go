package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
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

// migrate applies the migrations the database lacks, on a connection of
// its own holding migrationLock: a second node starting at the same time
// waits for the first, then finds nothing to do. Closing the connection
// ends the lock, whatever happens. A database already at the latest
// version is only read (so a read-only database opens, for reads).
func migrate(ctx context.Context, cfg *pgx.ConnConfig) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migration lock: %w", err)
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
		if err != nil {
			return fmt.Errorf("migration %d: %w", m.version, err)
		}
	}
	return nil
}
