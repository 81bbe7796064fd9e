package provisioning_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/auditexport"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/provisioning"
)

// heldExports is a real SQLite store whose audit exports wait until
// released, so a test can hold export slots.
type heldExports struct {
	*sqlite.Store
	started chan struct{}
	release chan struct{}
}

func (h heldExports) AuditEach(ctx context.Context, f model.AuditFilter, fn func(model.AuditEntry) error) error {
	h.started <- struct{}{}
	<-h.release
	return h.Store.AuditEach(ctx, f, fn)
}

// At most auditexport.MaxAtOnce admin exports run at once: of requests
// fired together, exactly that many stream (200) and the others get 429
// with a Retry-After at once; once they finished, the next one runs.
func TestAdminExportsAtOnce(t *testing.T) {
	t.Parallel()
	key, _ := masterkey.New(make([]byte, 32))
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "camotp.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	held := heldExports{Store: st, started: make(chan struct{}, 16), release: make(chan struct{})}
	mux := http.NewServeMux()
	provisioning.NewAdminAPI(held, nil, "tok").Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+provisioning.AuditExportPath+"?format=jsonl&since=2020-01-01T00:00:00Z", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		buf := make([]byte, 512)
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				break
			}
		}
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	const fired = 6
	gate := make(chan struct{})
	type answer struct {
		code  int
		retry string
	}
	answers := make(chan answer, fired)
	var wg sync.WaitGroup
	for range fired {
		wg.Go(func() {
			<-gate
			code, retry := get()
			answers <- answer{code, retry}
		})
	}
	close(gate)
	// The refused ones answer while the admitted ones are held.
	for range fired - auditexport.MaxAtOnce {
		if a := <-answers; a.code != http.StatusTooManyRequests || a.retry == "" {
			t.Fatalf("an export past the limit: %d, Retry-After %q", a.code, a.retry)
		}
	}
	for range auditexport.MaxAtOnce {
		<-held.started
	}
	close(held.release)
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.code != http.StatusOK {
			t.Fatalf("an admitted export answered %d", a.code)
		}
	}
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("an export after the others finished: %d", code)
	}
	log, _ := st.AuditPage(t.Context(), model.AuditQuery{AuditFilter: model.AuditFilter{Action: "audit.export"}})
	if len(log) != auditexport.MaxAtOnce+1 {
		t.Fatalf("%d audit.export rows, want one per export that ran (%d)", len(log), auditexport.MaxAtOnce+1)
	}
}

func TestParseAuditExport(t *testing.T) {
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query string
		want  model.AuditFilter
		fmt   string
		err   string
	}{
		{"format=csv&since=2026-11-01T00:00:00Z", model.AuditFilter{From: since}, "csv", ""},
		{"format=jsonl&since=2026-11-01T01:00:00%2B01:00&until=2026-11-02T00:00:00Z&actor=admin&subject=BC4-*&action=login.*&result=ok&source=192.0.2.1",
			model.AuditFilter{From: since, To: since.Add(24 * time.Hour), Actor: "admin", Subject: "BC4-*", Action: "login.*", Result: "ok", Source: "192.0.2.1"}, "jsonl", ""},
		{"format=xml&since=2026-11-01T00:00:00Z", model.AuditFilter{}, "", "want csv or jsonl"},
		{"format=csv", model.AuditFilter{}, "", "since: required"},
		{"format=csv&since=yesterday", model.AuditFilter{}, "", "not an RFC 3339 time"},
		{"format=csv&since=2026-11-01T00:00:00Z&until=2026-10-01T00:00:00Z", model.AuditFilter{}, "", "is not after since"},
		{"format=csv&since=2026-11-01T00:00:00Z&actor=" + strings.Repeat("a", 257), model.AuditFilter{}, "", "longer than 256"},
	} {
		q, _ := url.ParseQuery(tc.query)
		f, format, err := provisioning.ParseAuditExport(q)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.query, err, tc.err)
			}
			continue
		}
		if err != nil || f != tc.want || format != tc.fmt {
			t.Errorf("%s: %+v %q %v, want %+v %q", tc.query, f, format, err, tc.want, tc.fmt)
		}
	}
}

// FuzzParseAuditExport: any query is read or refused with an error, never
// a panic; what is read is bounded and ordered.
func FuzzParseAuditExport(f *testing.F) {
	f.Add("format=csv&since=2026-11-01T00:00:00Z&until=2026-11-02T00:00:00Z&actor=a*")
	f.Add("format=jsonl&since=2026-11-01T00:00:00.123456789%2B14:00")
	f.Add("format=csv&since=0000-01-01T00:00:00Z&until=9999-12-31T23:59:59Z")
	f.Add("since=%ff&format=%00")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		fl, format, err := provisioning.ParseAuditExport(q)
		if err != nil {
			return
		}
		if !auditexport.ValidFormat(format) || fl.From.IsZero() && q.Get("since") == "" || (!fl.To.IsZero() && !fl.To.After(fl.From)) {
			t.Fatalf("%q: %+v %q", raw, fl, format)
		}
		for _, v := range []string{fl.Actor, fl.Subject, fl.Action, fl.Result, fl.Source} {
			if len(v) > 256 {
				t.Fatalf("%q: a filter of %d bytes", raw, len(v))
			}
		}
	})
}
