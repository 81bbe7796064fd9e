package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/atomicfile"
	"github.com/camotp/camotp/internal/bench"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/provisioning"
)

// fleetSim is one run of camotp fleet-sim.
type fleetSim struct {
	env      Env
	admin    adminClient
	broker   string
	auth     string // the cameras' broker credential: token or derived
	dir      string
	prefix   string
	n        int
	model    device.Model
	assign   bool
	workers  int
	timeout  time.Duration
	retries  int // further tries of an admin call the server did not answer
	progress func(done, total int, elapsed time.Duration)
	hold     bool    // keep the fleet connected until stopped
	spread   float64 // each camera a clock drift in ±spread ppm (0: none given)
	report   string  // JSON report file ("": none)
	// offset and ppm, when either is set, are every camera's clock drift
	// (plus ±spread ppm each), from now.
	offset time.Duration
	ppm    float64

	mu       sync.Mutex
	failures []string
	retried  int // admin calls tried again
	// connectedAt and provedAt are when each camera's link came up and
	// when its broker took the ack of a new seed (the camera's side);
	// startedAt and provisionAt when connecting and provisioning began.
	connectedAt, provedAt  map[string]time.Time
	startedAt, provisionAt time.Time
}

func (f *fleetSim) fail(format string, a ...any) {
	f.mu.Lock()
	f.failures = append(f.failures, fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

// fleetSimCmd is camotp fleet-sim: a fleet of headless cameras.
func fleetSimCmd(env Env) *cobra.Command {
	t := &adminTarget{}
	f := &fleetSim{env: env}
	var modelName string
	c := &cobra.Command{
		Use:   "fleet-sim [--server URL] [--broker URL] --cameras N [--assign]",
		Short: "N headless cameras registered, provisioned (and assigned) through the admin API; Ctrl-C stops cleanly",
		Args:  noArgs,
	}
	fs := c.Flags()
	t.addFlags(fs)
	fs.StringVar(&f.broker, "broker", "tcp://"+defaultMQTT, "MQTT broker the cameras connect to")
	fs.StringVar(&f.auth, "broker-auth", provisioning.CredentialToken, "what the cameras present to the broker: token (embedded broker, EMQX hook) or derived (a broker whose logins camotp keeps, mosquitto dynamic security; the server key is fetched from the admin API and pinned)")
	fs.IntVar(&f.n, "cameras", 100, "number of headless cameras")
	fs.StringVar(&f.dir, "state", ".camotp-fleet", "directory holding every simulated camera's state (reused on the next run)")
	fs.StringVar(&f.prefix, "prefix", "SIM", "serial prefix (serials are PREFIX-00000, ...)")
	fs.StringVar(&modelName, "model", "body4", "camera model: body4, body3 or workforce")
	fs.BoolVar(&f.assign, "assign", false, "create a user per camera (PREFIX-user-N) and assign the camera; passwords go to STATE/users.txt (0600)")
	fs.IntVar(&f.workers, "concurrency", 16, "concurrent admin API calls")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up waiting for proofs after this long")
	fs.IntVar(&f.retries, "retries", 8, "retry an admin call that failed because the server was down or overloaded this many times (jittered backoff, 250 ms doubling to 5 s)")
	fs.BoolVar(&f.hold, "hold", false, "keep the fleet connected after provisioning until Ctrl-C (to try consoles, storms and sign-in load against a live fleet)")
	fs.Float64Var(&f.spread, "clock-ppm-spread", 0, "give each camera without one a clock drift drawn in ±N ppm (kept in its state: camera run and camera code apply it)")
	fs.DurationVar(&f.offset, "clock-offset", 0, "give every camera this clock offset from now (e.g. 90s, -2m; kept in its state; reported by its clock telemetry; camera run and camera code apply it)")
	fs.Float64Var(&f.ppm, "clock-ppm", 0, "give every camera a clock drift of N ppm from now (plus ±--clock-ppm-spread each; kept in its state)")
	fs.StringVar(&f.report, "report", "", "write a JSON report to this file: per camera its state and the times to connect and to provision")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		var err error
		if f.model, err = device.ParseModel(modelName); err != nil {
			return usageError{err}
		}
		if f.auth != provisioning.CredentialToken && f.auth != provisioning.CredentialDerived {
			return usagef("fleet-sim: --broker-auth: want token or derived, got %q", f.auth)
		}
		if f.n < 1 || f.workers < 1 || f.timeout <= 0 || f.retries < 0 {
			return usagef("fleet-sim: --cameras and --concurrency must be ≥ 1, --timeout > 0, --retries ≥ 0")
		}
		if math.IsNaN(f.spread) || f.spread < 0 || f.spread > 1e5 {
			return usagef("fleet-sim: --clock-ppm-spread: want 0 to 100000 ppm, got %v", f.spread)
		}
		if math.IsNaN(f.ppm) || math.Abs(f.ppm) > 1e5 || f.offset.Abs() > 24*time.Hour {
			return usagef("fleet-sim: --clock-ppm: want -100000 to 100000 ppm, --clock-offset within ±24h")
		}
		if err := device.ValidateSerial(fmt.Sprintf("%s-%05d", f.prefix, 0)); err != nil {
			return usagef("fleet-sim: --prefix: %v", err)
		}
		if f.admin, err = t.client(env); err != nil {
			return err
		}
		f.progress = plainProgress(env.Stderr)
		if isTerminal(env.Stderr) {
			f.progress = barProgress(env.Stderr)
		}
		return f.run(cmd.Context())
	}
	return c
}

// plainProgress prints a line when the count changes, at most once a second.
func plainProgress(w io.Writer) func(int, int, time.Duration) {
	last, lastAt := -1, time.Time{}
	return func(done, total int, elapsed time.Duration) {
		if done == last || (done != total && time.Since(lastAt) < time.Second) {
			return
		}
		last, lastAt = done, time.Now()
		fmt.Fprintf(w, "fleet-sim: %d/%d provisioned (%s)\n", done, total, elapsed.Round(100*time.Millisecond))
	}
}

// barProgress redraws one terminal line.
func barProgress(w io.Writer) func(int, int, time.Duration) {
	const width = 40
	return func(done, total int, elapsed time.Duration) {
		fill := width * done / total
		fmt.Fprintf(w, "\r[%s%s] %d/%d provisioned  %s ", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
			done, total, elapsed.Round(100*time.Millisecond))
		if done == total {
			fmt.Fprintln(w)
		}
	}
}

func (f *fleetSim) run(ctx context.Context) error {
	out := f.env.Stdout
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := bench.CheckFiles(uint64(f.n + 256)); err != nil {
		return err
	}
	fleet, err := bench.NewFleet(f.dir, f.prefix, f.n, f.model)
	if err != nil {
		return fmt.Errorf("camera states in %s: %w", f.dir, err)
	}
	serials := make([]string, f.n)
	for i, st := range fleet.States {
		serials[i] = st.Identity().Serial
	}
	if err := f.giveDrifts(fleet); err != nil {
		return err
	}
	f.connectedAt, f.provedAt = map[string]time.Time{}, map[string]time.Time{}
	fleet.Observe = func(serial string, e provisioning.LinkEvent) {
		if e.Kind == provisioning.EventUp {
			f.mu.Lock()
			if _, ok := f.connectedAt[serial]; !ok {
				f.connectedAt[serial] = e.At
			}
			f.mu.Unlock()
		}
	}
	fleet.Applied = func(serial string, a provisioning.Ack) {
		if a.DeliversSeed() {
			f.mu.Lock()
			f.provedAt[serial] = time.Now()
			f.mu.Unlock()
		}
	}
	fmt.Fprintf(out, "fleet-sim: %d %s cameras (state in %s), server %s, broker %s\n", f.n, f.model, f.dir, strings.Join(f.admin.bases, ","), f.broker)

	// Register every camera (one already registered with the same key is fine).
	f.each(ctx, serials, func(ctx context.Context, i int) {
		pub := fleet.States[i].Identity().Public()
		err := f.withRetry(ctx, func(bool) error {
			return f.admin.do(ctx, "POST", "/api/v1/admin/cameras", provisioning.CameraRequest{Serial: pub.Serial, Model: string(pub.Model), PublicKey: pub.PublicKey}, nil)
		})
		var ae apiError
		if errors.As(err, &ae) && ae.status == http.StatusConflict {
			var cam model.Camera
			if err = f.admin.do(ctx, "GET", "/api/v1/admin/cameras/"+pub.Serial, nil, &cam); err == nil && cam.PublicKey != pub.PublicKey {
				err = fmt.Errorf("registered on the server with another public key")
			}
		}
		if err != nil && ctx.Err() == nil {
			f.fail("register %s: %v", pub.Serial, err)
		}
	})
	if ctx.Err() != nil {
		return f.summary(fleet, simResult{stopped: "interrupted while registering"})
	}

	if f.auth == provisioning.CredentialDerived {
		// Enrolment: every camera pins the server's key, from which its
		// broker password is derived.
		var k provisioning.ServerKeyResponse
		if err := f.withRetry(ctx, func(bool) error { return f.admin.do(ctx, "GET", provisioning.ServerKeyPath, nil, &k) }); err != nil {
			return fmt.Errorf("fleet-sim: the server key: %w", err)
		}
		for _, st := range fleet.States {
			if err := st.PinServerKey(k.ServerKey); err != nil {
				return fmt.Errorf("fleet-sim: camera %s: %w", st.Identity().Serial, err)
			}
		}
	}
	before := bench.MemInUse()
	t0 := time.Now()
	f.startedAt = t0
	fleet.ReportClock = simulatedClock
	fleet.ConnectWith(provisioning.LinkConfig{Broker: f.broker, Log: quiet, Credential: f.auth})
	defer fleet.Stop()
	if err := fleet.WaitConnected(ctx, 2*time.Minute); err != nil {
		return f.summary(fleet, simResult{stopped: fmt.Sprintf("connecting: %v", err)})
	}
	var res simResult
	if after := bench.MemInUse(); after > before {
		res.memPerCamera = (after - before) / uint64(f.n)
	}
	fmt.Fprintf(out, "fleet-sim: %d cameras connected in %s\n", f.n, time.Since(t0).Round(time.Millisecond))

	// Provision the ones that are not yet provisioned.
	cams, err := f.cameras(ctx, serials)
	if ctx.Err() != nil {
		res.stopped = "interrupted"
		return f.summary(fleet, res)
	}
	if err != nil {
		return err
	}
	start := time.Now()
	f.provisionAt = start
	var todo []string
	for _, sn := range serials {
		if c := cams[sn]; c.State != model.StateProvisioned && c.PendingOp == "" {
			todo = append(todo, sn)
		}
	}
	f.each(ctx, todo, func(ctx context.Context, i int) {
		err := f.withRetry(ctx, func(retry bool) error {
			if retry {
				// The earlier try may have reached a node that died before
				// answering: the operation is then recorded, and starting
				// another would provision the camera twice.
				var cam model.Camera
				if err := f.admin.do(ctx, "GET", "/api/v1/admin/cameras/"+todo[i], nil, &cam); err != nil {
					return err
				}
				if cam.State == model.StateProvisioned || cam.PendingOp == model.OpProvision {
					return nil
				}
			}
			err := f.admin.do(ctx, "POST", "/api/v1/admin/cameras/"+todo[i]+"/provision", nil, nil)
			var ae apiError
			if retry && errors.As(err, &ae) && ae.status == http.StatusConflict {
				return nil // an earlier try reached the server and the camera proved it already
			}
			return err
		})
		if err != nil && ctx.Err() == nil {
			f.fail("provision %s: %v", todo[i], err)
		}
	})
	res.ran = true
	var waitErr error
	res.done, waitErr = f.wait(ctx, serials, start)
	res.elapsed = time.Since(start)
	if waitErr != nil {
		// Interrupted or timed out: give proofs already on their way a
		// moment, so fewer cameras are left pending. None is marked
		// provisioned before the server checks its proof.
		grace, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		res.done, _ = f.wait(grace, serials, start)
		cancel()
		res.stopped = waitErr.Error()
	}
	if f.assign && waitErr == nil {
		if err := f.assignUsers(ctx, serials, cams); err != nil {
			f.fail("assign: %v", err)
		}
	}
	if err := f.summary(fleet, res); err != nil || !f.hold {
		return err
	}
	fmt.Fprintf(out, "fleet-sim: holding %d cameras connected to %s; Ctrl-C stops\n", f.n, f.broker)
	<-ctx.Done()
	return nil
}

// giveDrifts gives each camera without a simulated clock drift one drawn
// in ±f.spread ppm, from now (a camera's crystal keeps its rate: one that
// has a drift keeps it).
//
// --clock-offset and --clock-ppm give every camera theirs (and ±spread
// ppm more), whatever it had.
func (f *fleetSim) giveDrifts(fleet *bench.Fleet) error {
	every := f.offset != 0 || f.ppm != 0
	if f.spread == 0 && !every {
		return nil
	}
	now := time.Now()
	for _, st := range fleet.States {
		if _, ok, err := st.SimulatedDrift(); err != nil || (ok && !every) {
			if err != nil {
				return err
			}
			continue
		}
		ppm := f.ppm + (mrand.Float64()*2-1)*f.spread
		if err := st.SetSimulatedDrift(device.ClockDrift{PPM: ppm, Offset: f.offset, Since: now}); err != nil {
			return err
		}
	}
	return nil
}

// simulatedClock is the camera's clock as its simulated drift makes it
// run (the system clock when it has none): what its clock reports give.
func simulatedClock(st *device.State) device.Clock {
	d, ok, err := st.SimulatedDrift()
	if err != nil || !ok {
		return device.SystemClock{}
	}
	return d.Clock(device.SystemClock{})
}

// withRetry runs call, and again up to f.retries times with jittered
// backoff while it fails because the server could not be reached or
// answered 5xx/429; call learns whether it is a retry.
func (f *fleetSim) withRetry(ctx context.Context, call func(retry bool) error) error {
	b := provisioning.Backoff{Base: 250 * time.Millisecond, Max: 5 * time.Second, Rand: mrand.Int64N}
	err := call(false)
	for try := 0; try < f.retries && err != nil && transient(err) && ctx.Err() == nil; try++ {
		t := time.NewTimer(b.Next(time.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		f.mu.Lock()
		f.retried++
		f.mu.Unlock()
		err = call(true)
	}
	return err
}

// transient reports whether an admin call may succeed if tried again: the
// server was unreachable, overloaded or failed inside.
func transient(err error) bool {
	var ae apiError
	if errors.As(err, &ae) {
		return ae.status >= 500 || ae.status == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.Canceled)
}

// each runs fn for every index of items on f.workers goroutines until ctx ends.
func (f *fleetSim) each(ctx context.Context, items []string, fn func(context.Context, int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range f.workers {
		wg.Go(func() {
			for i := range next {
				fn(ctx, i)
			}
		})
	}
	for i := range items {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
}

// cameras returns the server's view of serials.
func (f *fleetSim) cameras(ctx context.Context, serials []string) (map[string]model.Camera, error) {
	var all []model.Camera
	if err := f.admin.do(ctx, "GET", "/api/v1/admin/cameras", nil, &all); err != nil {
		return nil, fmt.Errorf("list cameras: %w", err)
	}
	out := make(map[string]model.Camera, len(serials))
	for _, c := range all {
		out[c.Serial] = c
	}
	for _, sn := range serials {
		if _, ok := out[sn]; !ok {
			out[sn] = model.Camera{Serial: sn}
		}
	}
	return out, nil
}

// wait polls the server until every camera is provisioned, ctx ends or the
// timeout passes, and returns how many are provisioned.
func (f *fleetSim) wait(ctx context.Context, serials []string, start time.Time) (int, error) {
	deadline := time.NewTimer(f.timeout - time.Since(start))
	defer deadline.Stop()
	for {
		cams, err := f.cameras(ctx, serials)
		done := 0
		if err == nil {
			for _, sn := range serials {
				if c := cams[sn]; c.State == model.StateProvisioned && c.PendingOp == "" {
					done++
				}
			}
			f.progress(done, len(serials), time.Since(start))
			if done == len(serials) {
				return done, nil
			}
		}
		select {
		case <-ctx.Done():
			return done, fmt.Errorf("interrupted")
		case <-deadline.C:
			return done, fmt.Errorf("timed out after %s", f.timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// assignUsers creates a user per camera (when missing) and assigns it.
// Passwords of the users it creates are appended to STATE/users.txt.
func (f *fleetSim) assignUsers(ctx context.Context, serials []string, cams map[string]model.Camera) error {
	path := filepath.Join(f.dir, "users.txt")
	known, err := readUsers(path)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	f.each(ctx, serials, func(ctx context.Context, i int) {
		user := fmt.Sprintf("%s-user-%05d", strings.ToLower(f.prefix), i)
		mu.Lock()
		_, have := known[user]
		mu.Unlock()
		if !have {
			pw, err := randomPassword()
			if err != nil {
				f.fail("user %s: %v", user, err)
				return
			}
			// Creating a user hashes its password: a busy server answers 503
			// (its hashing memory budget is taken) and is asked again.
			err = f.withRetry(ctx, func(retry bool) error {
				err := f.admin.do(ctx, "POST", "/api/v1/admin/users", provisioning.UserRequest{Username: user, Email: user + "@fleet-sim.invalid", Password: pw}, nil)
				var ae apiError
				if errors.As(err, &ae) && ae.status == http.StatusConflict {
					if retry {
						return nil // an earlier try, with this password, reached the server
					}
					pw = "" // made by an earlier run whose file was lost
					return nil
				}
				return err
			})
			if err != nil {
				f.fail("user %s: %v", user, err)
				return
			}
			mu.Lock()
			known[user] = pw
			mu.Unlock()
		}
		if cams[serials[i]].AssignedUser == user {
			return
		}
		err := f.withRetry(ctx, func(bool) error { // assigning the same user again is a no-op
			return f.admin.do(ctx, "POST", "/api/v1/admin/cameras/"+serials[i]+"/assign", provisioning.AssignRequest{User: user}, nil)
		})
		if err != nil {
			f.fail("assign %s to %s: %v", serials[i], user, err)
		}
	})
	return writeUsers(path, known)
}

func randomPassword() (string, error) {
	// Letters and digits only (128 bits): a password starting with "-" is
	// read as an option by the tools QA scripts pass it to.
	return rand.Text(), nil
}

// readUsers reads "user password" lines; a missing file is empty.
func readUsers(path string) (map[string]string, error) {
	out := map[string]string{}
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if user, pw, ok := strings.Cut(sc.Text(), " "); ok {
			out[user] = pw
		}
	}
	return out, sc.Err()
}

func writeUsers(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, u := range names {
		fmt.Fprintf(&b, "%s %s\n", u, users[u])
	}
	if err := atomicfile.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// simResult is what a run reached.
type simResult struct {
	ran          bool // provisioning started
	done         int  // cameras provisioned
	elapsed      time.Duration
	memPerCamera uint64
	stopped      string // why it stopped early, or ""
}

// summary prints the summary and writes the --report file; it is an
// error when anything failed or the run stopped early.
func (f *fleetSim) summary(fleet *bench.Fleet, res simResult) error {
	out := f.env.Stdout
	if f.report != "" {
		if err := f.writeReport(fleet, res); err != nil {
			f.fail("report: %v", err)
		}
	}
	if res.ran {
		rate := 0.0
		if res.elapsed > 0 {
			rate = float64(res.done) / res.elapsed.Seconds()
		}
		fmt.Fprintf(out, "fleet-sim: %d/%d cameras provisioned; provisioning took %s (%.0f cameras/s)\n",
			res.done, len(fleet.States), res.elapsed.Round(time.Millisecond), rate)
	}
	if res.memPerCamera > 0 {
		fmt.Fprintf(out, "fleet-sim: memory %.1f KiB per headless camera\n", float64(res.memPerCamera)/1024)
	}
	stopped, done := res.stopped, res.done
	if f.assign && stopped == "" {
		fmt.Fprintf(out, "fleet-sim: users and passwords in %s\n", filepath.Join(f.dir, "users.txt"))
	}
	if f.retried > 0 {
		fmt.Fprintf(out, "fleet-sim: %d admin calls retried (server down or busy)\n", f.retried)
	}
	fmt.Fprintf(out, "fleet-sim: %d failures\n", len(f.failures))
	for i, msg := range f.failures {
		if i == 10 {
			fmt.Fprintf(out, "  ... and %d more\n", len(f.failures)-10)
			break
		}
		fmt.Fprintln(out, "  "+msg)
	}
	switch {
	case stopped != "":
		left := len(fleet.States) - done
		fmt.Fprintf(out, "fleet-sim: stopped (%s); %d cameras not provisioned: their pending operations complete when they reconnect (run fleet-sim again with the same --state)\n", stopped, left)
		return fmt.Errorf("fleet-sim %s", stopped)
	case len(f.failures) > 0:
		return fmt.Errorf("fleet-sim: %d failures", len(f.failures))
	}
	return nil
}

// simReport is the --report file.
type simReport struct {
	Server      []string       `json:"server"`
	Broker      string         `json:"broker"`
	Cameras     int            `json:"cameras"`
	Provisioned int            `json:"provisioned"`
	ElapsedMs   int64          `json:"provisioningMs"`
	Stopped     string         `json:"stopped,omitempty"`
	Failures    []string       `json:"failures"`
	Camera      []simCamReport `json:"camera"`
}

// simCamReport is one camera in the report: its state on the server as
// last seen, when it connected (ms after the fleet started connecting)
// and when it applied its seed (ms after provisioning started; 0: not in
// this run).
type simCamReport struct {
	Serial      string   `json:"serial"`
	Model       string   `json:"model"`
	Link        string   `json:"link"`
	ConnectMs   int64    `json:"connectMs,omitempty"`
	ProvisionMs int64    `json:"provisionMs,omitempty"`
	ClockPPM    *float64 `json:"clockPpm,omitempty"`
}

// writeReport writes the --report file (0600: it names the fleet).
func (f *fleetSim) writeReport(fleet *bench.Fleet, res simResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := simReport{Server: f.admin.bases, Broker: f.broker, Cameras: len(fleet.States), Provisioned: res.done,
		ElapsedMs: res.elapsed.Milliseconds(), Stopped: res.stopped, Failures: append([]string{}, f.failures...)}
	for i, st := range fleet.States {
		id := st.Identity()
		c := simCamReport{Serial: id.Serial, Model: string(id.Model), Link: "not started"}
		if i < len(fleet.Agents) {
			c.Link = fleet.Agents[i].Status()
		}
		if t, ok := f.connectedAt[id.Serial]; ok {
			c.ConnectMs = max(t.Sub(f.startedAt).Milliseconds(), 1)
		}
		if t, ok := f.provedAt[id.Serial]; ok && !f.provisionAt.IsZero() {
			c.ProvisionMs = max(t.Sub(f.provisionAt).Milliseconds(), 1)
		}
		if d, ok, err := st.SimulatedDrift(); err == nil && ok {
			c.ClockPPM = &d.PPM
		}
		r.Camera = append(r.Camera, c)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(f.report, append(data, '\n'), 0o600)
}
