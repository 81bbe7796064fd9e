package rollover_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testclock"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/testenv/pgtest"
	"github.com/camotp/camotp/internal/together"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/rollover"
	"github.com/camotp/camotp/signin"
)

// cheapHash keeps the officers' password step cheap: the test is about
// their second factor.
var cheapHash = password.Params{Memory: 8 << 10, Time: 1, Threads: 1}

// fleet is a server and its in-process cameras, each a real agent on the
// embedded broker with its own state directory, on one shifted clock.
type fleet struct {
	t      *testing.T
	srv    *server.Server
	clk    *testclock.Shift
	dir    string // the first node's data directory
	link   provisioning.LinkConfig
	states []*device.State
	mu     sync.Mutex
	agents []*provisioning.Agent
}

func newFleet(t *testing.T, n int, mod func(*server.Config)) *fleet {
	t.Helper()
	clk := &testclock.Shift{}
	dir := t.TempDir()
	srv := testenv.Server(t, dir, nodeConfig(clk, mod))
	link := provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Clock: clk, Log: testenv.Log(t)}
	if srv.MQTTAddr() == "" { // an external broker: mosquitto with dynamic security
		var c server.Config
		mod(&c)
		link.Broker, link.Credential = c.MQTTExternal, provisioning.CredentialDerived
	}
	f := &fleet{t: t, srv: srv, clk: clk, dir: dir, link: link, states: make([]*device.State, n), agents: make([]*provisioning.Agent, n)}
	t.Cleanup(func() {
		// Disconnect waits for its quiesce period: stop all at once.
		var wg sync.WaitGroup
		f.mu.Lock()
		for _, a := range f.agents {
			if a != nil {
				wg.Go(a.Stop)
			}
		}
		f.mu.Unlock()
		wg.Wait()
	})
	ctx := t.Context()
	camDir := t.TempDir()
	sk := srv.Provisioning.ServerKey()
	for i := range n {
		sn := fmt.Sprintf("ROLL-%03d", i)
		st, err := device.InitState(filepath.Join(camDir, sn), sn, device.Body4)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PinServerKey(sk[:]); err != nil { // what 'camera init --server-key' does
			t.Fatal(err)
		}
		pub := st.Identity().Public()
		if err := srv.Store.AddCamera(ctx, sn, pub.Model, pub.PublicKey); err != nil {
			t.Fatal(err)
		}
		// Its login on an external broker, as the admin API makes it.
		key, err := camkey.ParsePublicKey(pub.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		srv.Provisioning.EnsureAccount(ctx, sn, key, "test", "")
		f.states[i] = st
		f.connect(i)
	}
	f.waitOnline(n)
	for i := range n {
		if _, err := srv.Provisioning.Start(ctx, f.serial(i), model.OpProvision, "test", ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the fleet provisioned", func() bool {
		states, err := srv.Store.CameraStates(ctx)
		return err == nil && states[string(model.StateProvisioned)] == n
	})
	return f
}

// nodeConfig is the configuration of every node: the shared clock, the
// schedule stepped by the test, cheap password hashes, then mod.
func nodeConfig(clk *testclock.Shift, mod func(*server.Config)) func(*server.Config) {
	sc := signin.DefaultConfig()
	sc.Argon2 = cheapHash
	return func(c *server.Config) {
		c.Now, c.RolloverTick, c.SignIn = clk.Now, -1, &sc
		if mod != nil {
			mod(c)
		}
	}
}

func (f *fleet) serial(i int) string { return f.states[i].Identity().Serial }

// connect starts camera i's agent on the broker (again, after stop).
func (f *fleet) connect(i int) {
	a := provisioning.NewAgent(f.states[i], f.link)
	a.Start()
	f.mu.Lock()
	f.agents[i] = a
	f.mu.Unlock()
}

// stop disconnects camera i.
func (f *fleet) stop(i int) {
	f.mu.Lock()
	a := f.agents[i]
	f.agents[i] = nil
	f.mu.Unlock()
	a.Stop()
}

// waitOnline waits until the store counts n cameras online.
func (f *fleet) waitOnline(n int) {
	f.t.Helper()
	waitFor(f.t, fmt.Sprintf("%d cameras online", n), func() bool {
		got, err := f.srv.Provisioning.Online(f.t.Context())
		return err == nil && got == n
	})
}

