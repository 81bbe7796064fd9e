// Package bench measures camotp end to end on this machine: verifications
// through the real sign-in service, and provisioning of a fleet through a real
// broker. "camotp bench" prints what it returns.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/camotp/camotp/api"
	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/storage/dburl"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/signin"
)

// VerifyConfig sizes the verification benchmark.
type VerifyConfig struct {
	Dir      string // scratch directory for the SQLite file and keys
	Cameras  int    // users, each with a provisioned camera
	Clients  int    // concurrent clients
	Duration time.Duration
	// HTTP sends every verification through the JSON API of a real HTTP
	// server on loopback, and measures a no-op handler with the same
	// client and the same requests in the same run.
	HTTP bool
	// DB is the database as serve --db takes it ("": SQLite in Dir).
	DB string
	// Nodes > 1 runs the load on one node, then on Nodes nodes sharing
	// the database (each its own connection pool on PostgreSQL), and
	// compares them.
	Nodes int
}

// Phase is one measured run.
type Phase struct {
	Name          string
	Verifications int
	Elapsed       time.Duration
	PerSecond     float64
	P50, P99      time.Duration
	// CPU is the process's CPU time (user and system) in the timed part:
	// on a machine shared with other work it says more than the rate.
	CPU time.Duration
	// Writer is what the SQLite writer did in the timed part (zero on
	// other backends).
	Writer sqlite.WriterStats
}

func (p Phase) String() string {
	s := fmt.Sprintf("%-22s %7d in %8s: %8.0f/s, p50 %9s, p99 %9s", p.Name+":", p.Verifications,
		p.Elapsed.Round(time.Millisecond), p.PerSecond, p.P50.Round(time.Microsecond), p.P99.Round(time.Microsecond))
	if p.CPU > 0 {
		per, unit := p.CPU/time.Duration(max(p.Verifications, 1)), 10*time.Nanosecond
		if per > time.Millisecond {
			unit = time.Microsecond
		}
		s += fmt.Sprintf(", CPU %s per verification", per.Round(unit))
	}
	if w, n := p.Writer, float64(max(p.Verifications, 1)); w.Commits > 0 {
		s += fmt.Sprintf("\n  %-22s %.2f commits, %.2f writes, %.1f WAL pages per verification; %.1f writes, %.1f pages per commit; %d checkpoints",
			"sqlite writer:", float64(w.Commits)/n, float64(w.Writes)/n, float64(w.Pages)/n,
			float64(w.Writes)/float64(w.Commits), float64(w.Pages)/float64(w.Commits), w.Checkpoints)
	}
	return s
}

// VerifyResult is what the verification benchmark measured.
type VerifyResult struct {
	DB     string
	Phases []Phase
	// Ratios compare phases measured side by side, e.g. "HTTP verify /
	// no-op handler".
	Ratios []string
	// RawValidate is one totp.ValidateCustom; RawWrite one replay-record
	// write (AcceptStep) alone.
	RawValidate, RawWrite time.Duration
}

func (r VerifyResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verify on %s:\n", r.DB)
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	for _, x := range r.Ratios {
		fmt.Fprintf(&b, "  %s\n", x)
	}
	if len(r.Phases) > 0 {
		per := r.Phases[0].Elapsed / time.Duration(max(r.Phases[0].Verifications, 1))
		fmt.Fprintf(&b, "  raw totp.ValidateCustom: %s (the first phase costs %.0fx its concurrent share)\n", r.RawValidate, float64(per)/float64(r.RawValidate))
		fmt.Fprintf(&b, "  raw replay-record write: %s (the first phase costs %.1fx its concurrent share)", r.RawWrite, float64(per)/float64(r.RawWrite))
	}
	return b.String()
}

// virtualClock is the benchmark's time: it moves one TOTP step per round,
// so every camera gets a fresh code each round.
type virtualClock struct{ ns atomic.Int64 }

