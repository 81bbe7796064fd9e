package api_test

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/signin"
)

// BenchmarkPasswordLoginHTTP is the password step of sign-in over HTTP
// (JSON API, throttle slot, argon2id check, audit, pending token) with the
// parameters camotp used before (RFC 9106 memory-constrained: m=64 MiB,
// t=3, p=2) and today's default (OWASP: m=19 MiB, t=2, p=1), side by side
// in one run: compare logins/s/core between the two.
func BenchmarkPasswordLoginHTTP(b *testing.B) {
	for _, tc := range []struct {
		name string
		p    password.Params
	}{
		{"rfc9106-m64-t3-p2", password.Params{Memory: 64 << 10, Time: 3, Threads: 2}},
		{"owasp-m19-t2-p1", password.DefaultParams()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			vc := signin.DefaultConfig()
			vc.Argon2, vc.HashBudget, vc.HashWait = tc.p, 1<<30, time.Minute
			srv := testenv.Server(b, b.TempDir(), func(c *server.Config) { c.SignIn = &vc })
			testenv.User(b, srv, "officer", "officer-password")
			hash, err := password.HashWith(tc.p, "officer-password")
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.Store.SetPassword(b.Context(), "officer", hash); err != nil {
				b.Fatal(err)
			}
			url := "http://" + srv.HTTPAddr() + "/api/v1/auth/login"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(url, "application/json", strings.NewReader(`{"username":"officer","password":"officer-password"}`))
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("login: %d", resp.StatusCode)
						return
					}
				}
			})
			perSec := float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(perSec, "logins/s")
			b.ReportMetric(perSec/float64(runtime.GOMAXPROCS(0)), "logins/s/core")
			b.ReportMetric(float64(tc.p.Memory>>10), "MiB/hash")
		})
	}
}
