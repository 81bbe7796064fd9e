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
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Store is the database. Every write goes through one writer goroutine
// that commits concurrent callers' writes together (group commit); reads
// run on a separate pool of read-only connections, which WAL lets proceed
// while the writer commits.
type Store struct {
	db     *sql.DB // the writer's single connection
	rdb    *sql.DB // read-only connections
	path   string
	seal   storage.Sealer
	now    func() time.Time
	stmts  sync.Map // query → *sql.Stmt on rdb
	wstmts sync.Map // query → *sql.Stmt on db

	writes    chan *write // statements and transactions, committed in groups
	closing   chan struct{}
	writerEnd chan struct{}
	ckptEnd   chan struct{}
	closeOnce sync.Once

	sp [3]*sql.Stmt // savepointSQL, prepared on the writer's connection

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
			q.Set("_txlock", "immediate")
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
	for i, q := range savepointSQL {
		if s.sp[i], err = db.PrepareContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("open database %s: %w", path, classify(err))
		}
	}
	go s.writer()
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
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
	for _, m := range []*sync.Map{&s.stmts, &s.wstmts} {
		m.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	}
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
		err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
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
	err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

// tx runs fn as one atomic unit on the writer and returns once it is
// committed: inside the writer's group transaction, whose other writes
// are kept when fn fails and fn's changes are not (see commit). fn must
// use only tx, with the context it is given (ctx's values, never
// cancelled: a write that began runs to its end), and may run more than
// once: when a write of its group
// fails, the group runs again. So fn sets what it reports to its caller
// (never appends to it), and calls nothing that must happen once. It may
// wrap an error in unchangedError when it changed nothing before failing
// (its group then needs no second run).
func (s *Store) tx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return s.enqueue(ctx, &write{ctx: ctx, fn: fn, done: make(chan struct{})})
}

// Audit appends an entry (At defaults to now). Never put a secret in Detail.
func (s *Store) Audit(ctx context.Context, e model.AuditEntry) error {
	_, err := s.exec(ctx, insertAudit, s.auditArgs(e)...)
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

const insertAudit = `INSERT INTO audit (at, actor, action, subject, result, source_ip, detail) VALUES (?,?,?,?,?,?,?)`

func (s *Store) auditArgs(e model.AuditEntry) []any {
	if e.At.IsZero() {
		e.At = s.now()
	}
	return []any{e.At.UnixMilli(), e.Actor, e.Action, e.Subject, e.Result, e.SourceIP, e.Detail}
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

// maxGroup bounds how many writes share one commit.
const maxGroup = 256

// write is one statement, or one transaction function, waiting for the
// group commit.
type write struct {
	ctx  context.Context
	st   *sql.Stmt
	args []any
	fn   func(context.Context, *sql.Tx) error
	res  sql.Result
	err  error
	done chan struct{}
}

// errUndo marks a savepoint that could not be rolled back.
var errUndo = errors.New("undo savepoint")

// savepointSQL are the statements around each transaction function in a
// group: begin, undo, end. They run once per write, so they are prepared
// once (at Open) rather than parsed every time.
var savepointSQL = [3]string{`SAVEPOINT w`, `ROLLBACK TO w`, `RELEASE w`}

// savepoint runs fn under a savepoint, rolled back when fn fails. It
// returns fn's error, wrapped in errUndo when the rollback failed too.
func (s *Store) savepoint(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) error {
	begin, undo, end := tx.Stmt(s.sp[0]), tx.Stmt(s.sp[1]), tx.Stmt(s.sp[2])
	if _, err := begin.Exec(); err != nil {
		return fmt.Errorf("%w: %w", errUndo, err)
	}
	if err := fn(ctx, tx); err != nil {
		var u unchangedError
		if errors.As(err, &u) {
			err = u.error
		}
		if _, rerr := undo.Exec(); rerr != nil {
			return fmt.Errorf("%w: %w (%w)", errUndo, rerr, err)
		}
		end.Exec()
		return err
	}
	if _, err := end.Exec(); err != nil {
		return fmt.Errorf("%w: %w", errUndo, err)
	}
	return nil
}

// exec runs one write statement and returns once it is committed. Writes
// from concurrent callers are committed together (group commit): a commit
// costs far more than a statement, so N callers share one. Each statement
// is atomic on its own; one failing statement does not affect the others
// in its group.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s.closed() { // the writer's connection is closed or closing
		return nil, storage.ErrClosed
	}
	st, err := prepared(ctx, s.db, &s.wstmts, q)
	if err != nil {
		return nil, err
	}
	w := &write{ctx: ctx, st: st, args: args, done: make(chan struct{})}
	err = s.enqueue(ctx, w)
	return w.res, err
}

// closed says whether Close has begun.
func (s *Store) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// enqueue hands w to the writer and waits until it is committed;
// ErrClosed once Close has begun.
func (s *Store) enqueue(ctx context.Context, w *write) error {
	if s.closed() {
		return storage.ErrClosed
	}
	select {
	case s.writes <- w:
	case <-s.closing:
		return storage.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-w.done:
	case <-s.writerEnd:
		// The writer has stopped. It closes done before it ends, so w
		// was either committed or is left in the queue for good (it
		// arrived after the writer's last look).
		select {
		case <-w.done:
		default:
			return storage.ErrClosed
		}
	}
	return w.err
}

