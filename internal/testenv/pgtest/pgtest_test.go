package pgtest

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// connect opens a connection to u, closed at cleanup.
func connect(tb testing.TB, u string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", redacted(u), err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad URL)"
	}
	return u.Redacted()
}

// database is the name of the database in URL u.
func database(tb testing.TB, u string) string {
	tb.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		tb.Fatal("bad URL")
	}
	return strings.TrimPrefix(pu.Path, "/")
}

func queryRow(tb testing.TB, conn *pgx.Conn, dst any, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.QueryRow(ctx, sql, args...).Scan(dst); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// databaseExists asks the admin URL whether database name exists.
func databaseExists(tb testing.TB, name string) bool {
	tb.Helper()
	var n int
	queryRow(tb, connect(tb, AdminURL(tb)), &n, "SELECT count(*) FROM pg_database WHERE datname = $1", name)
	return n > 0
}

// Two URLs are two databases: each connection lands in its own, and a table
// made in one is not in the other.
func TestURL(t *testing.T) {
	u1, u2 := URL(t), URL(t)
	n1, n2 := database(t, u1), database(t, u2)
	if n1 == n2 || !strings.HasPrefix(n1, NamePrefix) || !strings.HasPrefix(n2, NamePrefix) {
		t.Fatalf("databases %q and %q: want two distinct names starting with %q", n1, n2, NamePrefix)
	}
	c1, c2 := connect(t, u1), connect(t, u2)
	var got string
	if queryRow(t, c1, &got, "SELECT current_database()"); got != n1 {
		t.Errorf("connected to %q through %s, want %q", got, redacted(u1), n1)
	}
	if queryRow(t, c2, &got, "SELECT current_database()"); got != n2 {
		t.Errorf("connected to %q through %s, want %q", got, redacted(u2), n2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c1.Exec(ctx, "CREATE TABLE probe (id int PRIMARY KEY); INSERT INTO probe VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var in1, in2 bool
	queryRow(t, c1, &in1, "SELECT to_regclass('public.probe') IS NOT NULL")
	queryRow(t, c2, &in2, "SELECT to_regclass('public.probe') IS NOT NULL")
	if !in1 || in2 {
		t.Errorf("table probe in the first database: %v, in the second: %v; want true, false", in1, in2)
	}
}

// The database is gone once its test has ended, even though a connection
// to it was still open (DROP ... WITH (FORCE) ends it).
func TestURLCleanup(t *testing.T) {
	AdminURL(t) // skip (or fail) here, not in the subtest
	var name string
	var open *pgx.Conn
	t.Run("owner", func(t *testing.T) {
		u := URL(t)
		name = database(t, u)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		if open, err = pgx.Connect(ctx, u); err != nil { // left open on purpose
			t.Fatal(err)
		}
		if !databaseExists(t, name) {
			t.Fatalf("database %s does not exist while its test runs", name)
		}
	})
	if open == nil {
		t.FailNow()
	}
	defer open.Close(context.Background())
	if databaseExists(t, name) {
		t.Errorf("database %s still exists after its test ended", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := open.Ping(ctx); err == nil {
		t.Errorf("the connection left open to %s still works after the database was dropped", name)
	}
}

// goroutineTB lets a goroutine other than the test's call URL: Fatal and
// Skip there record a failure and end only that goroutine (testing's
// FailNow must be called from the test's own goroutine).
type goroutineTB struct{ testing.TB }

func (g goroutineTB) FailNow()                     { g.Fail(); runtime.Goexit() }
func (g goroutineTB) Fatal(args ...any)            { g.Error(args...); runtime.Goexit() }
func (g goroutineTB) Fatalf(f string, args ...any) { g.Errorf(f, args...); runtime.Goexit() }
func (g goroutineTB) SkipNow()                     { g.Error("skipped in a goroutine"); runtime.Goexit() }
func (g goroutineTB) Skip(args ...any)             { g.Error(args...); runtime.Goexit() }
func (g goroutineTB) Skipf(f string, args ...any)  { g.Errorf(f, args...); runtime.Goexit() }

// 16 goroutines released together each get their own database: concurrent
// CREATE DATABASE (here and in the other test binaries CI runs at the same
// time) must not fail with "source database is being accessed by other
// users" or run out of connections.
func TestURLParallel(t *testing.T) {
	AdminURL(t) // skip (or fail) here, on the test's goroutine
	const n = 16
	urls := make([]string, n)
	release := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-release
			urls[i] = URL(goroutineTB{t})
		}()
	}
	ready.Wait()
	close(release)
	done.Wait()
	if t.Failed() {
		t.FailNow()
	}
	seen := map[string]bool{}
	for _, u := range urls {
		name := database(t, u)
		if seen[name] {
			t.Fatalf("database %s handed out twice", name)
		}
		seen[name] = true
		var got string
		if queryRow(t, connect(t, u), &got, "SELECT current_database()"); got != name {
			t.Errorf("connected to %q, want %q", got, name)
		}
	}
}

// Without CAMOTP_TEST_POSTGRES a test that needs PostgreSQL skips, saying
// how to start a cluster, except under CI=true where it fails. Checked by
// running TestURL in a child process of this test binary.
func TestWithoutEnv(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestURL$", "-test.v", "-test.count=1")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, EnvVar+"=") && !strings.HasPrefix(kv, "CI=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "CI="+ci)
		out, err := cmd.CombinedOutput()
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP: TestURL") || !strings.Contains(string(out), "scripts/pg-test-cluster")):
			t.Errorf("without %s: err %v, want a skip naming scripts/pg-test-cluster; output:\n%s", EnvVar, err, out)
		case ci == "true" && (err == nil || !strings.Contains(string(out), "--- FAIL: TestURL") || !strings.Contains(string(out), "CI must test against PostgreSQL")):
			t.Errorf("without %s, CI=true: err %v, want the test to fail; output:\n%s", EnvVar, err, out)
		}
	}
}
