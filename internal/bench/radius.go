package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/provisioning"
	camradius "github.com/camotp/camotp/radius"
	"github.com/camotp/camotp/signin"
)

// RadiusConfig sizes the RADIUS benchmark.
type RadiusConfig struct {
	Dir      string // scratch directory for the SQLite file
	Users    int    // users, each with a provisioned camera
	Clients  int    // concurrent NAS sockets
	Duration time.Duration
}

// RadiusRun is one measured server: code-step Access-Requests answered.
type RadiusRun struct {
	Requests  int
	Elapsed   time.Duration
	PerSecond float64
	P50, P99  time.Duration
}

// RadiusResult compares the real code step with a no-op sign-in service
// behind the same RADIUS server (UDP, Message-Authenticator, parsing,
// State lookup, signing), measured in the same run.
type RadiusResult struct {
	Real, Noop RadiusRun
}

func (r RadiusResult) String() string {
	line := func(name string, x RadiusRun) string {
		return fmt.Sprintf("  %-44s %6d requests in %s: %6.0f/s, p50 %s, p99 %s", name, x.Requests, x.Elapsed.Round(time.Millisecond), x.PerSecond, x.P50, x.P99)
	}
	return fmt.Sprintf("radius: Access-Requests answering a challenge with the camera code (UDP loopback)\n%s\n%s\n  the real code step runs at %.2fx the no-op's rate",
		line("real (sign-in service: throttle, seed, replay, audit)", r.Real), line("no-op sign-in service", r.Noop), r.Real.PerSecond/r.Noop.PerSecond)
}

// quickPassword stands in for the password step, which is not what is
// measured (its argon2id hash would dominate): it issues the pending
// token the real Login would, and the code step is the real one.
type quickPassword struct {
	*signin.Service
	st *sqlite.Store
}

func (q quickPassword) Login(ctx context.Context, user, _, ip, _ string) (signin.LoginResult, error) {
	tok, err := q.st.CreateToken(ctx, model.TokenPending, user, signin.MethodBodycam, ip, 5*time.Minute)
	return signin.LoginResult{Username: user, Pending: tok, Method: signin.MethodBodycam, Model: device.Body4,
		Methods: signin.UserMethods{Available: []string{signin.MethodBodycam}, Camera: device.Body4}}, err
}

// noopSignIn accepts every password and every code without any work.
type noopSignIn struct{}

func (noopSignIn) Login(_ context.Context, user, _, _, _ string) (signin.LoginResult, error) {
	return signin.LoginResult{Username: user, Pending: "noop", Method: signin.MethodBodycam, Model: device.Body4,
		Methods: signin.UserMethods{Available: []string{signin.MethodBodycam}}}, nil
}
func (noopSignIn) VerifyOnly(context.Context, string, string, string, string) error { return nil }
func (noopSignIn) SendCode(context.Context, string, string, string) (string, error) { return "", nil }

// Radius measures Access-Requests per second for the code step: each
// round every user passes the password step (an Access-Challenge, not
// timed), then all answer their challenge with the code their camera
// shows at the next TOTP step (timed), from Clients sockets at once. The
// same is run against a no-op sign-in service for the ratio.
func Radius(ctx context.Context, cfg RadiusConfig) (RadiusResult, error) {
	key, err := masterkey.Load(filepath.Join(cfg.Dir, "master.key"), "")
	if err != nil {
		return RadiusResult{}, err
	}
	clock := &virtualClock{}
	clock.ns.Store(time.Now().Truncate(30 * time.Second).UnixNano())
	st, err := sqlite.Open(ctx, filepath.Join(cfg.Dir, "radius-bench.db"), key, clock.Now)
	if err != nil {
		return RadiusResult{}, err
	}
	defer st.Close()
	svc, err := signin.NewService(st, signin.DefaultConfig(), clock.Now, nil)
	if err != nil {
		return RadiusResult{}, err
	}
	hash, err := password.Hash("benchmark-password")
	if err != nil {
		return RadiusResult{}, err
	}
	secret := []byte(camradius.NewSecret())
	if err := st.AddRadiusClient(ctx, model.RadiusClient{Name: "bench", CIDR: netip.MustParsePrefix("127.0.0.1/32"), Secret: secret}); err != nil {
		return RadiusResult{}, err
	}
	users := make([]string, cfg.Users)
	seeds := make([]device.Seed, cfg.Users)
	for i := range cfg.Users {
		users[i] = fmt.Sprintf("radius-user-%06d", i)
		serial := fmt.Sprintf("RADIUS-%06d", i)
		if err := st.AddUser(ctx, model.User{Username: users[i], Email: users[i] + "@bench"}, hash); err != nil {
			return RadiusResult{}, err
		}
		if err := st.AddCamera(ctx, serial, device.Body4, "cam1:bench"); err != nil {
			return RadiusResult{}, err
		}
		seed, _ := provisioning.NewSeed()
		v, err := st.StartOp(ctx, serial, model.OpProvision, &seed, make([]byte, 32), func(uint64) ([]byte, error) { return nil, nil })
		if err != nil {
			return RadiusResult{}, err
		}
		if _, err := st.CompleteOp(ctx, serial, v); err != nil {
			return RadiusResult{}, err
		}
		seed.Version = v
		seeds[i] = seed
		if err := st.Assign(ctx, serial, users[i]); err != nil {
			return RadiusResult{}, err
		}
	}
	var res RadiusResult
	for _, run := range []struct {
		svc  camradius.SignIn
		dest *RadiusRun
	}{{quickPassword{svc, st}, &res.Real}, {noopSignIn{}, &res.Noop}} {
		srv := camradius.New(run.svc, st, camradius.Config{Now: clock.Now})
		if err := srv.Listen("127.0.0.1:0"); err != nil {
			return RadiusResult{}, err
		}
		*run.dest, err = radiusRounds(ctx, cfg, srv.Addr(), secret, users, seeds, clock)
		srv.Close()
		if err != nil {
			return RadiusResult{}, err
		}
	}
	return res, nil
}

