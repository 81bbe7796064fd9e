package web_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
	"github.com/camotp/camotp/web"
)

// TestConsoleUnblock: alice's wrong codes block her; a security officer
// sees it on the users page and unblocks her; she signs in at once, and
// the audit log says who unblocked her.
func TestConsoleUnblock(t *testing.T) {
	t.Parallel()
	f := testenv.NewFleet(t)
	sam := signInApp(t, f, "sam", addStaff(t, f, "sam", "security"))
	wrong := f.WrongCode(t, "alice")
	tok := f.Pending(t, "alice")
	for range 3 {
		f.Verify(t, tok, wrong)
	}
	if status, body := f.Verify(t, f.Pending(t, "alice"), testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())); status != 429 {
		t.Fatalf("right code while blocked: %d %v", status, body)
	}
	_, page := sam.get("/admin/users?q=alice")
	if !strings.Contains(page, "Blocked for 9 minutes") && !strings.Contains(page, "Blocked for 10 minutes") || !strings.Contains(page, `id="unblock-alice"`) {
		t.Fatalf("users page does not show alice blocked:\n%s", page)
	}
	status, page := sam.get("/admin/users/alice/unblock")
	if status != 200 || !strings.Contains(page, "Unblock alice?") {
		t.Fatalf("confirmation: %d\n%s", status, page)
	}
	status, page, _ = sam.post("/admin/users/alice/unblock", url.Values{}, page)
	if status != 200 || !strings.Contains(page, "alice is unblocked") || strings.Contains(page, `id="unblock-alice"`) {
		t.Fatalf("unblock: %d\n%s", status, page)
	}
	f.Clock.Add(30 * time.Second)
	if status, body := f.Verify(t, f.Pending(t, "alice"), testenv.ScreenCode(t, f.Cams["alice"], f.Clock.Now())); status != 200 {
		t.Fatalf("right code after the unblock: %d %v", status, body)
	}
	log, _ := f.Srv.Store.AuditPage(t.Context(), model.AuditQuery{AuditFilter: model.AuditFilter{Action: "user.unblock"}})
	if len(log) != 1 || log[0].Actor != "sam" || log[0].Subject != "alice" || log[0].Result != "ok" || !strings.Contains(log[0].Detail, "counters cleared") {
		t.Fatalf("unblock audit rows: %+v", log)
	}
}

