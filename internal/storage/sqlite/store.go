// Package sqlite is camotp's SQLite database (modernc.org/sqlite, WAL): the
// fleet registry, users, camera assignments and the audit log, with schema
// migrations. Seeds are sealed with the master key (AES-GCM, the camera
// serial as associated data) before they reach a row. Consumers declare the
// narrow interfaces they need; *Store satisfies them.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Store is the database. Every write goes through one writer goroutine
// that commits concurrent callers' writes together (group commit); reads
// run on a separate pool of read-only connections, which WAL lets proceed
// while the writer commits.
type Store struct {
	db    *sql.DB // the writer's single connection, held by the writer
	rdb   *sql.DB // read-only connections
	path  string
	seal  storage.Sealer
	now   func() time.Time
	stmts sync.Map // query → *sql.Stmt on rdb

	writes    chan *write // statements and transactions, committed in groups
	closing   chan struct{}
	writerEnd chan struct{}
	ckptEnd   chan struct{}
	closeOnce sync.Once

	changes storage.Hub // one process owns the file: announcements stay here

	// catchUp asks the writer to checkpoint between two groups: the WAL
	// has grown past walRestartFrames since it last started over.
	catchUp atomic.Bool

	auditFailures atomic.Uint64
	auditFailed   func(model.AuditEntry, error)

	stats struct{ commits, writes, pages, checkpoints, reruns atomic.Uint64 }
}

// WriterStats are the writer's counters since Open.
type WriterStats struct {
	Commits, Writes, Pages uint64
	// Checkpoints are those the writer ran to let the WAL start over.
	Checkpoints uint64
	// Reruns are groups run a second time, with savepoints, after a
	// transaction function failed.
	Reruns uint64
}

// WriterStats returns how many group commits the writer made, how many
// writes they held, how many pages they wrote to the WAL, how many
// checkpoints it ran and how many groups it ran again.
func (s *Store) WriterStats() WriterStats {
	return WriterStats{s.stats.commits.Load(), s.stats.writes.Load(), s.stats.pages.Load(), s.stats.checkpoints.Load(),
		s.stats.reruns.Load()}
}

// Open opens (creating if needed) the database file at path and migrates it.
// now is the clock for timestamps (time.Now when nil).
func Open(ctx context.Context, path string, key *masterkey.Key, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "busy_timeout(5000)")
		q.Add("_pragma", "foreign_keys(ON)")
		if readOnly {
			q.Add("_pragma", "query_only(1)")
		} else {
			// Checkpoints (and their fsync) run on the checkpointer's own
			// connection, off the commit path.
			q.Add("_pragma", "wal_autocheckpoint(0)")
		}
		return "file:" + path + "?" + q.Encode()
	}
	// SQLite gives the -wal and -shm files the mode of the database file:
	// create it 0600 (and tighten an older one) so no file leaks secrets to
	// other local users.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	err = f.Chmod(0o600)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	for _, side := range []string{"-wal", "-shm"} {
		if err := os.Chmod(path+side, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("database %s: %w", path+side, err)
		}
	}
	db, err := sql.Open("sqlite", dsn(false))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One writer connection: SQLite has one writer anyway.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path, seal: storage.NewSealer(key), now: now, writes: make(chan *write, maxGroup),
		closing: make(chan struct{}), writerEnd: make(chan struct{}), ckptEnd: make(chan struct{})}
	go s.writer()
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	if err := s.linkLegacyAudit(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	// The read pool opens after migration, so the file is in WAL mode.
	if s.rdb, err = sql.Open("sqlite", dsn(true)); err != nil {
		s.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(2)
	s.rdb.SetMaxIdleConns(2)
	cdb, err := sql.Open("sqlite", dsn(true))
	if err != nil {
		close(s.ckptEnd)
		s.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	cdb.SetMaxOpenConns(1)
	go func() {
		defer close(s.ckptEnd)
		s.checkpointer(cdb)
	}()
	return s, nil
}

// checkpointInterval is how often the checkpointer copies the WAL back into
// the database file.
const checkpointInterval = 250 * time.Millisecond

// walRestartFrames is how long the WAL may grow (in frames, pages of 4 KiB)
// before the writer helps the checkpointer so that it starts over.
const walRestartFrames = 1000

// checkpointer runs passive checkpoints on its own connection until Close,
// so the writer does not pay for copying most pages and syncing the file.
//
// The WAL starts over from its beginning only when a write transaction
// begins with every frame copied back; under steady writes the checkpoint
// never catches up with the writer, and the WAL would grow without bound
// (gigabytes a minute at full load, and a page write appended to a growing
// file costs twice one that overwrites). So when the WAL is past
// walRestartFrames, the checkpointer asks the writer to checkpoint the
// frames written since its own pass, between two groups.
func (s *Store) checkpointer(db *sql.DB) {
	defer db.Close()
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			var busy, log, done int
			if err := db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil {
				continue // retried at the next tick
			}
			if log >= walRestartFrames {
				s.catchUp.Store(true)
			}
		}
	}
}

