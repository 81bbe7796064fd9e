package cli

import (
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/testenv/pgtest"
)

// TestMigrateToPostgres moves a running installation's SQLite database to
// PostgreSQL with camotp migrate: afterwards the officers sign in with
// their cameras on a node using PostgreSQL, the code used just before the
// move is still refused (the replay record moved too), the audit log came
// along; another master key, or a second run into the filled database, is
// refused and copies nothing.
func TestMigrateToPostgres(t *testing.T) {
	pg := pgtest.URL(t)
	f := testenv.NewFleet(t)
	code := testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())
	if status, _ := f.Verify(t, f.Pending(t, "alice"), code); status != http.StatusOK {
		t.Fatalf("sign-in before the move: %d", status)
	}
	// A made-up name PostgreSQL's text cannot hold, from an attacker, in
	// the audit log: it must not block the move.
	testenv.API(t, f.Srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": "evil\x00\xffname", "password": "x"})
	f.Srv.Close() // the operator stops the server first

	// Another master key opens none of the sealed secrets: refused, and
	// nothing copied.
	t.Setenv("CAMOTP_MASTER_KEY", "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=")
	if out, errOut, exit := run(t, "migrate", "--data", f.Dir(), "--to", pg); exit == 0 || !strings.Contains(errOut, "master key") {
		t.Fatalf("migrate with another master key: exit %d\n%s\n%s", exit, out, errOut)
	}
	os.Unsetenv("CAMOTP_MASTER_KEY")

	// An audit log edited in the file is not carried over as if it held.
	file, err := sql.Open("sqlite", "file:"+filepath.Join(f.Dir(), server.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	edit := func(q string) {
		t.Helper()
		if _, err := file.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	edit(`UPDATE audit SET actor = actor || 'x' WHERE id = (SELECT MIN(id) FROM audit)`)
	if out, errOut, exit := run(t, "migrate", "--data", f.Dir(), "--to", pg); exit == 0 || !strings.Contains(errOut, "audit log does not hold") {
		t.Fatalf("migrate of an edited audit log: exit %d\n%s\n%s", exit, out, errOut)
	}
	edit(`UPDATE audit SET actor = substr(actor, 1, length(actor) - 1) WHERE id = (SELECT MIN(id) FROM audit)`)

	out, errOut, exit := run(t, "migrate", "--data", f.Dir(), "--to", pg)
	if exit != 0 || !strings.Contains(out, "2 provisioned camera seeds open on PostgreSQL") {
		t.Fatalf("migrate: exit %d\n%s\n%s", exit, out, errOut)
	}
	t.Logf("camotp migrate:\n%s", out)
	for _, table := range []string{"users", "cameras", "audit", "otp_state", "tokens"} {
		if !strings.Contains(out, table) {
			t.Errorf("migrate's report lacks %s:\n%s", table, out)
		}
	}
	// A second run refuses: the database holds data now (rows newer than
	// the file's would be overwritten or brought back).
	if again, errOut, exit := run(t, "migrate", "--data", f.Dir(), "--to", pg); exit == 0 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("migrate again: exit %d\n%s\n%s", exit, again, errOut)
	}

	srv := testenv.Server(t, f.Dir(), func(c *server.Config) { c.DB = pg; c.Now = f.Clock.Now })
	login := func() string {
		t.Helper()
		status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": "alice", "password": "pw-alice-long"})
		if status != http.StatusOK {
			t.Fatalf("login on PostgreSQL: %d %v", status, body)
		}
		return body["token"].(string)
	}
	verify := func(tok, code string) int {
		status, _ := testenv.API(t, srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": tok, "code": code})
		return status
	}
	if status := verify(login(), code); status != http.StatusUnauthorized {
		t.Fatalf("the code used before the move, after it: %d, want 401", status)
	}
	f.Clock.Add(30 * time.Second)
	if status := verify(login(), testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())); status != http.StatusOK {
		t.Fatalf("alice's next code on PostgreSQL: %d", status)
	}
	entries, err := srv.Store.AuditLog(t.Context(), "alice", 100)
	if err != nil {
		t.Fatal(err)
	}
	oks := 0
	for _, e := range entries {
		if e.Action == "login.mfa" && e.Result == "ok" {
			oks++
		}
	}
	if oks != 2 {
		t.Fatalf("%d successful sign-ins of alice in the audit log, want 2 (one before the move)", oks)
	}
	// The chain came over, linked again past the name PostgreSQL could
	// not hold, and goes on here.
	if v, err := srv.Store.VerifyAudit(t.Context()); err != nil || v.Broken != nil || v.Rows < 5 {
		t.Fatalf("the audit log on PostgreSQL: %+v %v (broken %+v)", v, err, v.Broken)
	}
}