// officer adds user name with camera i assigned.
func (f *fleet) officer(name string, i int) {
	f.t.Helper()
	hash, err := password.HashWith(cheapHash, "pw-"+name+"-long")
	if err != nil {
		f.t.Fatal(err)
	}
	ctx := f.t.Context()
	if err := f.srv.Store.AddUser(ctx, model.User{Username: name, Email: name + "@pd.example", Role: "officer"}, hash); err != nil {
		f.t.Fatal(err)
	}
	if err := f.srv.Store.Assign(ctx, f.serial(i), name); err != nil {
		f.t.Fatal(err)
	}
}

// signIn signs name in through the JSON API with the code camera i shows
// now; an error says why it did not pass.
func (f *fleet) signIn(ctx context.Context, name string, i int) error {
	return f.signInWith(ctx, name, func() (string, error) { return screenCode(f.states[i], f.clk.Now()) }, f.serial(i))
}

// signInWith signs name in with the code code gives once the password
// passed; serial names the camera in errors.
func (f *fleet) signInWith(ctx context.Context, name string, code func() (string, error), serial string) error {
	var login struct {
		Token         string `json:"token"`
		Authenticator string `json:"authenticator"`
	}
	if status, err := f.post(ctx, "/api/v1/auth/login", map[string]string{"username": name, "password": "pw-" + name + "-long"}, &login); err != nil || status != 200 {
		return fmt.Errorf("login %s: %d %v", name, status, err)
	}
	if login.Authenticator != signin.MethodBodycam {
		return fmt.Errorf("login %s: authenticator %q", name, login.Authenticator)
	}
	c, err := code()
	if err != nil {
		return err
	}
	var out map[string]any
	status, err := f.post(ctx, "/api/v1/auth/verify", map[string]string{"token": login.Token, "code": c}, &out)
	if err != nil || status != 200 || out["sessionToken"] == "" {
		return fmt.Errorf("verify %s with a code of camera %s: %d %v %v", name, serial, status, out, err)
	}
	return nil
}

func (f *fleet) post(ctx context.Context, path string, body, out any) (int, error) {
	return call(ctx, f.srv, "POST", path, "", body, out)
}

// call calls srv's HTTP API.
func call(ctx context.Context, srv *server.Server, method, path, token string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+srv.HTTPAddr()+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %w", data, err)
		}
	}
	return resp.StatusCode, nil
}

// screenCode drives a camera core on st through its menu to the
// Authenticator screen at now: the code the officer reads.
func screenCode(st *device.State, now time.Time) (string, error) {
	id := st.Identity()
	cam, err := device.New(device.Config{Serial: id.Serial, Model: id.Model, Clock: device.FixedClock{T: now}, Seeds: st})
	if err != nil {
		return "", err
	}
	for _, g := range []device.Gesture{id.Model.MenuGesture(), {Kind: device.Press, Button: device.VolDown}, {Kind: device.Press, Button: device.Select}} {
		cam.Apply(g)
	}
	s := cam.Screen()
	if s.Code == "" {
		return "", fmt.Errorf("camera %s shows no code:\n%s", id.Serial, s.Text())
	}
	return s.Code, nil
}

// waitFor polls cond until it holds, failing t after a bound generous
// for a loaded machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setPolicy sets the rollover policy through the admin API.
func setPolicy(t *testing.T, srv *server.Server, p rollover.Policy) rollover.Status {
	t.Helper()
	var st rollover.Status
	if status, err := call(t.Context(), srv, "PUT", rollover.PolicyPath, srv.AdminToken, p, &st); err != nil || status != 200 {
		t.Fatalf("set rotation policy: %d %v", status, err)
	}
	return st
}

