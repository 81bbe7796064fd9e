package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Migration 9 moves tokens, throttle counters and replay records into
// WITHOUT ROWID tables and keeps every row of a version 8 database.
func TestMigration9KeepsRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v8.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:8] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_version (version) VALUES (?)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	raw := "dG9rZW4tb2YtdmVyc2lvbi04"
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO tokens (hash, kind, username, method, ip, created_at, expires_at) VALUES (?,?,?,?,?,?,?)`,
			[]any{storage.TokenHash(raw), model.TokenSession, "alice", "bodycam", "192.0.2.1", now.UnixMilli(), now.Add(time.Hour).UnixMilli()}},
		{`INSERT INTO throttle (key, attempts, first_at, blocked_until, level) VALUES (?,?,?,?,?)`,
			[]any{"otp:acct:alice", 4, now.UnixMilli(), now.Add(time.Minute).UnixMilli(), 2}},
		{`INSERT INTO otp_state (subject, seed_version, last_step, drift, resync_offset, resync_step) VALUES (?,?,?,?,?,?)`,
			[]any{"cam:A", 3, 1000, -1, 7, 1010}},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path, key, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d %v", v, err)
	}
	tk, err := s.LookupToken(ctx, model.TokenSession, raw)
	if err != nil || tk.Username != "alice" || tk.Method != "bodycam" || tk.IP != "192.0.2.1" {
		t.Fatalf("token after migration: %+v %v", tk, err)
	}
	if ts, err := s.UserTokens(ctx, "alice"); err != nil || len(ts) != 1 {
		t.Fatalf("alice's tokens (by the username index): %+v %v", ts, err)
	}
	ths, err := s.GetThrottles(ctx, "otp:acct:alice")
	if err != nil || ths[0].Attempts != 4 || ths[0].Level != 2 || ths[0].BlockedUntil.UnixMilli() != now.Add(time.Minute).UnixMilli() {
		t.Fatalf("counter after migration: %+v %v", ths, err)
	}
	st, found, err := s.OTPState(ctx, "cam:A")
	if err != nil || !found || st.SeedVersion != 3 || st.LastStep != 1000 || st.Drift != -1 || st.ResyncOffset == nil ||
		*st.ResyncOffset != 7 || st.ResyncStep != 1010 {
		t.Fatalf("replay record after migration: %+v %v %v", st, found, err)
	}
	if won, err := s.AcceptStep(ctx, "cam:A", 3, 1000, 0); err != nil || won {
		t.Fatalf("a used step accepted after migration: %v %v", won, err)
	}
	for _, table := range []string{"tokens", "throttle", "otp_state"} {
		var ddl string
		if err := s.rdb.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&ddl); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(strings.TrimSpace(ddl), "WITHOUT ROWID") {
			t.Fatalf("%s: %s", table, ddl)
		}
	}
}

// Migration 10: every role but the console's becomes officer (the old
// "user" above all) and no other can be stored; a camera with a seed gets
// the time of its last change as the time it proved it; a replay record
// gets the time of its last step as when a code was last accepted.
func TestMigration10(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v9.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_version (version INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:9] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_version (version) VALUES (?)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	changed := time.UnixMilli(1_700_000_000_000)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (username, email, password_hash, role, created_at) VALUES ('u', 'u@x', 'h', 'user', 0),
			('a', 'a@x', 'h', 'admin', 0), ('w', 'w@x', 'h', 'Chief', 0)`, nil},
		{`INSERT INTO cameras (serial, model, public_key, state, version, seed, created_at, updated_at) VALUES
			('CAM-1', 'body4', 'pk', 'provisioned', 3, x'00', 0, ?), ('CAM-2', 'body3', 'pk', 'registered', 0, NULL, 0, ?)`,
			[]any{changed.UnixMilli(), changed.UnixMilli()}},
		{`INSERT INTO otp_state (subject, seed_version, last_step, drift) VALUES ('cam:CAM-1', 3, 56666666, -1), ('cam:CAM-2', 1, -1, 0)`, nil},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string]string{"u": "officer", "a": "admin", "w": "officer"} {
		if u, _, err := s.User(ctx, name); err != nil || u.Role != want {
			t.Fatalf("%s: role %q %v, want %s", name, u.Role, err, want)
		}
	}
	if _, err := s.exec(ctx, `UPDATE users SET role = 'user' WHERE username = 'u'`); err == nil {
		t.Fatal("the old role was stored again")
	}
	if _, err := s.exec(ctx, `INSERT INTO users (username, email, password_hash, role, created_at) VALUES ('z', 'z@x', 'h', 'root', 0)`); err == nil {
		t.Fatal("an unknown role was stored")
	}
	r, err := s.CameraRow(ctx, "CAM-1")
	if err != nil || r.SeedAt == nil || !r.SeedAt.Equal(changed) || r.Offset == nil || *r.Offset != -1 || r.LastSignIn == nil ||
		r.LastSignIn.UnixMilli() != (56666666+1)*30000 {
		t.Fatalf("CAM-1 after migration: %+v %v", r, err)
	}
	if r, err := s.CameraRow(ctx, "CAM-2"); err != nil || r.SeedAt != nil || r.Offset != nil || r.LastSignIn != nil {
		t.Fatalf("CAM-2 after migration: %+v %v", r, err)
	}
}
