package postgres

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/sqlite"
)

// BenchmarkSignInWrites is the store's share of one code check, on both
// backends, from parallel callers: reserve a slot on two counters, record
// the accepted step, exchange the pending token for a session (with the
// audit row and the counters cleared). Each op is one user's sign-in.
func BenchmarkSignInWrites(b *testing.B) {
	ctx := context.Background()
	backends := map[string]func(b *testing.B) storage.Store{
		"sqlite": func(b *testing.B) storage.Store {
			s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "b.db"), testKey(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(b *testing.B) storage.Store { return openTest(b, nil) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			s := backends[name](b)
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					user := fmt.Sprintf("u%d", i)
					pair := model.ThrottleRule{Key: "otp:pair:" + user + "\x00ip", Limit: 5, Window: time.Minute, BlockBase: time.Minute, BlockMax: time.Hour}
					acct := model.ThrottleRule{Key: "otp:acct:" + user, Limit: 10, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
					pending, err := s.CreateToken(ctx, model.TokenPending, user, "bodycam", "ip", time.Minute)
					if err != nil {
						b.Error(err)
						return
					}
					if res, err := s.ReserveAttempt(ctx, time.Now(), pair, acct); err != nil || !res.Granted {
						b.Error(res, err)
						return
					}
					if ok, err := s.AcceptStep(ctx, "cam-"+user, 1, 1000, 0); err != nil || !ok {
						b.Error(ok, err)
						return
					}
					if _, err := s.ExchangeToken(ctx, pending, model.TokenSession, user, "bodycam", "ip", time.Hour,
						nil, model.AuditEntry{Actor: user, Action: "login.mfa", Subject: user, Result: "ok"}, model.Clear(pair, acct)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
