// Package postgres is camotp's PostgreSQL database (github.com/jackc/pgx/v5
// with its native pool): the same storage.Store as the sqlite package, for
// sites that run several camotp nodes on one database. Behaviour is the
// same row for row: the schema keeps SQLite's columns (timestamps are
// milliseconds in BIGINT, secrets are BYTEA sealed by storage.Sealer), so
// a row copied from one backend opens in the other with the same master
// key.
//
// Rules that decide under concurrency are one conditional statement each
// (INSERT … ON CONFLICT … DO UPDATE … WHERE, UPDATE … WHERE … RETURNING),
// decided by the database across every node; what sqlite runs in one
// transaction runs in one transaction here (READ COMMITTED), retried when
// PostgreSQL reports a deadlock or a serialization failure. Every
// timestamp comes from the injected clock, passed as a parameter: no SQL
// reads the database's clock.
//
// Migrations: a tiny runner over the embedded migrations/*.sql rather than
// goose. The runner is some fifty lines on the pool we already hold, while
// goose would bring database/sql, a second connection pool through pgx's
// stdlib adapter and its own version table unlike sqlite's schema_version;
// our migrations are forward-only SQL, which is all the runner needs.
// Open runs it on a connection of its own under pg_advisory_lock, so nodes
// starting together migrate once and the others wait, then find nothing to
// do; the lock ends with that connection, however Open ends. Versions
// follow sqlite's: the first migration is 0007 (the schema of sqlite's
// version 7), so SchemaVersion means the same schema in both backends.
//
// Pool: the URL's pool_* parameters configure pgxpool, pool_max_conns
// above all (default: the greater of 4 and the number of CPUs), e.g.
// postgres://camotp@db/camotp?sslmode=verify-full&pool_max_conns=16. A
// connection attempt gives up after 5 s unless connect_timeout says
// otherwise, and an operation whose context has no deadline gets
// OpTimeout, so an unreachable or stuck server turns into an error, never
// a hang.
//
// Errors: a unique violation is storage.ErrExists, no row
// storage.ErrNotFound; a full disk (53100), a read-only transaction
// (25006, a standby or default_transaction_read_only), an I/O error, a
// shutting-down server (57P01-57P03) or a lost connection are
// *storage.UnavailableError, which servers answer with 503. After such an
// error the pool's connections are renewed, so a database that became
// writable again (a promoted standby) is used as soon as it is. An
// operation that outlives OpTimeout is *storage.UnavailableError
// "database not answering"; the caller's own deadline or cancellation is
// returned as it is.
//
// Text: PostgreSQL's TEXT holds valid UTF-8 without NUL, SQLite's any
// bytes. Throttle keys hold NUL and raw digests, so that column is BYTEA.
// A name a client sent (a username, a client or token ID) that is not such
// text matches no row, as it matches none in SQLite; the audit log keeps
// it with U+FFFD in place of the bad bytes rather than lose the row.
//
// Changes: Announce fires this node's watchers and NOTIFYs the others on
// the channel camotp_changes; the first Watch starts a listener on a
// connection of its own that LISTENs until Close, reconnects with backoff,
// and calls every watcher after a loss (it may have missed changes).
//
// Copying from SQLite (camotp migrate): columns and their meaning are
// SQLite's, with these types: INTEGER booleans (oidc_clients.public,
// oidc_auth_requests.code_used, cameras.online) are BOOLEAN; the throttle
// key is BYTEA; audit.id and outbox.id are identity columns (copy the ids,
// then move each sequence past the largest with setval); oidc_keys.seq
// stands in for SQLite's rowid (insert keys in rowid order).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// OpTimeout bounds an operation whose context has no deadline.
const OpTimeout = 15 * time.Second

// connectTimeout is the connection timeout when the URL sets none.
const connectTimeout = 5 * time.Second

// closeConn closes a connection of its own (migrations, the listener)
// without waiting on a server that does not answer.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn.Close(ctx)
}

