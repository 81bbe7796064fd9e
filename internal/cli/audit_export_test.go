package cli

import (
	"bufio"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// TestAdminAuditExport runs `admin audit export` against a real server:
// CSV to a 0600 file (formula defused, chain, seq and MAC as the store
// has them), JSON Lines to standard output filtered by action and
// subject, bad flags refused with exit 2, a refused filter with the
// server's reason, and every export audited.
func TestAdminAuditExport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := testenv.Server(t, dir, nil)
	testenv.User(t, srv, "dave", "pw-dave-long")
	testenv.User(t, srv, "erin", "pw-erin-long")
	srv.Store.Audit(t.Context(), model.AuditEntry{Actor: "=HYPERLINK(\"http://x\")", Action: "login.password", Subject: "=HYPERLINK(\"http://x\")",
		Result: "error: unknown user", SourceIP: "192.0.2.66"})
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", "http://" + srv.HTTPAddr(), "--token-file", filepath.Join(dir, server.AdminTokenFile)}, args...)...)
	}
	out := filepath.Join(t.TempDir(), "audit.csv")
	if o, e, code := admin("audit", "export", "--since", "1h", "--format", "csv", "--out", out); code != 0 {
		t.Fatalf("csv export: exit %d\n%s%s", code, o, e)
	}
	// The export's own audit.export row is in it: read the store after.
	store := map[int64]model.AuditEntry{}
	rows, err := srv.Store.AuditAfter(t.Context(), 0, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		store[r.Seq] = r
	}

	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	f, _ := os.Open(out)
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != len(rows)+1 || strings.Join(recs[0], ",") != "id,time,actor,action,subject,result,source_ip,detail,chain,seq,mac" {
		t.Fatalf("csv: %v, %d records for %d rows: %q", err, len(recs), len(rows), recs[0])
	}
	defused := false
	for _, r := range recs[1:] {
		var e model.AuditEntry
		json.Unmarshal([]byte(`{"seq":`+r[9]+`}`), &e)
		want, ok := store[e.Seq]
		if !ok || r[8] != "0" || r[10] != hex.EncodeToString(want.MAC) || len(want.MAC) == 0 || r[3] != want.Action {
			t.Fatalf("csv row %q; the store's row %d: %+v", r, e.Seq, want)
		}
		if strings.Contains(r[2], "HYPERLINK") {
			defused = strings.HasPrefix(r[2], "'=") && strings.HasPrefix(r[4], "'=")
		}
	}
	if !defused {
		t.Fatal("the formula was not in the export, or not defused")
	}

	o, e, code := admin("audit", "export", "--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--format", "jsonl",
		"--action", "user.*", "--subject", "erin")
	if code != 0 {
		t.Fatalf("jsonl export: exit %d\n%s%s", code, o, e)
	}
	sc := bufio.NewScanner(strings.NewReader(o))
	n := 0
	for sc.Scan() {
		var got model.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		want := store[got.Seq]
		if got.Subject != "erin" || !strings.HasPrefix(got.Action, "user.") || string(got.MAC) != string(want.MAC) || got.Action != want.Action {
			t.Fatalf("jsonl row %+v; the store's %+v", got, want)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d rows about erin's user actions, want 1 (user.add):\n%s", n, o)
	}

	for _, args := range [][]string{
		{"--format", "csv"},                               // no --since
		{"--since", "1h"},                                 // no --format
		{"--since", "yesterday", "--format", "csv"},       // not a time
		{"--since", "1h", "--format", "xml"},              // not a format
		{"--since", "-5m", "--format", "jsonl"},           // not a duration before now
		{"--since", "1h", "--format", "csv", "stray-arg"}, // no arguments
	} {
		if o, e, code := admin(append([]string{"audit", "export"}, args...)...); code != exitUsage {
			t.Errorf("admin audit export %q: exit %d, want %d\n%s%s", args, code, exitUsage, o, e)
		}
	}
	_, e, code = admin("audit", "export", "--since", "1h", "--until", "2h", "--format", "csv")
	if code != 1 || !strings.Contains(e, "400") || !strings.Contains(e, "is not after since") {
		t.Fatalf("until before since: exit %d\n%s", code, e)
	}
	log, _ := srv.Store.AuditPage(t.Context(), model.AuditQuery{AuditFilter: model.AuditFilter{Action: "audit.export"}})
	if len(log) != 2 || !strings.Contains(log[0].Detail, `subject="erin"`) || !strings.Contains(log[1].Detail, "format=csv") {
		t.Fatalf("audit.export rows: %+v", log)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-01T00:00:00Z":      time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T02:00:00+02:00": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"24h":                       now.Add(-24 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
	} {
		if got, err := parseWhen(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-1h", "0s", "2026-11-01"} {
		if _, err := parseWhen(in, now); err == nil {
			t.Errorf("parseWhen(%q) took it", in)
		}
	}
}
