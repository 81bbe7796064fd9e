package postgres

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/testenv/pgtest"
)

// freshURL creates an empty database for the test, dropped at cleanup,
// and returns its URL (pgtest: skipped without CAMOTP_TEST_POSTGRES,
// failed under CI=true).
func freshURL(tb testing.TB) string {
	tb.Helper()
	return pgtest.URL(tb)
}

// freshFrom creates a database for the test as a copy of the database
// template, dropped at cleanup, and returns its URL.
func freshFrom(tb testing.TB, template string) string {
	tb.Helper()
	admin := adminURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to %s: %v", pgtest.EnvVar, err)
	}
	defer conn.Close(context.Background())
	name := pgtest.NamePrefix + strings.ToLower(rand.Text()[:16])
	q := `CREATE DATABASE ` + pgx.Identifier{name}.Sanitize() + ` TEMPLATE ` + pgx.Identifier{template}.Sanitize()
	for try := 0; ; try++ {
		_, err := conn.Exec(ctx, q)
		if err == nil {
			break
		}
		if isCode(err, "55006") && try < 50 { // the template is busy: another copy
			time.Sleep(100 * time.Millisecond)
			continue
		}
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(os.Getenv(pgtest.EnvVar)) // with its pool settings
	if err != nil {
		tb.Fatalf("%s: %v", pgtest.EnvVar, err)
	}
	u.Path = "/" + name
	return u.String()
}

func testKey(tb testing.TB) *masterkey.Key {
	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// openTest opens a store on a fresh database; now may be nil.
func openTest(tb testing.TB, now func() time.Time) *Store {
	tb.Helper()
	return openURL(tb, freshURL(tb), now)
}

func openURL(tb testing.TB, u string, now func() time.Time) *Store {
	tb.Helper()
	s, err := Open(context.Background(), u, testKey(tb), now)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// adminURL is pgtest.AdminURL without pool settings (the tests' stores
// take them from it; an admin connection refuses them).
func adminURL(tb testing.TB) string {
	u, err := url.Parse(pgtest.AdminURL(tb))
	if err != nil {
		tb.Fatalf("%s: %v", pgtest.EnvVar, err)
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
