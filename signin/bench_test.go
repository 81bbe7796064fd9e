package signin

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// BenchmarkCheck is the verifier's code check on the real path: SQLite
// (WAL) state read, HMAC over the window, and the durable replay record
// written before the answer. Every iteration verifies a fresh code: camera
// i % cams at step i / cams. It reports p50/p99 latency.
func BenchmarkCheck(b *testing.B) {
	const cams = 4096
	st := newStore(b, b.TempDir(), nil)
	c := &Checker{Store: st, Window: 1, ResyncRange: 10}
	seeds := make([]string, cams)
	for i := range seeds {
		seeds[i] = fmt.Sprintf("cam:%05d", i)
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for pb.Next() {
			i := next.Add(1) - 1
			cam, step := i%cams, i/cams
			now := base.Add(time.Duration(step) * 30 * time.Second)
			code, _ := testSeed.Code(now)
			t0 := time.Now()
			res, err := c.Check(context.Background(), seeds[cam], testSeed, code, now)
			local = append(local, time.Since(t0))
			if err != nil || res.Outcome != Accepted {
				b.Errorf("check %d: %v %v", i, res.Outcome, err)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRawValidate is pquerna/otp's ValidateCustom alone (no state), the
// floor the real check is compared with.
func BenchmarkRawValidate(b *testing.B) {
	opts, _ := testSeed.Opts()
	opts.Skew = 1
	code, _ := testSeed.Code(base)
	b32 := testSeed.Base32()
	for b.Loop() {
		if ok, _ := totp.ValidateCustom(code, b32, base, opts); !ok {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkReplayWrite is one durable replay-record write alone.
func BenchmarkReplayWrite(b *testing.B) {
	st := newStore(b, b.TempDir(), nil)
	var i int64
	for b.Loop() {
		i++
		if ok, err := st.AcceptStep(context.Background(), "cam:x", 1, i, 0); err != nil || !ok {
			b.Fatal(err)
		}
	}
}