func (c *virtualClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// node is one camotp node of the benchmark: a store and a sign-in service
// (and an HTTP server when measured over HTTP).
type node struct {
	st   storage.Store
	svc  *signin.Service
	http *httptest.Server
}

// verifyFn checks user i's code on its pending token.
type verifyFn func(ctx context.Context, i int, token, code string) error

// Verify runs the verify step — pending-token lookup, throttle check,
// camera and sealed seed lookup, code check with the durable replay
// record, throttle reset, session creation, audit — from Clients
// goroutines for Duration per phase. Each round every camera signs in
// once, at the next TOTP step.
func Verify(ctx context.Context, cfg VerifyConfig) (VerifyResult, error) {
	key, err := masterkey.Load(filepath.Join(cfg.Dir, "master.key"), "")
	if err != nil {
		return VerifyResult{}, err
	}
	target, err := dburl.Parse(cfg.DB, cfg.Dir)
	if err != nil {
		return VerifyResult{}, err
	}
	if target.Backend == dburl.SQLite && cfg.DB == "" {
		target.Path = filepath.Join(cfg.Dir, "bench.db")
	}
	if cfg.Nodes > 1 && target.Backend != dburl.Postgres {
		return VerifyResult{}, errors.New("--nodes needs a PostgreSQL --db: one process owns a SQLite file")
	}
	clock := &virtualClock{}
	clock.ns.Store(time.Now().Truncate(30 * time.Second).UnixNano())
	nodes := make([]*node, max(cfg.Nodes, 1))
	for i := range nodes {
		n := &node{}
		if i > 0 && target.Backend == dburl.SQLite {
			n.st = nodes[0].st // one process owns a SQLite file
		} else if n.st, err = dburl.Open(ctx, target, key, clock.Now); err != nil {
			return VerifyResult{}, err
		} else {
			defer n.st.Close()
		}
		if n.svc, err = signin.NewService(n.st, signin.DefaultConfig(), clock.Now, nil); err != nil {
			return VerifyResult{}, err
		}
		if cfg.HTTP {
			mux := http.NewServeMux()
			api.New(n.svc, slog.New(slog.DiscardHandler)).Register(mux)
			n.http = httptest.NewServer(mux)
			defer n.http.Close()
		}
		nodes[i] = n
	}
	st := nodes[0].st
	if existing, err := st.Users(ctx); err != nil {
		return VerifyResult{}, err
	} else if len(existing) > 0 {
		// The benchmark's users have a known password: never add them
		// beside real ones.
		return VerifyResult{}, fmt.Errorf("bench verify: %s holds %d users; give it an empty database", target, len(existing))
	}
	users, seeds, err := setUpFleet(ctx, st, cfg.Cameras)
	if err != nil {
		return VerifyResult{}, err
	}
	run := func(name string, fn verifyFn) (Phase, error) {
		return runRounds(ctx, cfg, name, st, clock, users, seeds, fn)
	}
	res := VerifyResult{DB: target.String()}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients, MaxConnsPerHost: cfg.Clients}}
	defer client.CloseIdleConnections()
	measure := func(count int) (Phase, error) {
		some := nodes[:count]
		label := "in-process"
		if cfg.HTTP {
			label = "HTTP"
		}
		if cfg.Nodes > 1 {
			label += fmt.Sprintf(", %d node(s)", count)
		}
		if !cfg.HTTP {
			return run("verify "+label, func(ctx context.Context, i int, token, code string) error {
				_, err := some[i%len(some)].svc.Verify(ctx, token, code, "127.0.0.1")
				return err
			})
		}
		return run("verify "+label, func(ctx context.Context, i int, token, code string) error {
			return post(ctx, client, some[i%len(some)].http.URL+"/api/v1/auth/verify", token, code)
		})
	}
	first, err := measure(1)
	if err != nil {
		return VerifyResult{}, err
	}
	res.Phases = append(res.Phases, first)
	if cfg.HTTP {
		noop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req api.VerifyRequest
			if err := httpx.Decode(w, r, &req); err != nil {
				httpx.WriteError(w, http.StatusBadRequest, err.Error())
				return
			}
			httpx.WriteJSON(w, http.StatusOK, api.VerifyResponse{SessionToken: "no-op"})
		}))
		defer noop.Close()
		p, err := run("no-op handler, HTTP", func(ctx context.Context, _ int, token, code string) error {
			return post(ctx, client, noop.URL+"/api/v1/auth/verify", token, code)
		})
		if err != nil {
			return VerifyResult{}, err
		}
		res.Phases = append(res.Phases, p)
		res.Ratios = append(res.Ratios, fmt.Sprintf("HTTP verify / no-op handler: %.0f %% of the rate (goal ≥ 50 %%), p99 %s (goal < 5 ms)",
			100*first.PerSecond/p.PerSecond, first.P99.Round(time.Microsecond)))
	}
	if len(nodes) > 1 {
		p, err := measure(len(nodes))
		if err != nil {
			return VerifyResult{}, err
		}
		res.Phases = append(res.Phases, p)
		res.Ratios = append(res.Ratios, fmt.Sprintf("%d nodes / 1 node: %.2f of the rate (goal: lose ≤ 20 %% on a machine whose cores the nodes, the database and the load share)",
			len(nodes), p.PerSecond/first.PerSecond))
	}
	res.RawValidate = rawValidate(seeds[0])
	res.RawWrite, err = rawWrite(ctx, st)
	return res, err
}