// Store is the database.
type Store struct {
	pool   *pgxpool.Pool
	seal   storage.Sealer
	now    func() time.Time
	closed atomic.Bool
	// opTimeout bounds an operation whose context has no deadline
	// (OpTimeout; tests shorten it).
	opTimeout time.Duration

	resetting sync.Mutex // one pool reset at a time
	lastReset time.Time  // under resetting

	connConfig *pgx.ConnConfig // for the connections outside the pool
	changes    storage.Hub     // this node's watchers
	listenOnce sync.Once
	stopListen context.CancelFunc
	listening  sync.WaitGroup
	logf       func(msg string, err error)

	auditFailures atomic.Uint64
	auditFailed   func(model.AuditEntry, error)
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// string; see the package doc for the pool settings) and migrates it. now
// is the clock for timestamps (time.Now when nil).
func Open(ctx context.Context, url string, key *masterkey.Key, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err) // pgconn redacts the password
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	s := &Store{seal: storage.NewSealer(key), now: now, opTimeout: OpTimeout, connConfig: cfg.ConnConfig}
	if err := migrate(ctx, cfg.ConnConfig, migrationLockWait); err != nil {
		return nil, fmt.Errorf("migrate postgres: %w", classify(err))
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open postgres: %w", classify(err))
	}
	if err := s.linkLegacyAudit(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return s, nil
}

// Close closes the pool; calls after it fail with storage.ErrClosed.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) {
		s.listenOnce.Do(func() {}) // no listener after Close
		if s.stopListen != nil {
			s.stopListen()
		}
		s.listening.Wait()
		s.pool.Close()
	}
	return nil
}

// SetLogger sets where the store reports trouble no caller sees (the
// change listener's lost connection); errors only, never secrets.
func (s *Store) SetLogger(fn func(msg string, err error)) { s.logf = fn }

func (s *Store) log(msg string, err error) {
	if s.logf != nil {
		s.logf(msg, err)
	}
}

// run calls fn with ctx, bounded by OpTimeout when it has no deadline,
// and maps its error for the caller: ErrClosed after Close, an
// *storage.UnavailableError when the database cannot answer (OpTimeout
// expiring included; the caller's own deadline or cancel is returned as
// it is), pgx.ErrNoRows as it is, and renews the pool's connections after
// an error that may leave them useless (lost, or read-only: a standby
// promoted since, or a database made writable again, is seen only by new
// sessions).
func (s *Store) run(ctx context.Context, fn func(context.Context) error) error {
	octx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		octx, cancel = context.WithTimeout(ctx, s.opTimeout)
		defer cancel()
	}
	err := fn(octx)
	switch {
	case err == nil || errors.Is(err, pgx.ErrNoRows):
		return err
	case s.closed.Load():
		return storage.ErrClosed
	case isCode(err, "22021"): // a string argument PostgreSQL cannot hold
		// No row holds it, so nothing matched (see storable).
		return fmt.Errorf("%w (%w)", storage.ErrNotFound, errUnstorable)
	case ctx.Err() == nil && octx.Err() != nil:
		err = &storage.UnavailableError{Reason: "database not answering", Err: err}
	default:
		err = classify(err)
	}
	var ue *storage.UnavailableError
	if errors.As(err, &ue) {
		s.renew()
	}
	return err
}

// renewEvery bounds how often renew resets the pool: a flood of refused
// writes on a read-only database reconnects once a second, not per call.
const renewEvery = time.Second

// renew closes the pool's connections (those in use when they come back),
// so the next calls connect afresh.
func (s *Store) renew() {
	if !s.resetting.TryLock() {
		return
	}
	defer s.resetting.Unlock()
	if now := time.Now(); now.Sub(s.lastReset) >= renewEvery { // the real clock: a rate, not a timestamp
		s.lastReset = now
		s.pool.Reset()
	}
}

// classify turns the errors that mean "the database cannot take this now"
// into an *storage.UnavailableError; others are returned as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ue *storage.UnavailableError
	if errors.As(err, &ue) {
		return err
	}
	reason := ""
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		switch {
		case pe.Code == "53100": // disk_full
			reason = "disk full"
		case pe.Code == "25006": // read_only_sql_transaction
			reason = "read-only"
		case pe.Code == "58030": // io_error
			reason = "I/O error"
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutting down, starting up
			reason = "database unavailable"
		case pe.Code == "53300", pe.Code == "53200": // too many connections, out of memory
			reason = "database busy"
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			reason = "database unreachable"
		default:
			return err
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if errors.As(err, &ce) {
			reason = "database unreachable"
			break
		}
		return err // the caller's context, or OpTimeout: said as it is
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, net.ErrClosed):
		reason = "database unreachable"
	default:
		return err
	}
	return &storage.UnavailableError{Reason: reason, Err: err}
}

// isCode tells a PostgreSQL error of code.
func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// isUnique tells a unique violation.
func isUnique(err error) bool { return isCode(err, "23505") }

// retryable tells the errors after which a transaction is simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") // serialization failure, deadlock
}

// tx runs fn in one transaction, committed when fn returns nil and rolled
// back otherwise; run again (a few times) after a deadlock or
// serialization failure, so fn must only set what it sets afresh.
// fn gets the bounded context to use for its statements.
func (s *Store) tx(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	return s.run(ctx, func(ctx context.Context) error {
		var err error
		for range 4 {
			if err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) }); !retryable(err) {
				break
			}
		}
		return err
	})
}