// TestConsoleAuditExport: the filtered rows as CSV (spreadsheet formulas
// defused) and as JSON Lines, and the export is itself audited.
func TestConsoleAuditExport(t *testing.T) {
	t.Parallel()
	f := testenv.NewFleet(t)
	sam := signInApp(t, f, "sam", addStaff(t, f, "sam", "security"))
	f.Login(t, "=HYPERLINK(\"http://x\")", "guess") // a made-up name an attacker sent
	get := func(q string) (*http.Response, string) {
		t.Helper()
		resp, err := sam.c.Get(sam.base + "/admin/audit/export?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := get("format=csv&action=login.*")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="camotp-audit-`) {
		t.Fatalf("csv export: %d %v", resp.StatusCode, resp.Header)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) < 3 || strings.Join(recs[0], ",") != "id,time,actor,action,subject,result,source_ip,detail,chain,seq,mac" {
		t.Fatalf("csv: %v\n%s", err, body)
	}
	formula := false
	for _, r := range recs[1:] {
		if !strings.HasPrefix(r[3], "login.") {
			t.Fatalf("a row of another action: %q", r)
		}
		if strings.Contains(r[2], "HYPERLINK") {
			formula = true
			if !strings.HasPrefix(r[2], "'=") {
				t.Fatalf("a formula left as it is: %q", r[2])
			}
		}
	}
	if !formula {
		t.Fatal("the made-up name's row is not in the export")
	}
	resp, body = get("format=jsonl&subject=alice")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("jsonl export: %d %v", resp.StatusCode, resp.Header)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	for _, l := range lines {
		var e model.AuditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Subject != "alice" || e.ID == 0 || e.At.IsZero() {
			t.Fatalf("jsonl line %q: %+v %v", l, e, err)
		}
	}
	if resp, _ := get("format=xml"); resp.StatusCode != 400 {
		t.Fatalf("unknown format: %d", resp.StatusCode)
	}
	log, _ := f.Srv.Store.AuditPage(t.Context(), model.AuditQuery{AuditFilter: model.AuditFilter{Action: "audit.export"}})
	if len(log) != 2 || log[0].Actor != "sam" || !strings.Contains(log[0].Detail, `format=jsonl`) || !strings.Contains(log[0].Detail, `subject="alice"`) {
		t.Fatalf("export audit rows: %+v", log)
	}
}

// consoleStack serves the console over st without MQTT or a broker, for a
// user of role with a session that passed MFA; audit replaces the audit
// log's reads when not nil.
func consoleStack(t testing.TB, st *sqlite.Store, role string, audit web.AuditLog) (http.Handler, *http.Cookie) {
	t.Helper()
	ctx := context.Background()
	if err := st.AddUser(ctx, model.User{Username: "sam", Email: "sam@pd.example", Role: role}, "h"); err != nil {
		t.Fatal(err)
	}
	session, err := st.CreateToken(ctx, model.TokenSession, "sam", "app", "192.0.2.1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := signin.NewService(st, signin.DefaultConfig(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.New(svc, log)
	if err != nil {
		t.Fatal(err)
	}
	pages.Audit = st
	if audit != nil {
		pages.Audit = audit
	}
	mux := http.NewServeMux()
	pages.Register(mux)
	return mux, &http.Cookie{Name: web.SessionCookie, Value: session}
}

func openSQLite(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	key, _ := masterkey.New(make([]byte, 32))
	path := filepath.Join(t.TempDir(), "camotp.db")
	st, err := sqlite.Open(context.Background(), path, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// blockingLog is an audit log whose exports wait until released.
type blockingLog struct {
	*sqlite.Store
	started chan struct{}
	release chan struct{}
}

func (b blockingLog) AuditEach(ctx context.Context, f model.AuditFilter, fn func(model.AuditEntry) error) error {
	b.started <- struct{}{}
	<-b.release
	return b.Store.AuditEach(ctx, f, fn)
}

// At most MaxExports exports run at once: the next one is refused with 429
// and a Retry-After while they run, and taken once one has finished.
func TestConsoleExportsAtOnce(t *testing.T) {
	t.Parallel()
	st, _ := openSQLite(t)
	bl := blockingLog{Store: st, started: make(chan struct{}), release: make(chan struct{})}
	h, cookie := consoleStack(t, st, "security", bl)
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func() *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/admin/audit/export?format=jsonl", nil)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	var wg sync.WaitGroup
	codes := make(chan int, web.MaxExports)
	for range web.MaxExports {
		wg.Go(func() {
			if resp := get(); resp != nil {
				codes <- resp.StatusCode
			}
		})
	}
	for range web.MaxExports {
		<-bl.started // both are running
	}
	if resp := get(); resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an export past the limit: %v", resp)
	}
	close(bl.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a running export answered %d", c)
		}
	}
	go func() { <-bl.started }() // the next export, once they finished
	if resp := get(); resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("an export after the others finished: %v", resp)
	}
}

// exportRows is how many audit rows the memory test exports: 200,000, or
// 50,000 under the race detector (the same check, at a quarter of its
// fifteen-fold cost).
func exportRows() int {
	if raceDetector {
		return 50_000
	}
	return 200_000
}

// TestConsoleExportMemoryBounded exports 200,000 audit rows from a real
// SQLite store, CSV and JSON Lines, through the HTTP handler, and checks
// that the live heap (after a collection, sampled as the rows arrive)
// stays within a few MiB of where it started, although the rows are tens
// of MiB: rows are written as they are read, never all in memory.
func TestConsoleExportMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 rows: not with -short")
	}
	st, path := openSQLite(t)
	// The rows go in with one statement on a connection of our own (the
	// store's writer would take a commit per row).
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO audit (at, actor, action, subject, result, source_ip, detail)
		SELECT 1700000000000 + i * 1000, 'officer' || (i % 5000), CASE i % 3 WHEN 0 THEN 'login.password' WHEN 1 THEN 'login.mfa' ELSE 'camera.assign' END,
			'subject-' || (i % 5000), CASE i % 4 WHEN 0 THEN 'invalid' ELSE 'ok' END, '192.0.2.' || (i % 250),
			'bodycam BC4-' || printf('%06d', i) || ' offset 0, a detail long enough to look like the real ones'
		FROM n`, exportRows())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	h, cookie := consoleStack(t, st, "security", nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, format := range []string{"csv", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/admin/audit/export?format="+format, nil)
			req.AddCookie(cookie)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base, peak := ms.HeapAlloc, ms.HeapAlloc
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			lines, bytes := 0, 0
			for sc.Scan() {
				lines++
				bytes += len(sc.Bytes()) + 1
				if lines%20_000 == 0 {
					runtime.GC()
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			want := exportRows() + 1 // the audit.export row of this export
			if format == "csv" {
				want++ // the header
			}
			if resp.StatusCode != 200 || lines < want {
				t.Fatalf("%d: %d lines, want %d", resp.StatusCode, lines, want)
			}
			grew := int64(peak) - int64(base)
			t.Logf("%s: %d rows, %.1f MiB sent; live heap %.1f MiB before, at most %.1f MiB during (+%.1f MiB)",
				format, lines, float64(bytes)/(1<<20), float64(base)/(1<<20), float64(peak)/(1<<20), float64(grew)/(1<<20))
			if grew > 8<<20 || bytes < exportRows()*150 {
				t.Fatalf("the live heap grew by %.1f MiB while %.1f MiB of rows went out: the export holds rows in memory",
					float64(grew)/(1<<20), float64(bytes)/(1<<20))
			}
		})
	}
}