// Close closes the database, after committing the writes already queued.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.writerEnd
	if s.rdb != nil { // the checkpointer starts with the read pool
		<-s.ckptEnd
	}
	s.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	if s.rdb != nil {
		s.rdb.Close()
	}
	return s.db.Close()
}

var _ storage.Store = (*Store)(nil)

// Announce tells this process's watchers that topic changed (one process
// owns a SQLite database, so there is nobody else to tell).
func (s *Store) Announce(_ context.Context, topic string) error {
	s.changes.Fire(topic)
	return nil
}

// Watch calls fn whenever topic is announced.
func (s *Store) Watch(topic string, fn func()) (stop func()) { return s.changes.Watch(topic, fn) }

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
	// 3: organisation policy, the users' own MFA methods (authenticator
	// app), enrolments in progress, backup codes, last used method.
	`CREATE TABLE org_settings (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);
	CREATE TABLE mfa_methods (
		username   TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
		method     TEXT NOT NULL,
		secret     BLOB,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (username, method)
	);
	CREATE TABLE enrolments (
		username   TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
		method     TEXT NOT NULL,
		secret     BLOB,
		expires_at INTEGER NOT NULL,
		PRIMARY KEY (username, method)
	);
	CREATE TABLE backup_codes (
		username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
		hash     BLOB NOT NULL,
		used_at  INTEGER,
		PRIMARY KEY (username, hash)
	);
	ALTER TABLE users ADD COLUMN last_method TEXT NOT NULL DEFAULT '';`,
	// 4: codes sent by text, call or email; the confirmed phone number of a
	// phone method; the development outbox.
	`ALTER TABLE mfa_methods ADD COLUMN phone TEXT NOT NULL DEFAULT '';
	ALTER TABLE enrolments ADD COLUMN phone TEXT NOT NULL DEFAULT '';
	CREATE TABLE sent_codes (
		username   TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
		purpose    TEXT NOT NULL,
		hash       BLOB NOT NULL,
		expires_at INTEGER NOT NULL,
		sent_at    INTEGER NOT NULL,
		PRIMARY KEY (username, purpose)
	);
	CREATE TABLE outbox (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		at       INTEGER NOT NULL,
		channel  TEXT NOT NULL,
		address  TEXT NOT NULL,
		subject  TEXT NOT NULL,
		body     TEXT NOT NULL
	);`,
	// 5: throttles reserve a slot before an attempt is evaluated: the
	// counter holds attempts taken (in flight or failed), not failures.
	`ALTER TABLE throttle RENAME COLUMN failures TO attempts;
	CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), probed_at INTEGER NOT NULL);`,
	// 6: radius clients: the NASes (VPN concentrators, MDT gateways) allowed
	// to ask the RADIUS server, by source CIDR, each with its shared secret
	// sealed with the master key.
	`CREATE TABLE radius_clients (
		name       TEXT PRIMARY KEY,
		cidr       TEXT NOT NULL UNIQUE,
		secret     BLOB NOT NULL,
		created_at INTEGER NOT NULL
	);`,
	// 7: oidc clients, keys, auth requests; a stable random subject per
	// user for ID tokens (never the username).
	`ALTER TABLE users ADD COLUMN subject TEXT;
	UPDATE users SET subject = lower(hex(randomblob(16)));
	CREATE UNIQUE INDEX users_subject ON users(subject);
	CREATE TABLE oidc_clients (
		id            TEXT PRIMARY KEY,
		secret_hash   BLOB,
		public        INTEGER NOT NULL,
		redirect_uris TEXT NOT NULL,
		created_at    INTEGER NOT NULL
	);
	CREATE TABLE oidc_keys (
		id         TEXT PRIMARY KEY,
		alg        TEXT NOT NULL,
		sealed     BLOB NOT NULL,
		created_at INTEGER NOT NULL,
		retired_at INTEGER
	);
	CREATE TABLE oidc_auth_requests (
		id         TEXT PRIMARY KEY,
		client_id  TEXT NOT NULL,
		request    TEXT NOT NULL,
		signin     TEXT,
		code_hash  BLOB UNIQUE,
		code_used  INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE TABLE oidc_tokens (
		id           TEXT PRIMARY KEY,
		auth_request TEXT NOT NULL,
		client_id    TEXT NOT NULL,
		username     TEXT NOT NULL,
		scopes       TEXT NOT NULL,
		expires_at   INTEGER NOT NULL
	);
	CREATE INDEX oidc_tokens_request ON oidc_tokens(auth_request);`,
	// 8: camera presence in the database, so every node and the fleet
	// console agree on which cameras are online; presence_at orders the
	// broker's events (a late one never undoes a newer one). resent_at is
	// when a node last claimed the pending command for a resend.
	`ALTER TABLE cameras ADD COLUMN online INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE cameras ADD COLUMN presence_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE cameras ADD COLUMN resent_at INTEGER NOT NULL DEFAULT 0;`,
	// 9: the tables every sign-in writes keep their rows in their primary
	// key's b-tree (WITHOUT ROWID): a row written is one b-tree changed,
	// not a table and its key's index (fewer pages per commit).
	`CREATE TABLE tokens_9 (
		hash       BLOB PRIMARY KEY,
		kind       TEXT NOT NULL,
		username   TEXT NOT NULL,
		method     TEXT NOT NULL DEFAULT '',
		ip         TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	) WITHOUT ROWID;
	INSERT INTO tokens_9 (hash, kind, username, method, ip, created_at, expires_at)
		SELECT hash, kind, username, method, ip, created_at, expires_at FROM tokens;
	DROP TABLE tokens;
	ALTER TABLE tokens_9 RENAME TO tokens;
	CREATE INDEX tokens_user ON tokens(username, kind);
	CREATE TABLE throttle_9 (
		key           TEXT PRIMARY KEY,
		attempts      INTEGER NOT NULL DEFAULT 0,
		first_at      INTEGER NOT NULL DEFAULT 0,
		blocked_until INTEGER NOT NULL DEFAULT 0,
		level         INTEGER NOT NULL DEFAULT 0
	) WITHOUT ROWID;
	INSERT INTO throttle_9 (key, attempts, first_at, blocked_until, level)
		SELECT key, attempts, first_at, blocked_until, level FROM throttle;
	DROP TABLE throttle;
	ALTER TABLE throttle_9 RENAME TO throttle;
	CREATE TABLE otp_state_9 (
		subject       TEXT PRIMARY KEY,
		seed_version  INTEGER NOT NULL,
		last_step     INTEGER NOT NULL,
		drift         INTEGER NOT NULL DEFAULT 0,
		resync_offset INTEGER,
		resync_step   INTEGER
	) WITHOUT ROWID;
	INSERT INTO otp_state_9 (subject, seed_version, last_step, drift, resync_offset, resync_step)
		SELECT subject, seed_version, last_step, drift, resync_offset, resync_step FROM otp_state;
	DROP TABLE otp_state;
	ALTER TABLE otp_state_9 RENAME TO otp_state;`,
	// 10: the fleet console. Roles: admin, fleet, security and officer
	// (every other role, the old "user" above all, becomes officer), held
	// to those by triggers (SQLite cannot add a CHECK to a table). When a
	// camera proved its active seed (cameras before this version: their
	// last change). When a code of a source was last accepted (before
	// this version: the time of its last step, 30 s steps).
	`UPDATE users SET role = 'officer' WHERE role NOT IN ('admin', 'fleet', 'security', 'officer');
	CREATE TRIGGER users_role_insert BEFORE INSERT ON users
		WHEN NEW.role NOT IN ('admin', 'fleet', 'security', 'officer')
		BEGIN SELECT RAISE(ABORT, 'role must be admin, fleet, security or officer'); END;
	CREATE TRIGGER users_role_update BEFORE UPDATE OF role ON users
		WHEN NEW.role NOT IN ('admin', 'fleet', 'security', 'officer')
		BEGIN SELECT RAISE(ABORT, 'role must be admin, fleet, security or officer'); END;
	ALTER TABLE cameras ADD COLUMN seed_at INTEGER;
	UPDATE cameras SET seed_at = updated_at WHERE seed IS NOT NULL;
	ALTER TABLE otp_state ADD COLUMN used_at INTEGER NOT NULL DEFAULT 0;
	UPDATE otp_state SET used_at = (last_step - drift) * 30000 WHERE last_step >= 0;`,
	// 11: the audit log's hash chain (one here: one process writes).
	// Each row gets its place and MAC; the head keeps the last of both.
	// The rows already there are linked when the store opens with the
	// master key (legacy_upto: up to which id), before any new row.
	`ALTER TABLE audit ADD COLUMN chain INTEGER;
	ALTER TABLE audit ADD COLUMN seq INTEGER;
	ALTER TABLE audit ADD COLUMN mac BLOB;
	CREATE UNIQUE INDEX audit_chain ON audit(chain, seq);
	CREATE TABLE audit_head (
		chain       INTEGER PRIMARY KEY,
		seq         INTEGER NOT NULL DEFAULT 0,
		mac         BLOB,
		legacy_upto INTEGER NOT NULL DEFAULT 0
	);
	INSERT INTO audit_head (chain, legacy_upto) SELECT 0, COALESCE(MAX(id), 0) FROM audit;`,
	// 12: lost or stolen cameras: when a camera was reported, by whom,
	// why, and the highest provisioning version it had then (found needs
	// a seed proven under a later one). NULL lost_at: not lost.
	`ALTER TABLE cameras ADD COLUMN lost_at INTEGER;
	ALTER TABLE cameras ADD COLUMN lost_by TEXT;
	ALTER TABLE cameras ADD COLUMN lost_reason TEXT;
	ALTER TABLE cameras ADD COLUMN lost_version INTEGER;
	CREATE INDEX cameras_lost ON cameras(lost_at) WHERE lost_at IS NOT NULL;`,
	// 13: clock telemetry: per camera the last signed clock report kept
	// (seq, its counter, refuses replays), the offset and round trip it
	// gave (ms), when the server received it (ms), and since when the
	// camera's clock is past the alert threshold or disagrees with its
	// codes (ms; NULL: not so); and each camera's outstanding clock
	// challenge (the nonce its next report must sign, when it was sent).
	`CREATE TABLE camera_clock (
		serial         TEXT PRIMARY KEY,
		seq            INTEGER NOT NULL,
		offset_ms      INTEGER NOT NULL,
		rtt_ms         INTEGER NOT NULL,
		reported_at    INTEGER NOT NULL,
		drifting_since INTEGER,
		mismatch_since INTEGER
	) WITHOUT ROWID;
	CREATE TABLE clock_challenges (
		serial  TEXT PRIMARY KEY,
		nonce   BLOB NOT NULL,
		sent_at INTEGER NOT NULL
	) WITHOUT ROWID;`,
	// 14: scheduled seed rollover. rotation_at is when a node last claimed
	// the camera for a scheduled rotation; rotation_hours counts the
	// scheduled rotations started in each hour by every node (the hourly
	// share of the fleet). prev_seed is the seed the last rotation
	// replaced, its codes accepted until prev_until (model.RotationGrace).
	`ALTER TABLE cameras ADD COLUMN rotation_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE cameras ADD COLUMN prev_seed BLOB;
	ALTER TABLE cameras ADD COLUMN prev_until INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE rotation_hours (
		hour    INTEGER PRIMARY KEY,
		started INTEGER NOT NULL DEFAULT 0
	);`,
}