// scheduledStarts are the audit log's rotations started by the schedule.
func scheduledStarts(t *testing.T, srv *server.Server) []model.AuditEntry {
	t.Helper()
	log, err := srv.Store.AuditLog(t.Context(), "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.AuditEntry
	for _, e := range log {
		if e.Action == "rotate.start" && e.Actor == rollover.Actor && e.Result == "ok" {
			out = append(out, e)
		}
	}
	return out
}

// offset is t's offset from UTC in its zone, in seconds.
func offset(t time.Time) int {
	_, off := t.Zone()
	return off
}

// provenBySignIn counts the rotations a sign-in code proved.
func provenBySignIn(t *testing.T, srv *server.Server) int {
	t.Helper()
	log, err := srv.Store.AuditLog(t.Context(), "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range log {
		if e.Action == "rotate.proof" && strings.Contains(e.Detail, "sign-in code") {
			n++
		}
	}
	return n
}

// TestScheduledRolloverFleet: 200 real cameras on the embedded broker,
// provisioned 91 days before a 02:00-05:00 (Paris) window with a 40 % an
// hour share. The schedule, stepped minute by minute on the injected
// clock, rotates the fleet inside the window, no hour past its share and
// no burst at its start; officers sign in all along with the code their
// own camera shows at that moment, and not one sign-in fails; a camera
// offline at the start of the window rotates once it comes back; one
// that never comes back is overdue after it, in the status and /metrics.
func TestScheduledRolloverFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a 200-camera fleet")
	}
	const (
		n        = 200
		officers = 40
		pct      = 40
	)
	f := newFleet(t, n, nil)
	ctx := t.Context()
	for i := range officers {
		f.officer(fmt.Sprintf("officer%02d", i), i)
	}
	late, gone := n-1, n-2
	f.stop(late)
	f.stop(gone)
	f.waitOnline(n - 2)

	st := setPolicy(t, f.srv, rollover.Policy{Every: "90d", Window: "02:00-05:00", TZ: "Europe/Paris", MaxPerHour: pct})
	if st.Fleet != n || st.Due != 0 || st.Policy.Every != "90d" {
		t.Fatalf("status after setting the policy: %+v, want the fleet of %d, none due", st, n)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	d := f.clk.Now().In(paris).AddDate(0, 0, 91)
	winStart := time.Date(d.Year(), d.Month(), d.Day(), 2, 0, 0, 0, paris)
	if _, before := winStart.Add(-3 * time.Hour).Zone(); before != offset(winStart.Add(4*time.Hour)) {
		winStart = time.Date(d.Year(), d.Month(), d.Day()+1, 2, 0, 0, 0, paris) // not a night the clocks change: the window is 3 hours
	}
	f.clk.Add(winStart.Add(-10 * time.Minute).Sub(f.clk.Now()))
	returnAt := winStart.Add(2*time.Hour + 15*time.Minute) // 04:15, in the last hour

	rng := rand.New(rand.NewPCG(16, 14))
	var signIns, failures atomic.Int64
	var firstErr atomic.Value
	var returned time.Time
	for tick := 0; tick < 200; tick++ { // 01:50 to 05:10, a minute a tick
		now := f.clk.Now()
		if returned.IsZero() && !now.Before(returnAt) {
			f.connect(late)
			f.waitOnline(n - 1)
			returned = f.clk.Now()
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := f.srv.Rollover.Step(ctx); err != nil {
				t.Errorf("step at %v: %v", now, err)
			}
		})
		// Three officers sign in at this moment, while rotations start and
		// cameras apply their new seeds.
		for _, o := range rng.Perm(officers)[:3] {
			wg.Go(func() {
				signIns.Add(1)
				if err := f.signIn(ctx, fmt.Sprintf("officer%02d", o), o); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			})
		}
		wg.Wait()
		f.clk.Add(time.Minute)
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d sign-ins failed during the rollover; first: %v", failures.Load(), signIns.Load(), firstErr.Load())
	}
	t.Logf("%d sign-ins during the rollover, all passed; %d rotations proven by an officer's code before the camera's ack", signIns.Load(), provenBySignIn(t, f.srv))

	// Every camera but the one that never came back rotates exactly once.
	waitFor(t, "the started rotations proven", func() bool {
		states, err := f.srv.Store.CameraStates(ctx)
		return err == nil && states["pending:rotate"] == 0
	})
	cams, err := f.srv.Store.Cameras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cams {
		want := uint64(2)
		if c.Serial == f.serial(gone) {
			want = 1
		}
		if c.Version != want || c.State != model.StateProvisioned {
			t.Errorf("camera %s: %s v%d, want provisioned v%d", c.Serial, c.State, c.Version, want)
		}
	}
	starts := scheduledStarts(t, f.srv)
	if len(starts) != n-1 {
		t.Fatalf("%d scheduled rotation starts audited, want %d", len(starts), n-1)
	}
	share := (n*pct + 99) / 100
	perHour, perSlice := map[time.Time]int{}, map[time.Time]int{}
	for _, e := range starts {
		if e.At.Before(winStart) || !e.At.Before(winStart.Add(3*time.Hour)) {
			t.Errorf("%s started at %v, outside the window", e.Subject, e.At.In(paris))
		}
		if e.Subject == f.serial(late) && e.At.Before(returned) {
			t.Errorf("%s started at %v, while offline (back at %v)", e.Subject, e.At, returned)
		}
		perHour[e.At.Truncate(time.Hour)]++
		perSlice[e.At.Truncate(10*time.Minute)]++
	}
	for h, c := range perHour {
		if c > share {
			t.Errorf("%d rotations started in the hour of %v, past the share of %d", c, h.In(paris), share)
		}
	}
	// Spread, not a burst: no ten minutes take more than a sixth of the
	// share (and a tick's rounding).
	for s, c := range perSlice {
		if c > share/6+2 {
			t.Errorf("%d rotations started in the ten minutes from %v: a burst", c, s.In(paris))
		}
	}
	t.Logf("starts per hour: %v", perHour)

	st, err = f.srv.Rollover.Step(ctx) // 05:10: the window has closed
	if err != nil {
		t.Fatal(err)
	}
	if st.InWindow || st.Due != 1 || st.Overdue != 1 || st.Rotating != 0 {
		t.Fatalf("status after the window: %+v, want the camera that never came back due and overdue", st)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+f.srv.HTTPAddr()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"camotp_rotation_due_cameras 1\n", "camotp_rotation_overdue_cameras 1\n", fmt.Sprintf("camotp_rotations_scheduled_total %d\n", n-1)} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestRotationProvenBySignInCode: a camera that the broker reported
