// Package store is camotp's SQLite database (modernc.org/sqlite, WAL): the
// fleet registry, users, camera assignments and the audit log, with schema
// migrations. Seeds are sealed with the master key (AES-GCM, the camera
// serial as associated data) before they reach a row. Consumers declare the
// narrow interfaces they need; *Store satisfies them.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/camotp/camotp/internal/masterkey"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("conflict")
)

// Store is the database.
type Store struct {
	db    *sql.DB
	key   *masterkey.Key
	now   func() time.Time
	stmts sync.Map // query → *sql.Stmt
}

// Open opens (creating if needed) the database file at path and migrates it.
// now is the clock for timestamps (time.Now when nil).
func Open(ctx context.Context, path string, key *masterkey.Key, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and queueing in
	// database/sql is far cheaper than SQLite's sleeping busy handler.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, key: key, now: now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	return s.db.Close()
}

// DB exposes the handle for packages that keep their own tables here.
func (s *Store) DB() *sql.DB { return s.db }

// migrations are applied in order, each once; never edit a released one.
var migrations = []string{
	// 1: fleet registry, users, audit.
	`CREATE TABLE users (
		username      TEXT PRIMARY KEY,
		email         TEXT NOT NULL,
		phone         TEXT NOT NULL DEFAULT '',
		password_hash TEXT NOT NULL,
		role          TEXT NOT NULL DEFAULT 'user',
		created_at    INTEGER NOT NULL
	);
	CREATE TABLE cameras (
		serial            TEXT PRIMARY KEY,
		model             TEXT NOT NULL,
		public_key        TEXT NOT NULL,
		state             TEXT NOT NULL,
		version           INTEGER NOT NULL DEFAULT 0,
		seed              BLOB,
		pending_op        TEXT,
		pending_version   INTEGER,
		pending_seed      BLOB,
		pending_challenge BLOB,
		pending_payload   BLOB,
		assigned_user     TEXT UNIQUE REFERENCES users(username) ON DELETE SET NULL,
		last_seen         INTEGER,
		created_at        INTEGER NOT NULL,
		updated_at        INTEGER NOT NULL
	);
	CREATE TABLE audit (
		id        INTEGER PRIMARY KEY AUTOINCREMENT,
		at        INTEGER NOT NULL,
		actor     TEXT NOT NULL,
		action    TEXT NOT NULL,
		subject   TEXT NOT NULL,
		result    TEXT NOT NULL,
		source_ip TEXT NOT NULL DEFAULT '',
		detail    TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX audit_subject ON audit(subject, at);`,
	// 2: verifier state: one-time-code replay/drift records, throttling
	// counters, and tokens (pending MFA, sessions, trusted browsers).
	`CREATE TABLE otp_state (
		subject       TEXT PRIMARY KEY,
		seed_version  INTEGER NOT NULL,
		last_step     INTEGER NOT NULL,
		drift         INTEGER NOT NULL DEFAULT 0,
		resync_offset INTEGER,
		resync_step   INTEGER
	);
	CREATE TABLE throttle (
		key           TEXT PRIMARY KEY,
		failures      INTEGER NOT NULL DEFAULT 0,
		first_at      INTEGER NOT NULL DEFAULT 0,
		blocked_until INTEGER NOT NULL DEFAULT 0,
		level         INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE tokens (
		hash       BLOB PRIMARY KEY,
		kind       TEXT NOT NULL,
		username   TEXT NOT NULL,
		method     TEXT NOT NULL DEFAULT '',
		ip         TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX tokens_user ON tokens(username, kind);`,
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this camotp (%d)", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, i+1)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion returns the applied schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// AuditEntry is one audit log row.
type AuditEntry struct {
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Subject  string    `json:"subject"`
	Result   string    `json:"result"`
	SourceIP string    `json:"sourceIp,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// Audit appends an entry (At defaults to now). Never put a secret in Detail.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.exec(ctx, `INSERT INTO audit (at, actor, action, subject, result, source_ip, detail) VALUES (?,?,?,?,?,?,?)`,
		e.At.UnixMilli(), e.Actor, e.Action, e.Subject, e.Result, e.SourceIP, e.Detail)
	if err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

// AuditLog returns the newest entries first, for subject when not empty.
func (s *Store) AuditLog(ctx context.Context, subject string, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	rows, err := s.query(ctx, `SELECT at, actor, action, subject, result, source_ip, detail FROM audit
		WHERE ? = '' OR subject = ? ORDER BY id DESC LIMIT ?`, subject, subject, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Subject, &e.Result, &e.SourceIP, &e.Detail); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// stmt returns the prepared statement for q, preparing it once. Parsing SQL
// was a quarter of a verification's cost before statements were kept.
func (s *Store) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// errRow is a row whose Scan reports a prepare error.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type scanner interface{ Scan(...any) error }

func (s *Store) queryRow(ctx context.Context, q string, args ...any) scanner {
	st, err := s.stmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}
