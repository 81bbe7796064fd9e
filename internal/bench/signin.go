package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camotp/camotp/api"
	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/signin"
)

// SignInConfig sizes the sign-in benchmark.
type SignInConfig struct {
	Dir string
	// Officers each have a Body 4 camera provisioned over the embedded
	// broker and assigned.
	Officers int
	// Concurrency lists the numbers of concurrent clients measured.
	Concurrency []int
	// Duration is how long each level runs, for the real server and for
	// the no-op handler each.
	Duration time.Duration
}

// SignInLevel is one concurrency measured on both handlers.
type SignInLevel struct {
	Clients    int
	Real, Noop Phase
}

// SignInResult is what the sign-in benchmark measured.
type SignInResult struct {
	Officers  int
	Provision time.Duration // registering, connecting and provisioning the fleet
	Levels    []SignInLevel
}

func (r SignInResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sign-in (password, then the code of the officer's camera) over HTTP: %d officers, fleet provisioned in %s\n",
		r.Officers, r.Provision.Round(time.Millisecond))
	for _, l := range r.Levels {
		fmt.Fprintf(&b, "  %d client(s):\n    %s\n    %s\n    real / no-op: %.1f %% of the rate\n", l.Clients,
			strings.Replace(l.Real.String(), "per verification", "per sign-in", 1),
			strings.Replace(l.Noop.String(), "per verification", "per sign-in", 1),
			100*l.Real.PerSecond/max(l.Noop.PerSecond, 1))
	}
	return strings.TrimRight(b.String(), "\n")
}

// signInPassword is every benchmark officer's password.
const signInPassword = "bench officer password"

// SignIn measures whole sign-ins — the password step (argon2id with the
// product's parameters) and the code step with the code the officer's
// camera shows — through the JSON API of a real server with a live fleet
// (cameras connected to its embedded broker, seeds provisioned over MQTT),
// and a no-op handler answering the same requests with the same client, at
// each concurrency. Each client is an officer's station (its own address,
// sent as X-Forwarded-For from the trusted loopback). Time moves one TOTP
// step per round, in which every officer signs in once.
func SignIn(ctx context.Context, cfg SignInConfig) (SignInResult, error) {
	if cfg.Officers < 1 || len(cfg.Concurrency) == 0 || cfg.Duration <= 0 {
		return SignInResult{}, fmt.Errorf("sign-in benchmark: want officers ≥ 1, a concurrency and a duration")
	}
	if err := CheckFiles(uint64(2*cfg.Officers + 256)); err != nil {
		return SignInResult{}, err
	}
	clock := &virtualClock{}
	clock.ns.Store(time.Now().UnixNano())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sc := signin.DefaultConfig()
	sc.HashesPerSource = 1 << 10 // one station per client anyway
	sc.HashWait = time.Minute    // measure the queue, do not refuse it
	srv, err := server.Start(ctx, server.Config{DataDir: filepath.Join(cfg.Dir, "server"), HTTPAddr: "127.0.0.1:0",
		MQTTAddr: "127.0.0.1:0", Log: quiet, Now: clock.Now, SignIn: &sc,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	if err != nil {
		return SignInResult{}, err
	}
	defer srv.Close()

	t0 := time.Now()
	fleet, users, err := signInFleet(ctx, srv, filepath.Join(cfg.Dir, "cams"), cfg.Officers)
	if err != nil {
		return SignInResult{}, err
	}
	defer fleet.Stop()
	res := SignInResult{Officers: cfg.Officers, Provision: time.Since(t0)}
	seeds := make([]device.Seed, len(users))
	for i, st := range fleet.States {
		if seeds[i], err = st.Seed(); err != nil {
			return SignInResult{}, fmt.Errorf("camera %s: %w", st.Identity().Serial, err)
		}
	}
	noop := httptest.NewServer(noopSignInHandler())
	defer noop.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}, Timeout: 2 * time.Minute}
	for _, n := range cfg.Concurrency {
		lvl := SignInLevel{Clients: n}
		for _, h := range []struct {
			name, url string
			into      *Phase
		}{{"sign-in HTTP", "http://" + srv.HTTPAddr(), &lvl.Real}, {"no-op handler, HTTP", noop.URL, &lvl.Noop}} {
			p, err := signInRounds(ctx, client, h.url, n, cfg.Duration, clock, users, seeds)
			if err != nil {
				return SignInResult{}, fmt.Errorf("%s, %d clients: %w", h.name, n, err)
			}
			p.Name = h.name
			*h.into = p
		}
		res.Levels = append(res.Levels, lvl)
	}
	return res, nil
}

