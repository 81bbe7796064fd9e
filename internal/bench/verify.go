// Package bench measures camotp end to end on this machine: verifications
// through the real sign-in service, and provisioning of a fleet through a real
// broker. "camotp bench" prints what it returns.
package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
)

// VerifyConfig sizes the verification benchmark.
type VerifyConfig struct {
	Dir      string // scratch directory for the SQLite file
	Cameras  int    // users, each with a provisioned camera
	Clients  int    // concurrent clients
	Duration time.Duration
}

// VerifyResult is what the verification benchmark measured.
type VerifyResult struct {
	Verifications int
	Elapsed       time.Duration
	PerSecond     float64
	P50, P99      time.Duration
	// RawValidate is one totp.ValidateCustom; RawWrite one SQLite write.
	RawValidate, RawWrite time.Duration
}

func (r VerifyResult) String() string {
	per := r.Elapsed / time.Duration(max(r.Verifications, 1))
	return fmt.Sprintf(`verify: %d verifications in %s: %.0f/s, p50 %s, p99 %s
  raw totp.ValidateCustom: %s (real path costs %.0fx its concurrent share)
  raw SQLite write:        %s (real path costs %.1fx its concurrent share)`,
		r.Verifications, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.P50, r.P99,
		r.RawValidate, float64(per)/float64(r.RawValidate), r.RawWrite, float64(per)/float64(r.RawWrite))
}

// virtualClock is the benchmark's time: it moves one TOTP step per round,
// so every camera gets a fresh code each round.
type virtualClock struct{ ns atomic.Int64 }

func (c *virtualClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Verify runs Service.Verify — pending-token lookup, throttle check, camera
// and sealed seed lookup, code check with the durable replay record, throttle
// reset, session creation, audit — from Clients goroutines for Duration.
// Each round every camera signs in once, at the next TOTP step.
func Verify(ctx context.Context, cfg VerifyConfig) (VerifyResult, error) {
	key, err := masterkey.Load(filepath.Join(cfg.Dir, "master.key"), "")
	if err != nil {
		return VerifyResult{}, err
	}
	clock := &virtualClock{}
	clock.ns.Store(time.Now().Truncate(30 * time.Second).UnixNano())
	st, err := sqlite.Open(ctx, filepath.Join(cfg.Dir, "bench.db"), key, clock.Now)
	if err != nil {
		return VerifyResult{}, err
	}
	defer st.Close()
	svc, err := signin.NewService(st, signin.DefaultConfig(), clock.Now, nil)
	if err != nil {
		return VerifyResult{}, err
	}
	hash, err := password.Hash("benchmark-password")
	if err != nil {
		return VerifyResult{}, err
	}
	seeds := make([]device.Seed, cfg.Cameras)
	users := make([]string, cfg.Cameras)
	for i := range cfg.Cameras {
		users[i] = fmt.Sprintf("bench-user-%06d", i)
		serial := fmt.Sprintf("BENCH-%06d", i)
		if err := st.AddUser(ctx, model.User{Username: users[i], Email: users[i] + "@bench"}, hash); err != nil {
			return VerifyResult{}, err
		}
		if err := st.AddCamera(ctx, serial, device.Body4, "cam1:bench"); err != nil {
			return VerifyResult{}, err
		}
		seed, _ := provisioning.NewSeed()
		v, err := st.StartOp(ctx, serial, model.OpProvision, &seed, make([]byte, 32), func(uint64) ([]byte, error) { return nil, nil })
		if err != nil {
			return VerifyResult{}, err
		}
		if _, err := st.CompleteOp(ctx, serial, v); err != nil {
			return VerifyResult{}, err
		}
		seed.Version = v
		seeds[i] = seed
		if err := st.Assign(ctx, serial, users[i]); err != nil {
			return VerifyResult{}, err
		}
	}

	var (
		mu       sync.Mutex
		lat      []time.Duration
		fail     atomic.Int64
		firstErr atomic.Value
		timed    time.Duration
		tokens   = make([]string, cfg.Cameras)
	)
	deadline := time.Now().Add(cfg.Duration)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		// A round: every user has passed the password step (not timed) …
		clock.ns.Add(int64(30 * time.Second))
		for i, u := range users {
			if tokens[i], err = st.CreateToken(ctx, model.TokenPending, u, signin.MethodBodycam, "127.0.0.1", 5*time.Minute); err != nil {
				return VerifyResult{}, err
			}
		}
		// … and now all type the code their camera shows (timed).
		var next atomic.Int64
		var wg sync.WaitGroup
		t0 := time.Now()
		for range cfg.Clients {
			wg.Go(func() {
				var local []time.Duration
				for {
					i := int(next.Add(1) - 1)
					if i >= cfg.Cameras {
						break
					}
					code, _ := seeds[i].Code(clock.Now())
					t1 := time.Now()
					_, err := svc.Verify(ctx, tokens[i], code, "127.0.0.1")
					local = append(local, time.Since(t1))
					if err != nil {
						if fail.Add(1) == 1 {
							firstErr.Store(fmt.Errorf("%s: %w", users[i], err))
						}
					}
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
		}
		wg.Wait()
		timed += time.Since(t0)
	}
	if n := fail.Load(); n > 0 {
		return VerifyResult{}, fmt.Errorf("%d of %d verifications failed; first: %v", n, len(lat), firstErr.Load())
	}
	slices.Sort(lat)
	res := VerifyResult{Verifications: len(lat), Elapsed: timed, P50: lat[len(lat)/2], P99: lat[len(lat)*99/100]}
	res.PerSecond = float64(res.Verifications) / timed.Seconds()
	res.RawValidate = rawValidate(seeds[0])
	res.RawWrite, err = rawWrite(ctx, st)
	return res, err
}

func rawValidate(seed device.Seed) time.Duration {
	opts, _ := seed.Opts()
	opts.Skew = 1
	now := time.Now()
	code, _ := seed.Code(now)
	b32 := seed.Base32()
	const n = 20000
	t0 := time.Now()
	for range n {
		totp.ValidateCustom(code, b32, now, opts)
	}
	return time.Since(t0) / n
}

func rawWrite(ctx context.Context, st *sqlite.Store) (time.Duration, error) {
	const n = 5000
	t0 := time.Now()
	for i := range n {
		if _, err := st.AcceptStep(ctx, "raw-write", 1, int64(i), 0); err != nil {
			return 0, err
		}
	}
	return time.Since(t0) / n, nil
}