// radiusRounds runs rounds against addr for cfg.Duration of timed code steps.
func radiusRounds(ctx context.Context, cfg RadiusConfig, addr string, secret []byte, users []string, seeds []device.Seed, clock *virtualClock) (RadiusRun, error) {
	conns := make([]net.Conn, cfg.Clients)
	for i := range conns {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return RadiusRun{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	states := make([][]byte, len(users))
	var (
		lat   []time.Duration
		timed time.Duration
		mu    sync.Mutex
	)
	// each runs fn(i) for every user, spread over the client sockets.
	each := func(fn func(c net.Conn, buf []byte, i int) error) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, len(conns))
		for ci, c := range conns {
			wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					i := int(next.Add(1) - 1)
					if i >= len(users) || ctx.Err() != nil {
						return
					}
					if err := fn(c, buf, i); err != nil {
						errs[ci] = fmt.Errorf("%s: %w", users[i], err)
						return
					}
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	deadline := time.Now().Add(cfg.Duration)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		clock.ns.Add(int64(30 * time.Second))
		err := each(func(c net.Conn, buf []byte, i int) error {
			p, err := exchange(c, buf, secret, users[i], "benchmark-password", nil)
			if err != nil {
				return err
			}
			if p.Code != radius.CodeAccessChallenge {
				return fmt.Errorf("password step: %v %q", p.Code, rfc2865.ReplyMessage_GetString(p))
			}
			states[i] = rfc2865.State_Get(p)
			return nil
		})
		if err != nil {
			return RadiusRun{}, err
		}
		t0 := time.Now()
		err = each(func(c net.Conn, buf []byte, i int) error {
			code, _ := seeds[i].Code(clock.Now())
			t1 := time.Now()
			p, err := exchange(c, buf, secret, users[i], code, states[i])
			d := time.Since(t1)
			if err != nil {
				return err
			}
			if p.Code != radius.CodeAccessAccept {
				return fmt.Errorf("code step: %v %q", p.Code, rfc2865.ReplyMessage_GetString(p))
			}
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
			return nil
		})
		timed += time.Since(t0)
		if err != nil {
			return RadiusRun{}, err
		}
	}
	if len(lat) == 0 {
		return RadiusRun{}, errors.New("no request measured")
	}
	slices.Sort(lat)
	return RadiusRun{Requests: len(lat), Elapsed: timed, PerSecond: float64(len(lat)) / timed.Seconds(),
		P50: lat[len(lat)/2], P99: lat[len(lat)*99/100]}, nil
}

// exchange sends one PAP Access-Request with a Message-Authenticator on c
// and returns the checked answer.
func exchange(c net.Conn, buf, secret []byte, user, pw string, state []byte) (*radius.Packet, error) {
	p := radius.New(radius.CodeAccessRequest, secret)
	p.Add(80, make(radius.Attribute, 16)) // Message-Authenticator, filled in below
	rfc2865.UserName_SetString(p, user)
	rfc2865.UserPassword_SetString(p, pw)
	if state != nil {
		rfc2865.State_Set(p, state)
	}
	raw, err := p.Encode()
	if err != nil {
		return nil, err
	}
	if err := camradius.SignRequest(raw, secret); err != nil {
		return nil, err
	}
	if _, err := c.Write(raw); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("no answer: %w", err)
		}
		if n >= 20 && buf[1] != raw[1] {
			continue // a late answer to an earlier request
		}
		if err := camradius.CheckResponse(buf[:n], raw, secret); err != nil {
			return nil, err
		}
		return radius.Parse(buf[:n], secret)
	}
}
