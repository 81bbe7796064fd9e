package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"

	"modernc.org/sqlite"

	"github.com/camotp/camotp/internal/storage"
)

// The writer: one goroutine holds the database's only write connection
// for the store's life and commits the writes of concurrent callers
// together (group commit): a commit costs far more than a statement, so N
// callers share one.
//
// It runs its transactions itself (BEGIN IMMEDIATE … COMMIT on its
// connection, statements prepared there once), not through database/sql's
// Tx: a Tx makes a statement handle per use and watches its context with
// a goroutine per query, which cost about as much as the statements
// themselves.

// maxGroup bounds how many writes share one commit.
const maxGroup = 256

// write is one statement, or one transaction function, waiting for the
// group commit.
type write struct {
	ctx  context.Context
	q    string // a statement (fn nil) and its args
	args []any
	fn   func(context.Context, *wtx) error
	res  sql.Result
	err  error
	done chan struct{}
}

// tx runs fn as one atomic unit on the writer and returns once it is
// committed: inside the writer's group transaction, whose other writes
// are kept when fn fails and fn's changes are not (see commit). fn must
// use only tx, with the context it is given (ctx's values, never
// cancelled: a write that began runs to its end), and may run more than
// once: when a write of its group fails, the group runs again. So fn sets
// what it reports to its caller (never appends to it), and calls nothing
// that must happen once. It may wrap an error in unchangedError when it
// changed nothing before failing (its group then needs no second run).
func (s *Store) tx(ctx context.Context, fn func(context.Context, *wtx) error) error {
	return s.enqueue(ctx, &write{ctx: ctx, fn: fn, done: make(chan struct{})})
}

// exec runs one write statement and returns once it is committed. Each
// statement is atomic on its own; one failing statement does not affect
// the others in its group.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	w := &write{ctx: ctx, q: q, args: args, done: make(chan struct{})}
	err := s.enqueue(ctx, w)
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

// wconn is the writer's connection with the statements prepared on it.
type wconn struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// stmt returns q prepared on the connection, preparing it once.
func (c *wconn) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.stmts[q]; ok {
		return st, nil
	}
	st, err := c.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.stmts[q] = st
	return st, nil
}

// run executes q (prepared once) with args.
func (c *wconn) run(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *wconn) close() {
	for _, st := range c.stmts {
		st.Close()
	}
	c.conn.Close()
}

// wtx is the writer's open transaction as a transaction function uses it:
// statements are given by their SQL and prepared once on the writer's
// connection.
type wtx struct{ c *wconn }

// ExecContext runs a statement.
func (t *wtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.c.run(ctx, q, args...)
}

// QueryRowContext runs a statement that returns at most one row.
func (t *wtx) QueryRowContext(ctx context.Context, q string, args ...any) scanner {
	st, err := t.c.stmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext runs a statement that returns rows.
func (t *wtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := t.c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ExecScript runs statements separated by semicolons, without arguments,
// unprepared (a migration).
func (t *wtx) ExecScript(ctx context.Context, q string) error {
	_, err := t.c.conn.ExecContext(ctx, q)
	return err
}

// writer commits queued writes in groups until Close.
func (s *Store) writer() {
	defer close(s.writerEnd)
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		s.refuse(fmt.Errorf("writer connection: %w", classify(err)))
		return
	}
	c := &wconn{conn: conn, stmts: map[string]*sql.Stmt{}}
	defer c.close()
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
					s.commit(c, append(group[:0], w))
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
		s.commit(c, group)
		if s.catchUp.Swap(false) {
			s.checkpoint(c)
		}
	}
}

// refuse fails every write with err until Close (the writer has no
// connection).
func (s *Store) refuse(err error) {
	for {
		select {
		case w := <-s.writes:
			w.err = err
			close(w.done)
		case <-s.closing:
			return
		}
	}
}

// checkpoint copies the frames the checkpointer has not (those written
// during its last pass) back into the database file, on the writer's
// connection between two groups: the next write transaction then begins
// with the whole WAL copied, and starts it over.
func (s *Store) checkpoint(c *wconn) {
	var busy, log, done int
	c.conn.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done) // retried when the WAL is still long
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
func (s *Store) commit(c *wconn, group []*write) {
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
	if !s.apply(c, group, false) {
		s.stats.reruns.Add(1)
		s.apply(c, group, true)
	}
	c.conn.Raw(func(dc any) error {
		n, _, err := dc.(sqlite.DBStatus).Status(sqlite.DBStatusCacheWrite, true)
		s.stats.pages.Add(uint64(n))
		return err
	})
}

// Transaction control, prepared once on the writer's connection.
const (
	beginSQL    = `BEGIN IMMEDIATE`
	commitSQL   = `COMMIT`
	rollbackSQL = `ROLLBACK`
)

// apply runs group in one transaction and commits it; with careful, each
// transaction function under a savepoint. Without careful it returns
// false, having rolled everything back, when a function of a group of
// several failed after changing something: run the group again with care.
func (s *Store) apply(c *wconn, group []*write, careful bool) bool {
	bg := context.Background()
	if _, err := c.run(bg, beginSQL); err != nil {
		for _, w := range group {
			w.res, w.err = nil, fmt.Errorf("begin: %w", classify(err))
		}
		return true
	}
	tx := &wtx{c}
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
			w.res, w.err = c.run(ctx, w.q, w.args...)
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
				c.run(bg, rollbackSQL)
				w.err = classify(err)
				return true
			default:
				c.run(bg, rollbackSQL)
				return false
			}
			continue
		}
		if w.err = classify(savepoint(ctx, tx, w.fn)); errors.Is(w.err, errUndo) {
			// The savepoint could not be undone: nothing of the group
			// commits.
			c.run(bg, rollbackSQL)
			for _, o := range group {
				o.res, o.err = nil, fmt.Errorf("transaction aborted: %w", w.err)
			}
			return true
		}
	}
	if _, err := c.run(bg, commitSQL); err != nil {
		c.run(bg, rollbackSQL) // a commit that failed may leave the transaction open
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

// errUndo marks a savepoint that could not be rolled back.
var errUndo = errors.New("undo savepoint")

// savepointSQL are the statements around a transaction function when its
// group runs with care: begin, undo, end.
var savepointSQL = [3]string{`SAVEPOINT w`, `ROLLBACK TO w`, `RELEASE w`}

// savepoint runs fn under a savepoint, rolled back when fn fails. It
// returns fn's error, wrapped in errUndo when the rollback failed too.
func savepoint(ctx context.Context, tx *wtx, fn func(context.Context, *wtx) error) error {
	if _, err := tx.c.run(ctx, savepointSQL[0]); err != nil {
		return fmt.Errorf("%w: %w", errUndo, err)
	}
	if err := fn(ctx, tx); err != nil {
		var u unchangedError
		if errors.As(err, &u) {
			err = u.error
		}
		if _, rerr := tx.c.run(ctx, savepointSQL[1]); rerr != nil {
			return fmt.Errorf("%w: %w (%w)", errUndo, rerr, err)
		}
		tx.c.run(ctx, savepointSQL[2])
		return err
	}
	if _, err := tx.c.run(ctx, savepointSQL[2]); err != nil {
		return fmt.Errorf("%w: %w", errUndo, err)
	}
	return nil
}