// online is claimed by the schedule, receives its rotate command and
// stores the new seed, and its link drops before its ack reaches the
// server. Its officer reads a code of the new seed off the camera: the
// sign-in passes, and that code proves the rotation (the old seed dies,
// audited); a code of the old seed is then refused, and the camera's
// return changes nothing.
func TestRotationProvenBySignInCode(t *testing.T) {
	f := newFleet(t, 1, nil)
	ctx := t.Context()
	sn := f.serial(0)
	f.officer("alice", 0)
	setPolicy(t, f.srv, rollover.Policy{Every: "1h", MaxPerHour: 100})
	f.stop(0)
	f.waitOnline(0)
	f.clk.Add(2 * time.Hour)
	// The broker's word that the camera is online; its link is then lost.
	if err := f.srv.Store.SetPresence(ctx, sn, true, f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	old, err := f.states[0].Seed()
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.srv.Rollover.Step(ctx)
	if err != nil || st.Started != 1 {
		t.Fatalf("step: %+v %v, want the camera's rotation started", st, err)
	}
	// Before the camera has the command, its code (the old seed) passes.
	if err := f.signIn(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}
	p, err := f.srv.Store.Pending(ctx, sn)
	if err != nil || p.Op != model.OpRotate {
		t.Fatalf("pending: %+v %v", p, err)
	}
	ack, err := provisioning.Apply(f.states[0], p.Payload) // what the camera does with the command; the ack is lost
	if err != nil || ack.Result != provisioning.ResultOK || f.states[0].Version() != p.Version {
		t.Fatalf("camera applying the command: %+v %v", ack, err)
	}
	f.clk.Add(time.Minute)
	if err := f.signIn(ctx, "alice", 0); err != nil {
		t.Fatalf("the new seed's code, before the camera's ack: %v", err)
	}
	c, err := f.srv.Store.Camera(ctx, sn)
	if err != nil || c.Version != p.Version || c.PendingOp != "" {
		t.Fatalf("camera after its new seed's code: %+v %v, want v%d active, nothing pending", c, err, p.Version)
	}
	log, err := f.srv.Store.AuditLog(ctx, sn, 5)
	if err != nil || len(log) == 0 || log[0].Action != "rotate.proof" || !strings.Contains(log[0].Detail, "sign-in code") {
		t.Fatalf("audit of %s: %+v %v, want the rotation proven by a sign-in code", sn, log, err)
	}
	f.clk.Add(time.Minute)
	err = f.signInWith(ctx, "alice", func() (string, error) { return old.Code(f.clk.Now()) }, sn)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a code of the old seed after the rotation: %v, want it refused", err)
	}
	f.connect(0)
	f.waitOnline(1)
	f.clk.Add(time.Minute)
	if err := f.signIn(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}
	if c, err := f.srv.Store.Camera(ctx, sn); err != nil || c.Version != p.Version || c.PendingOp != "" {
		t.Fatalf("camera after its return: %+v %v", c, err)
	}
}