// signInFleet adds n officers with a Body 4 camera each: registered,
// connected to srv's broker, provisioned and assigned.
func signInFleet(ctx context.Context, srv *server.Server, dir string, n int) (*Fleet, []string, error) {
	hash, err := password.Hash(signInPassword)
	if err != nil {
		return nil, nil, err
	}
	fleet, err := NewFleet(dir, "SIGNIN", n, device.Body4)
	if err != nil {
		return nil, nil, err
	}
	users := make([]string, n)
	for i, st := range fleet.States {
		users[i] = fmt.Sprintf("officer%05d", i)
		if err := srv.Store.AddUser(ctx, model.User{Username: users[i], Role: "user"}, hash); err != nil {
			return nil, nil, err
		}
		pub := st.Identity().Public()
		if err := srv.Store.AddCamera(ctx, pub.Serial, pub.Model, pub.PublicKey); err != nil {
			return nil, nil, err
		}
	}
	fleet.Connect("tcp://"+srv.MQTTAddr(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := fleet.WaitConnected(ctx, 5*time.Minute); err != nil {
		fleet.Stop()
		return nil, nil, err
	}
	for _, st := range fleet.States {
		if _, err := srv.Provisioning.Start(ctx, st.Identity().Serial, model.OpProvision, "bench", ""); err != nil {
			fleet.Stop()
			return nil, nil, err
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		states, err := srv.Store.CameraStates(ctx)
		if err != nil {
			fleet.Stop()
			return nil, nil, err
		}
		if states[string(model.StateProvisioned)] == n {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			fleet.Stop()
			return nil, nil, fmt.Errorf("only %d of %d cameras provisioned", states[string(model.StateProvisioned)], n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, st := range fleet.States {
		if err := srv.Store.Assign(ctx, st.Identity().Serial, users[i]); err != nil {
			fleet.Stop()
			return nil, nil, err
		}
	}
	return fleet, users, nil
}

// signInRounds has clients sign officers in at base for d: each round
// moves the clock one step and signs every officer in once (a round cut
// short when d is up). It returns the sign-ins' latencies.
func signInRounds(ctx context.Context, client *http.Client, base string, clients int, d time.Duration, clock *virtualClock, users []string, seeds []device.Seed) (Phase, error) {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		fail  atomic.Int64
		first atomic.Value
		timed time.Duration
	)
	c0 := cpuTime()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		clock.ns.Add(int64(30 * time.Second))
		var next atomic.Int64
		var wg sync.WaitGroup
		t0 := time.Now()
		for c := range clients {
			station := fmt.Sprintf("10.%d.%d.%d", c>>16&255, c>>8&255, c&255+1)
			wg.Go(func() {
				var local []time.Duration
				for time.Now().Before(deadline) {
					i := int(next.Add(1) - 1)
					if i >= len(users) {
						break
					}
					code, _ := seeds[i].Code(clock.Now())
					t1 := time.Now()
					err := signInOnce(ctx, client, base, station, users[i], code)
					local = append(local, time.Since(t1))
					if err != nil && fail.Add(1) == 1 {
						first.Store(fmt.Errorf("%s: %w", users[i], err))
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
		return Phase{}, fmt.Errorf("%d of %d sign-ins failed; first: %v", n, len(lat), first.Load())
	}
	if len(lat) == 0 {
		return Phase{}, fmt.Errorf("nothing measured")
	}
	slices.Sort(lat)
	p := Phase{Verifications: len(lat), Elapsed: timed, P50: lat[len(lat)/2], P99: lat[len(lat)*99/100], CPU: cpuTime() - c0}
	p.PerSecond = float64(p.Verifications) / timed.Seconds()
	return p, nil
}

// signInOnce signs user in at base from station: the password, then code.
func signInOnce(ctx context.Context, client *http.Client, base, station, user, code string) error {
	var login api.LoginResponse
	if err := postJSON(ctx, client, base+"/api/v1/auth/login", station, api.LoginRequest{Username: user, Password: signInPassword}, &login); err != nil {
		return fmt.Errorf("password step: %w", err)
	}
	var v api.VerifyResponse
	if err := postJSON(ctx, client, base+"/api/v1/auth/verify", station, api.VerifyRequest{Token: login.Token, Code: code}, &v); err != nil {
		return fmt.Errorf("code step: %w", err)
	}
	if v.SessionToken == "" {
		return fmt.Errorf("code step: no session")
	}
	return nil
}

// postJSON posts in as JSON from station (X-Forwarded-For) and decodes a
// 200 answer into out.
func postJSON(ctx context.Context, client *http.Client, url, station string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", station)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	return json.Unmarshal(raw, out)
}

// noopSignInHandler answers the two sign-in calls at once with answers of
// the real shape: what HTTP and JSON cost, the same client measuring it.
func noopSignInHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var req api.LoginRequest
		json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.LoginResponse{Token: "pending-token-of-the-noop-handler", Authenticator: signin.MethodBodycam,
			Methods: []string{signin.MethodBodycam}})
	})
	mux.HandleFunc("POST /api/v1/auth/verify", func(w http.ResponseWriter, r *http.Request) {
		var req api.VerifyRequest
		json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.VerifyResponse{SessionToken: "session-token-of-the-noop-handler"})
	})
	return mux
}