func (s *Store) migrate(ctx context.Context) error {
	var v int
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
		if err := tx.ExecScript(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	})
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this camotp (%d)", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		err := s.tx(ctx, func(ctx context.Context, tx *wtx) error {
			if err := tx.ExecScript(ctx, migrations[i]); err != nil {
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
	err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

// Audit appends an entry (At defaults to now), linked to the hash
// chain. Never put a secret in Detail.
func (s *Store) Audit(ctx context.Context, e model.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx *wtx) error { return s.appendAudit(ctx, tx, e) })
	if err != nil {
		err = fmt.Errorf("write audit: %w", err)
		s.auditFailures.Add(1)
		if s.auditFailed != nil {
			s.auditFailed(e, err)
		}
		return err
	}
	return nil
}

// Statements of the hash chain's head.
const (
	auditHead    = `SELECT seq, mac FROM audit_head WHERE chain = 0`
	setAuditHead = `UPDATE audit_head SET seq = ?, mac = ? WHERE chain = 0`
	insertAudit  = `INSERT INTO audit (at, actor, action, subject, result, source_ip, detail, chain, seq, mac) VALUES (?,?,?,?,?,?,?,0,?,?)`
)

// appendAudit links e to the chain's head and appends it, in tx.
func (s *Store) appendAudit(ctx context.Context, tx *wtx, e model.AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	var seq int64
	var mac []byte
	if err := tx.QueryRowContext(ctx, auditHead).Scan(&seq, &mac); err != nil {
		return fmt.Errorf("audit chain head: %w", err)
	}
	e.Chain = 0
	s.seal.Link(&e, seq, mac)
	if _, err := tx.ExecContext(ctx, insertAudit, e.At.UnixMilli(), e.Actor, e.Action, e.Subject, e.Result, e.SourceIP, e.Detail, e.Seq, e.MAC); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, setAuditHead, e.Seq, e.MAC)
	return err
}

