package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/storage/storagetest"
	"github.com/camotp/camotp/internal/together"
)

// Nodes starting together on an empty database migrate it once: the
// advisory lock makes the others wait, then find nothing to do.
func TestConcurrentMigration(t *testing.T) {
	u := freshURL(t)
	var failed atomic.Int32
	stores := make([]*Store, 6)
	together.Run(len(stores), func(i int) {
		s, err := Open(context.Background(), u, testKey(t), nil)
		if err != nil {
			t.Error(err)
			failed.Add(1)
			return
		}
		stores[i] = s
	})
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if failed.Load() > 0 {
		t.FailNow()
	}
	all, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	latest := all[len(all)-1].version
	var versions []int
	err = stores[0].query(context.Background(), `SELECT version FROM schema_version ORDER BY version`, nil, func(r pgx.Rows) error {
		var v int
		err := r.Scan(&v)
		versions = append(versions, v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int{}
	for _, m := range all {
		want = append(want, m.version)
	}
	if !reflect.DeepEqual(versions, want) {
		t.Fatalf("schema_version rows %v, want each migration once: %v", versions, want)
	}
	if v, err := stores[3].SchemaVersion(context.Background()); err != nil || v != latest {
		t.Fatalf("SchemaVersion %d %v, want %d", v, err, latest)
	}
}

// The migrations start at SQLite's version 7, whose schema the first one
// holds, and then follow SQLite's numbers, so a version means one schema
// in both backends.
func TestMigrationVersionsFollowSQLite(t *testing.T) {
	all, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if all[0].version != 7 {
		t.Fatalf("first migration %d, want 7", all[0].version)
	}
	for i := 1; i < len(all); i++ {
		if all[i].version != all[i-1].version+1 {
			t.Fatalf("migration %d follows %d", all[i].version, all[i-1].version)
		}
	}
	lite, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), testKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	if v, _ := lite.SchemaVersion(context.Background()); v != all[len(all)-1].version {
		t.Fatalf("sqlite is at version %d, postgres at %d: port the migration", v, all[len(all)-1].version)
	}
}

// A database migrated by a newer camotp is refused rather than used.
func TestNewerSchemaRefused(t *testing.T) {
	u := freshURL(t)
	s := openURL(t, u, nil)
	if _, err := s.exec(context.Background(), `INSERT INTO schema_version (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), u, testKey(t), nil); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open a newer schema: %v", err)
	}
}

// After Close every call fails with ErrClosed.
func TestClosed(t *testing.T) {
	s := openTest(t, nil)
	s.Close()
	ctx := context.Background()
	if err := s.ProbeWrite(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
	if _, err := s.Users(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Audit rows are never lost to what a client sent: text PostgreSQL cannot
// hold is kept with U+FFFD in its place. Other writes of such text fail.
func TestUnstorableText(t *testing.T) {
	s := openTest(t, nil)
	ctx := context.Background()
	if err := s.Audit(ctx, model.AuditEntry{Actor: "ev\x00il", Action: "login.password", Subject: "ev\x00il\xff", Result: "failed"}); err != nil {
		t.Fatal(err)
	}
	log, err := s.AuditLog(ctx, "ev\uFFFDil\uFFFD", 10)
	if err != nil || len(log) != 1 || log[0].Actor != "ev\uFFFDil" {
		t.Fatalf("audit %+v %v", log, err)
	}
	if err := s.AddUser(ctx, model.User{Username: "a\x00b"}, "h"); err == nil {
		t.Fatal("a username with NUL was stored")
	}
}

// Rows written by the SQLite backend, copied byte for byte into
// PostgreSQL, open there with the same master key: sealed seeds, app
// seeds, RADIUS secrets and OIDC keys, keyed backup-code hashes, token
// hashes. (What camotp migrate relies on.)
func TestRowsCopiedFromSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "src.db")
	lite, err := sqlite.Open(ctx, path, testKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	seed := device.DefaultSeed([]byte("12345678901234567890"))
	app := device.DefaultSeed([]byte("abcdefghijabcdefghij"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(lite.AddUser(ctx, model.User{Username: "alice", Email: "a@pd"}, "h"))
	must(lite.AddCamera(ctx, "BC4-0001", device.Body4, "pk"))
	v, err := lite.StartOp(ctx, "BC4-0001", model.OpProvision, &seed, []byte("ch"), func(uint64) ([]byte, error) { return []byte("cmd"), nil })
	must(err)
	_, err = lite.CompleteOp(ctx, "BC4-0001", v)
	must(err)
	must(lite.ConfirmApp(ctx, "alice", app))
	must(lite.SetBackupCodes(ctx, "alice", []string{"AAAA2222"}))
	must(lite.AddRadiusClient(ctx, model.RadiusClient{Name: "vpn1", CIDR: netip.MustParsePrefix("10.0.0.0/8"), Secret: []byte("shared")}))
	must(lite.AddOIDCKey(ctx, model.OIDCKey{ID: "k1", Alg: "RS256", Private: []byte("der")}))
	session, err := lite.CreateToken(ctx, model.TokenSession, "alice", "bodycam", "ip", time.Hour)
	must(err)
	lite.Close()

	src, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	must(err)
	defer src.Close()
	pg := openTest(t, nil)
	for _, table := range []struct{ name, cols string }{
		{"users", "username, email, phone, password_hash, role, created_at, last_method, subject"},
		{"cameras", "serial, model, public_key, state, version, seed, created_at, updated_at"},
		{"mfa_methods", "username, method, secret, created_at, phone"},
		{"backup_codes", "username, hash"},
		{"radius_clients", "name, cidr, secret, created_at"},
		{"oidc_keys", "id, alg, sealed, created_at"},
		{"tokens", "hash, kind, username, method, ip, created_at, expires_at"},
	} {
		rows, err := src.Query(`SELECT ` + table.cols + ` FROM ` + table.name)
		must(err)
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			must(rows.Scan(ptrs...))
			ph := make([]string, len(cols))
			for i := range ph {
				ph[i] = "$" + string(rune('1'+i))
			}
			_, err := pg.pool.Exec(ctx, `INSERT INTO `+table.name+` (`+table.cols+`) VALUES (`+strings.Join(ph, ",")+`)`, vals...)
			must(err)
		}
		must(rows.Err())
		rows.Close()
	}
	got, err := pg.ActiveSeed(ctx, "BC4-0001")
	seed.Version = v
	if err != nil || !reflect.DeepEqual(got, seed) {
		t.Errorf("camera seed: %+v %v", got, err)
	}
	if got, err := pg.AppSeed(ctx, "alice"); err != nil || !reflect.DeepEqual(got, app) {
		t.Errorf("app seed: %+v %v", got, err)
	}
	if ok, err := pg.UseBackupCode(ctx, "alice", "AAAA2222"); err != nil || !ok {
		t.Errorf("backup code: %v %v", ok, err)
	}
	if rcs, err := pg.RadiusClients(ctx); err != nil || len(rcs) != 1 || !bytes.Equal(rcs[0].Secret, []byte("shared")) {
		t.Errorf("radius: %+v %v", rcs, err)
	}
	if keys, err := pg.OIDCKeys(ctx, time.Time{}); err != nil || len(keys) != 1 || string(keys[0].Private) != "der" {
		t.Errorf("oidc keys: %+v %v", keys, err)
	}
	if tok, err := pg.LookupToken(ctx, model.TokenSession, session); err != nil || tok.Username != "alice" {
		t.Errorf("session: %+v %v", tok, err)
	}
	if u, _, err := pg.User(ctx, "alice"); err != nil || len(u.Subject) != 32 {
		t.Errorf("user: %+v %v", u, err)
	}
}

// TestMigrationGivesUpOnALockedTable: a schema change that another
// session's transaction blocks (a dump, a long report) gives up after its
// lock wait, saying why, instead of hanging the node's start — and, queued
// ahead of them, every other node's reads of that table.
func TestMigrationGivesUpOnALockedTable(t *testing.T) {
	s := openTest(t, nil)
	ctx := t.Context()
	// Back to schema 7: migration 8 has to alter cameras again.
	if _, err := s.pool.Exec(ctx, `ALTER TABLE cameras DROP COLUMN online, DROP COLUMN presence_at, DROP COLUMN resent_at;
		DELETE FROM schema_version WHERE version >= 8`); err != nil {
		t.Fatal(err)
	}
	reader, err := pgx.ConnectConfig(ctx, s.connConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(reader)
	tx, err := reader.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM cameras`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err = migrate(ctx, s.connConfig, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "migration 8 waited") {
		t.Fatalf("migration behind a reader's lock: %v", err)
	}
	if took := time.Since(t0); took > 20*time.Second {
		t.Fatalf("gave up after %s", took)
	}
	tx.Rollback(ctx)
	// Nothing half done: once the reader is gone it applies.
	if err := migrate(ctx, s.connConfig, 300*time.Millisecond); err != nil {
		t.Fatalf("migration after the reader left: %v", err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v < 8 {
		t.Fatalf("schema version %d %v", v, err)
	}
}

// TestAuditTampering edits the database directly, on a connection of its
// own, as someone with write access to it would; VerifyAudit finds each
// edit.
func TestAuditTampering(t *testing.T) {
	storagetest.RunTamper(t, func(t *testing.T) storagetest.Tampered {
		u := freshURL(t)
		s := openURL(t, u, nil)
		reopen := func(t *testing.T) storage.Store {
			s.Close()
			return openURL(t, u, nil)
		}
		return storagetest.Tampered{Store: s, Reopen: reopen, Exec: func(t *testing.T, q string) {
			conn, err := pgx.Connect(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}}
	})
}
