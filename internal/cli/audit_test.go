package cli

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// TestAdminAuditVerify edits the server's SQLite file with the sqlite3
// shell while the server runs, as someone with the file would, and
// `admin audit verify` names the edited row.
func TestAdminAuditVerify(t *testing.T) {
	sqlite3 := testenv.Tool(t, "sqlite3", "sqlite3")
	dir := t.TempDir()
	srv := testenv.Server(t, dir, nil)
	testenv.User(t, srv, "dave", "pw-dave-long")
	testenv.User(t, srv, "erin", "pw-erin-long")
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", "http://" + srv.HTTPAddr(), "--token-file", filepath.Join(dir, server.AdminTokenFile)}, args...)...)
	}
	out, errOut, code := admin("audit", "verify")
	if code != 0 || !strings.Contains(out, "every chain holds") || !strings.Contains(out, "chain 0: ") {
		t.Fatalf("untouched log: exit %d\n%s%s", code, out, errOut)
	}
	// Hide that erin was added: rewrite the row as another user's.
	db := filepath.Join(dir, server.DBFile)
	edit := exec.Command(sqlite3, "-cmd", ".timeout 5000", db,
		`UPDATE audit SET subject = 'nobody' WHERE action = 'user.add' AND subject = 'erin' RETURNING seq`)
	seq, err := edit.CombinedOutput()
	if err != nil || strings.TrimSpace(string(seq)) == "" {
		t.Fatalf("sqlite3: %v %s", err, seq)
	}
	out, errOut, code = admin("audit", "verify")
	want := "row " + strings.TrimSpace(string(seq)) + " of chain 0"
	if code != exitAuditBroken || !strings.Contains(errOut, want) || !strings.Contains(errOut, "edited") {
		t.Fatalf("after the edit: exit %d (want %d), stderr naming %q\n%s%s", code, exitAuditBroken, want, out, errOut)
	}
	// The verification itself is in the log.
	out, _, _ = admin("audit", "list", "--subject", "audit")
	if !strings.Contains(out, "audit.verify") || !strings.Contains(out, "chain broken") {
		t.Fatalf("the checks are not audited:\n%s", out)
	}
}