// AuditLog returns the newest entries first, for subject when not empty.
func (s *Store) AuditLog(ctx context.Context, subject string, limit int) ([]model.AuditEntry, error) {
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	rows, err := s.query(ctx, `SELECT at, actor, action, subject, result, source_ip, detail FROM audit
		WHERE ? = '' OR subject = ? ORDER BY id DESC LIMIT ?`, subject, subject, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	var out []model.AuditEntry
	for rows.Next() {
		var e model.AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Subject, &e.Result, &e.SourceIP, &e.Detail); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// stmt returns the prepared read statement for q, preparing it once.
// Parsing SQL was a quarter of a verification's cost before statements
// were kept.
func (s *Store) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	return prepared(ctx, s.rdb, &s.stmts, q)
}

func prepared(ctx context.Context, db *sql.DB, cache *sync.Map, q string) (*sql.Stmt, error) {
	if st, ok := cache.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := cache.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// errRow is a row whose Scan reports a prepare error.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type scanner interface{ Scan(...any) error }

// queryRow runs a read of one row. It is not interrupted when ctx is
// cancelled: a row read by key takes microseconds, while a cancellable
// context costs two goroutines per query (database/sql's watcher and the
// driver's), a tenth of a sign-in's reads.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) scanner {
	ctx = context.WithoutCancel(ctx)
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
