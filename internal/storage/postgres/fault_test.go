package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// proxy forwards TCP connections to PostgreSQL and can cut them all (the
// server is gone: connections reset, new ones refused) or freeze them (the
// server or the network hangs: nothing passes, nothing closes).
type proxy struct {
	ln     net.Listener
	target string
	addr   string

	mu     sync.Mutex
	conns  []net.Conn
	frozen bool
	cut    bool
	thaw   chan struct{}
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{target: target, thaw: make(chan struct{})}
	p.listen(t, "127.0.0.1:0")
	t.Cleanup(func() { p.Cut(); p.Thaw() })
	return p
}

func (p *proxy) listen(t *testing.T, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p.ln, p.addr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

func (p *proxy) serve(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns = append(p.conns, c, u)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			p.mu.Lock()
			thaw := p.thaw
			frozen := p.frozen
			p.mu.Unlock()
			if frozen {
				<-thaw // hold the bytes until thawed (or cut)
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				dst.Close()
				return
			}
		}
	}
	go pipe(u, c)
	go pipe(c, u)
}

// Cut closes every connection and refuses new ones.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore listens again on the same address.
func (p *proxy) Restore(t *testing.T) {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
	p.listen(t, p.addr)
}

// Freeze stops every byte from passing, in both directions.
func (p *proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen = true
		p.thaw = make(chan struct{})
	}
}

// Thaw lets bytes pass again.
func (p *proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thaw)
	}
}

// viaProxy returns u with its host replaced by the proxy's address.
func viaProxy(t *testing.T, u string, p *proxy) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Host = p.addr
	return pu.String()
}

func targetOf(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Host
}

func unavailable(err error) (string, bool) {
	var ue *storage.UnavailableError
	if errors.As(err, &ue) {
		return ue.Reason, true
	}
	return "", false
}

// The database going away mid-run (connections reset, new ones refused)
// fails calls at once with an *UnavailableError, never a hang; the store
// works again once the database is back.
func TestDatabaseGone(t *testing.T) {
	u := freshURL(t)
	p := startProxy(t, targetOf(t, u))
	s := openURL(t, viaProxy(t, u, p), nil)
	ctx := context.Background()
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	for _, call := range []struct {
		name string
		fn   func() error
	}{
		{"probe", func() error { return s.ProbeWrite(ctx) }},
		{"ping", func() error { return s.Ping(ctx) }},
		{"accept step", func() error { _, err := s.AcceptStep(ctx, "x", 1, 1, 0); return err }},
		{"reserve", func() error { _, err := s.ReserveAttempt(ctx, time.Now(), pairRule("k")); return err }},
		{"user", func() error { _, _, err := s.User(ctx, "alice"); return err }},
		{"users", func() error { _, err := s.Users(ctx); return err }},
	} {
		start := time.Now()
		err := call.fn()
		reason, ok := unavailable(err)
		if !ok || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s with the database gone: %v, want an UnavailableError", call.name, err)
		}
		if d := time.Since(start); d > 10*time.Second { // no retry loop, no wait on a dead address
			t.Errorf("%s took %v to fail", call.name, d)
		}
		t.Logf("%s: %q (%v)", call.name, reason, err)
	}
	p.Restore(t)
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatalf("after the database came back: %v", err)
	}
}

