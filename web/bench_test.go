package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
	"github.com/camotp/camotp/web"
)

// consoleFleetSize is the fleet of the console's benchmark.
const consoleFleetSize = 10_000

// fillFleet registers n officers and n cameras in st, in every state: 70 %
// provisioned, 80 % assigned, a third online, most seen, half with an
// accepted code (a learnt offset, a last sign-in). Writes run from several
// goroutines, so the store's writer commits them in groups.
func fillFleet(tb testing.TB, st *sqlite.Store, n int, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	seed := device.DefaultSeed([]byte("0123456789abcdefghij"))
	build := func(v uint64) ([]byte, error) { return []byte("cmd"), nil }
	models := []device.Model{device.Body4, device.Body3, device.Workforce}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				user, serial := fmt.Sprintf("officer%05d", i), fmt.Sprintf("BC-%05d", i)
				err := st.AddUser(ctx, model.User{Username: user, Email: user + "@pd.example"}, "h")
				if err == nil {
					err = st.AddCamera(ctx, serial, models[i%3], "pk")
				}
				if err == nil && i%10 < 7 {
					s := seed
					var v uint64
					if v, err = st.StartOp(ctx, serial, model.OpProvision, &s, []byte("c"), build); err == nil {
						_, err = st.CompleteOp(ctx, serial, v)
					}
					if err == nil && i%2 == 0 {
						_, err = st.AcceptStep(ctx, model.CameraSubject(serial), v, 1000+int64(i), int64(i%5-2))
					}
				}
				if err == nil && i%10 < 8 {
					err = st.Assign(ctx, serial, user)
				}
				if err == nil && i%3 == 0 {
					err = st.SetPresence(ctx, serial, true, now)
				}
				if err == nil && i%7 != 0 {
					err = st.Touch(ctx, serial, now.Add(-time.Duration(i)*time.Minute))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// BenchmarkConsoleCameraPage renders pages of the console's camera
// listing over a real SQLite store holding 10,000 cameras, through the
// whole HTTP handler (session check, one query and one count, the
// template), beside the store's query alone.
func BenchmarkConsoleCameraPage(b *testing.B) {
	ctx := context.Background()
	key, _ := masterkey.New(make([]byte, 32))
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "console.db"), key, clock)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	t0 := time.Now()
	fillFleet(b, st, consoleFleetSize, now)
	b.Logf("%d cameras registered in %v", consoleFleetSize, time.Since(t0).Round(time.Millisecond))
	// One camera in a hundred reported lost (each report one transaction).
	t0 = time.Now()
	for i := 0; i < consoleFleetSize; i += 100 {
		if _, err := st.ReportLost(ctx, fmt.Sprintf("BC-%05d", i), model.LostReport{Actor: "chief", Reason: "bench"}, []byte("c"),
			func(uint64) ([]byte, error) { return []byte("cmd"), nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d cameras reported lost in %v", consoleFleetSize/100, time.Since(t0).Round(time.Millisecond))
	if err := st.AddUser(ctx, model.User{Username: "chief", Email: "chief@pd.example", Role: "fleet"}, "h"); err != nil {
		b.Fatal(err)
	}
	session, err := st.CreateToken(ctx, model.TokenSession, "chief", "app", "192.0.2.1", 24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := signin.NewService(st, signin.DefaultConfig(), clock, log)
	if err != nil {
		b.Fatal(err)
	}
	prov := provisioning.NewService(st, [32]byte{1}, clock, log)
	defer prov.Close()
	pages, err := web.New(svc, log)
	if err != nil {
		b.Fatal(err)
	}
	pages.Fleet, pages.Audit, pages.Now = provisioning.NewFleet(st, prov), st, clock
	mux := http.NewServeMux()
	pages.Register(mux)

	for _, c := range []struct {
		name, query string
		q           model.CameraQuery
	}{
		{"first-page", "", model.CameraQuery{}},
		{"page-100-by-last-sign-in", "sort=last-signin&dir=desc&page=100", model.CameraQuery{Sort: model.SortLastSignIn, Desc: true, Page: 100}},
		{"filtered-search", "state=provisioned&online=yes&q=BC-01&sort=offset", model.CameraQuery{State: model.StateProvisioned, Online: model.Yes, Search: "BC-01", Sort: model.SortOffset}},
		{"last-page-200-rows", "size=200&page=50&sort=seed-age", model.CameraQuery{Size: 200, Page: 50, Sort: model.SortSeedAge}},
		{"lost-only", "lost=yes", model.CameraQuery{Lost: model.Yes}},
	} {
		b.Run(c.name+"/query", func(b *testing.B) {
			for b.Loop() {
				p, err := st.CameraPage(ctx, c.q)
				if err != nil || len(p.Cameras) == 0 {
					b.Fatalf("%d cameras, %v", len(p.Cameras), err)
				}
			}
		})
		b.Run(c.name+"/page", func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", "/admin/cameras?"+c.query, nil)
				req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: session})
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="cameras"`) {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
