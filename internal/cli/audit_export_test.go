package cli

import (
	"bufio"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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

// serve takes --audit-syslog from its settings file: the audit rows of
// the running server reach a syslog receiver. Targets and TLS files that
// do not fit are refused with exit 2.
func TestServeAuditSyslogSetting(t *testing.T) {
	t.Parallel()
	rcv := testenv.StartSyslogReceiver(t, nil)
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	httpAddr := free()
	data := filepath.Join(t.TempDir(), "data")
	path := writeConfig(t, fmt.Sprintf("data = %q\nhttp = %q\nmqtt = %q\naudit-syslog = %q\n", data, httpAddr, free(), rcv.URL()))
	m := startMain(t, Env{Getenv: func(string) string { return "" }}, "serve", "--config", path)
	m.waitUntil(t, "the server ready", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	tok, err := readTokenFile(filepath.Join(data, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/api/v1/admin/users",
		strings.NewReader(`{"username":"frank","email":"frank@pd.example","password":"pw-frank-long"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("add user: %v %v", resp, err)
	}
	resp.Body.Close()
	m.waitUntil(t, "the user.add row at the receiver", func() bool {
		rows, _ := rcv.Rows()
		for _, r := range rows {
			if r.Action == "user.add" && r.Subject == "frank" && len(r.MAC) > 0 {
				return true
			}
		}
		return false
	})
	if c := m.stop(t); c != 0 {
		t.Fatalf("serve stopped: exit %d", c)
	}
	if fi, err := os.Stat(filepath.Join(data, "audit-syslog.cursor")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cursor file: %v %v", fi, err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("not a certificate"), 0o600)
	for _, args := range [][]string{
		{"--audit-syslog", "udp://127.0.0.1:514"},
		{"--audit-syslog", "tcp://127.0.0.1"},
		{"--audit-syslog", "tcp://127.0.0.1:514", "--audit-syslog-ca", ca},
		{"--audit-syslog-ca", ca},
		{"--audit-syslog", "tls://127.0.0.1:6514", "--audit-syslog-ca", ca},
		{"--audit-syslog", "tls://127.0.0.1:6514", "--audit-syslog-cert", ca},
	} {
		if o, e, code := run(t, append([]string{"serve", "--data", t.TempDir()}, args...)...); code != exitUsage {
			t.Errorf("serve %q: exit %d, want %d\n%s%s", args, code, exitUsage, o, e)
		}
	}
}