// A database that stops answering (a hung server, a dead network path)
// fails a call without a deadline after the operation timeout with an
// *UnavailableError, and a caller's own deadline with that deadline's
// error; none hangs. Thawed, the store works again.
func TestDatabaseHangs(t *testing.T) {
	u := freshURL(t)
	p := startProxy(t, targetOf(t, u))
	s := openURL(t, viaProxy(t, u, p), nil)
	s.opTimeout = time.Second
	ctx := context.Background()
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	p.Freeze()
	start := time.Now()
	err := s.ProbeWrite(ctx)
	if reason, ok := unavailable(err); !ok || reason != "database not answering" {
		t.Errorf("write to a hung database: %v, want UnavailableError \"database not answering\"", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the write took %v to fail with a 1s operation timeout", d)
	}
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = s.AcceptStep(dctx, "x", 1, 1, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with the caller's deadline: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the caller's 300ms deadline took %v", d)
	}
	p.Thaw()
	if err := eventually(func() error { return s.ProbeWrite(ctx) }); err != nil {
		t.Fatalf("after the hang: %v", err)
	}
}

// eventually calls fn until it succeeds, for up to 3 s, and returns its
// last error: a store renews its connections after a failure, at most once
// a second.
func eventually(fn func() error) error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminExec runs q on the admin database.
func adminExec(t *testing.T, q string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func dbName(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Path[1:]
}

// terminate ends every session on database db (an administrator's
// pg_terminate_backend, a failover): the store's pooled connections die.
func terminate(t *testing.T, db string) {
	adminExec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, db)
}

// Sessions killed under the store (57P01, or the connection gone) fail at
// most the calls that were on them, as *UnavailableError; the pool then
// connects afresh.
func TestSessionsTerminated(t *testing.T) {
	u := freshURL(t)
	s := openURL(t, u, nil)
	ctx := context.Background()
	warm := func() {
		var wg sync.WaitGroup
		for i := range 4 { // fill the pool with live connections
			wg.Go(func() { s.AcceptStep(ctx, "warm", 1, int64(i), 0) })
		}
		wg.Wait()
	}
	warm()
	terminate(t, dbName(t, u))
	failed := 0
	for i := range 8 {
		if _, err := s.AcceptStep(ctx, "x", 1, int64(i+1), 0); err != nil {
			if _, ok := unavailable(err); !ok {
				t.Errorf("call %d on a terminated session: %v, want an UnavailableError", i, err)
			}
			failed++
		}
	}
	if failed > 1 {
		t.Errorf("%d of 8 calls failed after the sessions were terminated: the pool did not renew its connections", failed)
	}
	t.Logf("%d of 8 calls failed after the sessions were terminated", failed)
}

// A read-only database (default_transaction_read_only, as a standby is)
// turns every write into an *UnavailableError "read-only" and a failed
// audit into the hook's call; reads go on; a database that opens read-only
// but already migrated opens. Made writable again, the store writes
// again.
func TestReadOnlyDatabase(t *testing.T) {
	u := freshURL(t)
	db := dbName(t, u)
	s := openURL(t, u, nil)
	ctx := context.Background()
	if err := s.AddUser(ctx, model.User{Username: "alice", Email: "a@pd"}, "h"); err != nil {
		t.Fatal(err)
	}
	var hooked atomic.Int32
	s.SetAuditFailureHook(func(e model.AuditEntry, err error) {
		if _, ok := unavailable(err); ok {
			hooked.Add(1)
		}
	})
	adminExec(t, `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET default_transaction_read_only = on`)
	t.Cleanup(func() {
		adminExec(t, `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET default_transaction_read_only = off`)
	})
	terminate(t, db) // the setting reaches new sessions
	s.Ping(ctx)      // may meet a terminated connection

	ro := openURL(t, u, nil) // another node starting now: no migration to write
	if v, err := ro.SchemaVersion(ctx); err != nil || v < 8 {
		t.Fatalf("schema version on a read-only database: %d %v", v, err)
	}
	for _, st := range []*Store{s, ro} {
		for _, call := range []struct {
			name string
			fn   func() error
		}{
			{"probe", func() error { return st.ProbeWrite(ctx) }},
			{"add user", func() error { return st.AddUser(ctx, model.User{Username: "bob"}, "h") }},
			{"accept step", func() error { _, err := st.AcceptStep(ctx, "x", 1, 1, 0); return err }},
			{"reserve", func() error { _, err := st.ReserveAttempt(ctx, time.Now(), pairRule("k")); return err }},
			{"audit", func() error {
				return st.Audit(ctx, model.AuditEntry{Actor: "a", Action: "b", Subject: "c", Result: "ok"})
			}},
		} {
			err := call.fn()
			if reason, ok := unavailable(err); !ok || reason != "read-only" {
				t.Errorf("%s on a read-only database: %v, want UnavailableError \"read-only\"", call.name, err)
			}
		}
		if _, _, err := st.User(ctx, "alice"); err != nil {
			t.Errorf("read on a read-only database: %v", err)
		}
	}
	if hooked.Load() != 1 || s.AuditFailures() != 1 {
		t.Errorf("audit failure hook called %d times, %d failures counted; want 1", hooked.Load(), s.AuditFailures())
	}
	adminExec(t, `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET default_transaction_read_only = off`)
	// The pool renews its read-only sessions after a refusal (at most once
	// a second).
	if err := eventually(func() error { return s.ProbeWrite(ctx) }); err != nil {
		t.Fatalf("writable again: %v", err)
	}
}

// classify maps PostgreSQL's codes and connection failures to the reasons
// servers show with 503, and leaves other errors alone.
func TestClassify(t *testing.T) {
	for code, want := range map[string]string{
		"53100": "disk full", "25006": "read-only", "58030": "I/O error", "57P01": "database unavailable",
		"57P02": "database unavailable", "57P03": "database unavailable", "53300": "database busy",
		"08006": "database unreachable", "08001": "database unreachable",
		"23505": "", "42P01": "", "40001": "",
	} {
		err := classify(&pgconn.PgError{Code: code, Message: "m"})
		reason, _ := unavailable(err)
		if reason != want {
			t.Errorf("code %s: %q, want %q", code, reason, want)
		}
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{io.ErrUnexpectedEOF, "database unreachable"},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, "database unreachable"},
		{context.Canceled, ""},
		{pgx.ErrNoRows, ""},
		{errors.New("other"), ""},
	} {
		reason, _ := unavailable(classify(c.err))
		if reason != c.want {
			t.Errorf("%v: %q, want %q", c.err, reason, c.want)
		}
	}
}