// post sends one verification to url and wants 200.
func post(ctx context.Context, client *http.Client, url, token, code string) error {
	body, _ := json.Marshal(api.VerifyRequest{Token: token, Code: code})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// setUpFleet adds n users, each with a provisioned camera assigned.
func setUpFleet(ctx context.Context, st storage.Store, n int) ([]string, []device.Seed, error) {
	hash, err := password.Hash("benchmark-password")
	if err != nil {
		return nil, nil, err
	}
	seeds := make([]device.Seed, n)
	users := make([]string, n)
	for i := range n {
		users[i] = fmt.Sprintf("bench-user-%06d", i)
		serial := fmt.Sprintf("BENCH-%06d", i)
		if err := st.AddUser(ctx, model.User{Username: users[i], Email: users[i] + "@bench"}, hash); err != nil {
			return nil, nil, err
		}
		if err := st.AddCamera(ctx, serial, device.Body4, "cam1:bench"); err != nil {
			return nil, nil, err
		}
		seed, _ := provisioning.NewSeed()
		v, err := st.StartOp(ctx, serial, model.OpProvision, &seed, make([]byte, 32), func(uint64) ([]byte, error) { return nil, nil })
		if err != nil {
			return nil, nil, err
		}
		if _, err := st.CompleteOp(ctx, serial, v); err != nil {
			return nil, nil, err
		}
		seed.Version = v
		seeds[i] = seed
		if err := st.Assign(ctx, serial, users[i]); err != nil {
			return nil, nil, err
		}
	}
	return users, seeds, nil
}

// runRounds measures fn for cfg.Duration: each round moves the clock one
// step, gives every user a pending token (not timed), then has the clients
// verify every user's current code (timed).
func runRounds(ctx context.Context, cfg VerifyConfig, name string, st storage.Store, clock *virtualClock, users []string, seeds []device.Seed, fn verifyFn) (Phase, error) {
	var (
		mu       sync.Mutex
		lat      []time.Duration
		fail     atomic.Int64
		firstErr atomic.Value
		timed    time.Duration
		tokens   = make([]string, len(users))
		err      error
		writer   sqlite.WriterStats
		cpu      time.Duration
	)
	deadline := time.Now().Add(cfg.Duration)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		clock.ns.Add(int64(30 * time.Second))
		for i, u := range users {
			if tokens[i], err = st.CreateToken(ctx, model.TokenPending, u, signin.MethodBodycam, "127.0.0.1", 5*time.Minute); err != nil {
				return Phase{}, err
			}
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		w0, c0 := writerStats(st), cpuTime()
		t0 := time.Now()
		for range cfg.Clients {
			// Labelled for profiles (pprof -tagfocus bench=timed): the timed
			// part alone, with the SQLite writer's commits of its writes.
			wg.Go(func() {
				pprof.Do(ctx, pprof.Labels("bench", "timed"), func(ctx context.Context) {
					var local []time.Duration
					for {
						i := int(next.Add(1) - 1)
						if i >= len(users) {
							break
						}
						code, _ := seeds[i].Code(clock.Now())
						t1 := time.Now()
						err := fn(ctx, i, tokens[i], code)
						local = append(local, time.Since(t1))
						if err != nil && fail.Add(1) == 1 {
							firstErr.Store(fmt.Errorf("%s: %w", users[i], err))
						}
					}
					mu.Lock()
					lat = append(lat, local...)
					mu.Unlock()
				})
			})
		}
		wg.Wait()
		timed += time.Since(t0)
		cpu += cpuTime() - c0
		w1 := writerStats(st)
		writer.Commits += w1.Commits - w0.Commits
		writer.Writes += w1.Writes - w0.Writes
		writer.Pages += w1.Pages - w0.Pages
		writer.Checkpoints += w1.Checkpoints - w0.Checkpoints
	}
	if n := fail.Load(); n > 0 {
		return Phase{}, fmt.Errorf("%s: %d of %d verifications failed; first: %v", name, n, len(lat), firstErr.Load())
	}
	if len(lat) == 0 {
		return Phase{}, fmt.Errorf("%s: nothing measured", name)
	}
	slices.Sort(lat)
	p := Phase{Name: name, Verifications: len(lat), Elapsed: timed, P50: lat[len(lat)/2], P99: lat[len(lat)*99/100], CPU: cpu, Writer: writer}
	p.PerSecond = float64(p.Verifications) / timed.Seconds()
	return p, nil
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writerStats are the SQLite writer's counters (zero on other backends).
func writerStats(st storage.Store) sqlite.WriterStats {
	if w, ok := st.(interface{ WriterStats() sqlite.WriterStats }); ok {
		return w.WriterStats()
	}
	return sqlite.WriterStats{}
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

func rawWrite(ctx context.Context, st storage.Store) (time.Duration, error) {
	const n = 5000
	t0 := time.Now()
	for i := range n {
		if _, err := st.AcceptStep(ctx, "raw-write", 1, int64(i), 0); err != nil {
			return 0, err
		}
	}
	return time.Since(t0) / n, nil
}