// TestTwoNodesShareTheSchedule: two nodes on one PostgreSQL database and
// one mosquitto (dynamic security), each running the schedule at the same
// instants. 60 real cameras are due; a 20 % share lets 12 start an hour.
// Together the nodes rotate every camera exactly once, never more than
// the share in an hour, and both take part.
func TestTwoNodesShareTheSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("two nodes, PostgreSQL and mosquitto")
	}
	const (
		n     = 60
		pct   = 20
		share = n * pct / 100
	)
	db := pgtest.URL(t)
	m := testenv.StartMosquitto(t)
	shared := func(id string) func(*server.Config) {
		return func(c *server.Config) {
			c.DB, c.NodeID, c.MQTTExternal = db, id, m.URL
			c.MQTTDynsec = &server.DynsecConfig{AdminUser: m.AdminUser, AdminPassword: m.AdminPassword}
		}
	}
	f := newFleet(t, n, shared("a"))
	ctx := t.Context()
	dirB := t.TempDir()
	testenv.CopySharedFiles(t, f.dir, dirB)
	nodeB := testenv.Server(t, dirB, nodeConfig(f.clk, shared("b")))
	nodes := []*server.Server{f.srv, nodeB}
	setPolicy(t, nodeB, rollover.Policy{Every: "1d", MaxPerHour: pct})
	f.clk.Add(f.clk.Now().Truncate(time.Hour).Add(25 * time.Hour).Sub(f.clk.Now())) // the start of an hour, a day on
	start := f.clk.Now().Truncate(time.Hour)
	for tick := 0; tick < 6*60; tick++ {
		errs := make([]error, 2)
		together.Run(2, func(i int) { _, errs[i] = nodes[i].Rollover.Step(ctx) })
		for i, err := range errs {
			if err != nil {
				t.Fatalf("node %d step: %v", i, err)
			}
		}
		f.clk.Add(time.Minute)
	}
	waitFor(t, "the started rotations proven", func() bool {
		states, err := f.srv.Store.CameraStates(ctx)
		return err == nil && states["pending:rotate"] == 0
	})
	cams, err := f.srv.Store.Cameras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cams {
		if c.Version != 2 || c.State != model.StateProvisioned {
			t.Errorf("camera %s: %s v%d, want rotated exactly once (v2)", c.Serial, c.State, c.Version)
		}
	}
	a, b := f.srv.Rollover.Started(), nodeB.Rollover.Started()
	if a+b != n || a == 0 || b == 0 {
		t.Errorf("node a started %d, node b %d: want %d together, by both", a, b, n)
	}
	perHour := map[time.Time]int{}
	for _, e := range scheduledStarts(t, f.srv) {
		perHour[e.At.Truncate(time.Hour)]++
	}
	for h, c := range perHour {
		if c > share {
			t.Errorf("%d rotations started in the hour from %v by both nodes, past the share of %d", c, h, share)
		}
	}
	t.Logf("node a started %d, node b %d; per hour from %v: %v", a, b, start, perHour)
}

// TestCodeReadBeforeTheSwitch: an officer reads a code off the camera; the
// scheduled rotation reaches the camera and its ack is proven before the
// officer submits. The code, of the replaced seed, still passes; once
// model.RotationGrace is over, the replaced seed's codes are refused.
func TestCodeReadBeforeTheSwitch(t *testing.T) {
	f := newFleet(t, 1, nil)
	ctx := t.Context()
	sn := f.serial(0)
	f.officer("alice", 0)
	setPolicy(t, f.srv, rollover.Policy{Every: "1h", MaxPerHour: 100})
	f.clk.Add(2 * time.Hour)
	old, err := f.states[0].Seed()
	if err != nil {
		t.Fatal(err)
	}
	read, err := screenCode(f.states[0], f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := f.srv.Rollover.Step(ctx); err != nil || st.Started != 1 {
		t.Fatalf("step: %+v %v, want the camera's rotation started", st, err)
	}
	waitFor(t, "the rotation proven by the camera's ack", func() bool {
		c, err := f.srv.Store.Camera(ctx, sn)
		return err == nil && c.Version == 2 && c.PendingOp == ""
	})
	if err := f.signInWith(ctx, "alice", func() (string, error) { return read, nil }, sn); err != nil {
		t.Fatalf("the code read before the switch: %v", err)
	}
	f.clk.Add(model.RotationGrace + time.Second)
	err = f.signInWith(ctx, "alice", func() (string, error) { return old.Code(f.clk.Now()) }, sn)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a code of the replaced seed after the grace: %v, want it refused", err)
	}
	if err := f.signIn(ctx, "alice", 0); err != nil {
		t.Fatal(err)
	}
}
