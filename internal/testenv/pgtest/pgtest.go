// Package pgtest gives each test its own PostgreSQL database, created on the
// cluster that CAMOTP_TEST_POSTGRES names and dropped when the test ends.
//
// The variable holds an admin URL, one whose user may CREATE DATABASE:
//
//	CAMOTP_TEST_POSTGRES=postgres://USER:PASSWORD@127.0.0.1:PORT/postgres?sslmode=disable
//
// .ci/run starts a throwaway cluster and sets it, so CI always runs these
// tests; on a dev machine `eval "$(scripts/pg-test-cluster)"` does the same,
// and without it the tests that need PostgreSQL skip saying so.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// EnvVar is the environment variable that holds the admin URL.
const EnvVar = "CAMOTP_TEST_POSTGRES"

// NamePrefix starts the name of every database URL creates, so leftovers
// (from a test binary that was killed before its cleanup) are easy to find.
const NamePrefix = "camotp_test_"

// opTimeout bounds one create or drop, waiting and retries included.
const opTimeout = 60 * time.Second

// admin lets at most this many creates/drops of one test binary talk to the
// cluster at once: CI runs every package's tests at once on 2 cores, and a
// burst of parallel tests should queue here rather than pile up connections.
var admin = make(chan struct{}, 4)

// Available tells whether PostgreSQL tests run here: the cluster URL is
// set, or CI=true (where URL fails without it). A test that also covers
// other backends asks it before calling URL, so it is not skipped whole.
func Available() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return os.Getenv(EnvVar) != "" || ci
}

// AdminURL returns the admin URL from CAMOTP_TEST_POSTGRES. When it is not
// set the test is skipped, saying how to get a cluster, except under CI=true
// where it fails: CI must always have PostgreSQL.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	s := os.Getenv(EnvVar)
	if s == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatalf("pgtest: %s is not set, but CI=true and CI must test against PostgreSQL (.ci/run starts a cluster and sets it)", EnvVar)
		}
		tb.Skipf("pgtest: %s is not set; to run the PostgreSQL tests, start a throwaway cluster first, from the repository root: eval \"$(scripts/pg-test-cluster)\"", EnvVar)
	}
	if _, err := parse(s); err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvVar, err)
	}
	return s
}

// URL creates a new, empty database with a random name on the cluster of
// AdminURL (skipping or failing as it does) and returns a URL for it, with
// the admin URL's user, password and parameters. The database is dropped at
// cleanup, even while connections to it are still open. It is created from
// template0, so it has the cluster's encoding and locale (UTF-8 and C on a
// scripts/pg-test-cluster cluster). URL may be called from parallel tests
// and from several goroutines at once.
func URL(tb testing.TB) string {
	tb.Helper()
	adminURL := AdminURL(tb)
	u, _ := parse(adminURL) // checked by AdminURL
	name := NamePrefix + randomHex(8)
	ident := pgx.Identifier{name}.Sanitize()
	// Registered first, with IF EXISTS: a CREATE that timed out here may
	// still have happened on the server.
	tb.Cleanup(func() {
		if err := run(adminURL, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: dropping database %s on %s: %v", name, u.Redacted(), err)
		}
	})
	// template0, not the default template1: CREATE DATABASE fails with
	// "source database is being accessed by other users" while anyone is
	// connected to its template, and no one can connect to template0.
	if err := run(adminURL, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		tb.Fatalf("pgtest: creating database %s on %s: %v", name, u.Redacted(), err)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String()
}

// parse checks that s is a postgres:// URL (URL replaces its database).
func parse(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL") // url's error would quote the password
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("want a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL, got scheme %q", u.Scheme)
	}
	return u, nil
}

// run executes one statement on the admin URL in a connection of its own,
// within opTimeout, retrying what a busy cluster may answer for a moment.
func run(adminURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	select {
	case admin <- struct{}{}:
		defer func() { <-admin }()
	case <-ctx.Done():
		return fmt.Errorf("waiting for a turn: %w", ctx.Err())
	}
	backoff := 50 * time.Millisecond
	for {
		err := runOnce(ctx, adminURL, sql)
		if err == nil || !retryable(err) {
			return err
		}
		// Jittered, so retries of concurrent test binaries spread out.
		wait := backoff/2 + mathrand.N(backoff)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func runOnce(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	// The simple protocol: CREATE/DROP DATABASE must not run inside a
	// transaction block, and take no parameters anyway.
	_, err = conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	return err
}

// retryable reports errors that mean "busy, try again": a template or
// database in use by another session (55006), too many connections
// (53300), a server starting up or in recovery (57P03), a deadlock
// (40P01) or serialization failure (40001).
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "55006", "53300", "57P03", "40P01", "40001":
		return true
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}