// storable tells whether every string of args is text PostgreSQL can
// hold: valid UTF-8 without NUL. SQLite holds any bytes; a name a client
// sent (a username, a client ID, a token ID) may not be such text.
func storable(args []any) bool {
	for _, a := range args {
		if s, ok := a.(string); ok && (strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)) {
			return false
		}
	}
	return true
}

// errUnstorable refuses to store text PostgreSQL cannot hold.
var errUnstorable = errors.New("text with NUL or invalid UTF-8 cannot be stored")

// text makes s text PostgreSQL holds, for the audit log, which must not
// lose a row to what a client sent: invalid bytes and NUL become U+FFFD.
func text(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// exec runs one statement. A string argument PostgreSQL cannot hold
// matches no row (every row holds valid text): an UPDATE or DELETE
// changes nothing, an INSERT fails.
func (s *Store) exec(ctx context.Context, q string, args ...any) (tag pgconn.CommandTag, err error) {
	if !storable(args) {
		if strings.HasPrefix(strings.TrimSpace(q), "INSERT") {
			return tag, errUnstorable
		}
		return pgconn.NewCommandTag("UPDATE 0"), nil
	}
	err = s.run(ctx, func(ctx context.Context) error {
		tag, err = s.pool.Exec(ctx, q, args...)
		return err
	})
	return tag, err
}

// queryRow runs q and scans its one row into dest: pgx.ErrNoRows when
// there is none (also when a string argument is not text PostgreSQL can
// hold: no row holds it).
func (s *Store) queryRow(ctx context.Context, q string, args []any, dest ...any) error {
	return s.row(ctx, q, args, func(r pgx.Row) error { return r.Scan(dest...) })
}

// row is queryRow with a scan function.
func (s *Store) row(ctx context.Context, q string, args []any, scan func(pgx.Row) error) error {
	if !storable(args) {
		return pgx.ErrNoRows
	}
	return s.run(ctx, func(ctx context.Context) error {
		return scan(s.pool.QueryRow(ctx, q, args...))
	})
}

// query runs q and calls each for every row (none when a string argument
// is not text PostgreSQL can hold).
func (s *Store) query(ctx context.Context, q string, args []any, each func(pgx.Rows) error) error {
	if !storable(args) {
		return nil
	}
	return s.run(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// args is a readable way to pass query arguments.
func args(a ...any) []any { return a }

// ms is t in milliseconds since the epoch, 0 for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// msTime is the time of ms milliseconds, the zero time for 0.
func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// utc is ms as a UTC time (how timestamps of rows are returned).
func utc(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Audit appends an entry (At defaults to now), linked to one of the hash
// chains. Never put a secret in Detail. A failure is counted and told to
// the audit failure hook.
func (s *Store) Audit(ctx context.Context, e model.AuditEntry) error {
	err := s.tx(ctx, func(ctx context.Context, tx pgx.Tx) error { return s.appendAudit(ctx, tx, e) })
	if err != nil {
		err = fmt.Errorf("write audit: %w", classify(err))
		s.auditFailures.Add(1)
		if s.auditFailed != nil {
			s.auditFailed(e, err)
		}
		return err
	}
	return nil
}

// AuditLog returns the newest entries first, for subject when not empty.
func (s *Store) AuditLog(ctx context.Context, subject string, limit int) ([]model.AuditEntry, error) {
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	var out []model.AuditEntry
	err := s.query(ctx, `SELECT at, actor, action, subject, result, source_ip, detail FROM audit
		WHERE $1 = '' OR subject = $1 ORDER BY id DESC LIMIT $2`, args(subject, limit), func(r pgx.Rows) error {
		var e model.AuditEntry
		var at int64
		if err := r.Scan(&at, &e.Actor, &e.Action, &e.Subject, &e.Result, &e.SourceIP, &e.Detail); err != nil {
			return err
		}
		e.At = utc(at)
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	return out, nil
}

// SetAuditFailureHook sets fn to be told of every audit entry that could
// not be written (to log and count it); call it before serving.
func (s *Store) SetAuditFailureHook(fn func(e model.AuditEntry, err error)) { s.auditFailed = fn }

// AuditFailures is the number of audit entries that could not be written.
func (s *Store) AuditFailures() uint64 { return s.auditFailures.Load() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.run(ctx, s.pool.Ping); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// ProbeWrite tells whether the database takes a write now: it commits one
// tiny write. A full disk, a read-only database or a lost server fails it
// with an *storage.UnavailableError.
func (s *Store) ProbeWrite(ctx context.Context) error {
	_, err := s.exec(ctx, `INSERT INTO health (id, probed_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at`,
		s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}

// SchemaVersion returns the applied schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`, nil, &v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