// writer commits queued writes in groups until Close.
func (s *Store) writer() {
	defer close(s.writerEnd)
	group := make([]*write, 0, maxGroup)
	for {
		var first *write
		select {
		case first = <-s.writes:
		case <-s.closing:
			// Commit what is queued, then refuse the rest.
			for {
				select {
				case w := <-s.writes:
					s.commit(append(group[:0], w))
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
		// Let runnable callers reach the queue before committing: on a
		// busy machine they join this group instead of paying a commit.
		runtime.Gosched()
	more:
		for len(group) < maxGroup {
			select {
			case w := <-s.writes:
				group = append(group, w)
			default:
				break more
			}
		}
		s.commit(group)
		if s.catchUp.Swap(false) {
			s.checkpoint()
		}
	}
}

// checkpoint copies the frames the checkpointer has not (those written
// during its last pass) back into the database file, on the writer's
// connection between two groups: the next write transaction then begins
// with the whole WAL copied, and starts it over.
func (s *Store) checkpoint() {
	var busy, log, done int
	s.db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done) // retried when the WAL is still long
	s.stats.checkpoints.Add(1)
}

// commit runs a group of writes in one transaction and wakes their callers.
//
// The writes run one after another with nothing around them: a group in
// which every transaction function succeeds — almost every group — commits
// as it ran. When a function fails after changing something, its changes
// cannot be undone alone: the transaction is rolled back and the group runs
// again, each function under a savepoint rolled back when it fails (see
// savepoint). The savepoints cost a statement before and after every
// function and a copy of each page it changes, a sixth of the writer's
// time when they were always there.
func (s *Store) commit(group []*write) {
	// A CPU profile counts the commit under the profiler labels of the
	// caller whose write opened the group (pprof -tagfocus).
	pprof.SetGoroutineLabels(group[0].ctx)
	defer func() {
		for _, w := range group {
			close(w.done)
		}
		pprof.SetGoroutineLabels(context.Background())
	}()
	s.stats.commits.Add(1)
	s.stats.writes.Add(uint64(len(group)))
	if !s.apply(group, false) {
		s.stats.reruns.Add(1)
		s.apply(group, true)
	}
}

// apply runs group in one transaction and commits it; with careful, each
// transaction function under a savepoint. Without careful it returns
// false, having rolled everything back, when a function of a group of
// several failed after changing something: run the group again with care.
func (s *Store) apply(group []*write, careful bool) bool {
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		for _, w := range group {
			w.err = fmt.Errorf("begin: %w", classify(err))
		}
		return true
	}
	defer func() {
		conn.Raw(func(dc any) error {
			n, _, err := dc.(sqlite.DBStatus).Status(sqlite.DBStatusCacheWrite, true)
			s.stats.pages.Add(uint64(n))
			return err
		})
		conn.Close()
	}()
	tx, err := conn.BeginTx(context.Background(), nil)
	if err != nil {
		for _, w := range group {
			w.err = fmt.Errorf("begin: %w", classify(err))
		}
		return true
	}
	for _, w := range group {
		w.res, w.err = nil, nil
		if err := w.ctx.Err(); err != nil {
			w.err = err
			continue
		}
		// Once it runs, a write runs to its end, whether or not its
		// caller still waits (it cannot leave the group anyway): no
		// statement of it is interrupted, and none costs the goroutines
		// that watch a cancellable context.
		ctx := context.WithoutCancel(w.ctx)
		if w.fn == nil {
			// One statement is atomic on its own: SQLite undoes a failed
			// one, and the transaction goes on.
			w.res, w.err = tx.StmtContext(ctx, w.st).ExecContext(ctx, w.args...)
			w.err = classify(w.err)
			continue
		}
		if !careful {
			err := w.fn(ctx, tx)
			var u unchangedError
			switch {
			case err == nil:
			case errors.As(err, &u):
				w.err = classify(u.error) // nothing to undo
			case len(group) == 1:
				// Its changes are all the transaction holds.
				tx.Rollback()
				w.err = classify(err)
				return true
			default:
				tx.Rollback()
				return false
			}
			continue
		}
		if w.err = classify(s.savepoint(ctx, tx, w.fn)); errors.Is(w.err, errUndo) {
			// The savepoint could not be undone: nothing of the group
			// commits.
			tx.Rollback()
			for _, o := range group {
				o.res, o.err = nil, fmt.Errorf("transaction aborted: %w", w.err)
			}
			return true
		}
	}
	if err := tx.Commit(); err != nil {
		for _, w := range group {
			w.res, w.err = nil, fmt.Errorf("commit: %w", classify(err))
		}
	}
	return true
}

// unchangedError is the error of a transaction function that failed
// before it changed anything (a conditional statement that found its
// condition false, first thing): its group needs no undo.
type unchangedError struct{ error }

func (e unchangedError) Unwrap() error { return e.error }

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
