package provisioning_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
)

// codeMatches checks the camera shows the code the server's active seed
// gives at the same instant.
func codeMatches(t *testing.T, srv *server.Server, st *device.State) {
	t.Helper()
	sn := st.Identity().Serial
	seed, err := srv.Store.ActiveSeed(context.Background(), sn)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	want, err := seed.Code(now)
	if err != nil {
		t.Fatal(err)
	}
	if got := testenv.ScreenCode(t, st, now); got != want {
		t.Fatalf("camera %s shows %s; the server computes %s", sn, got, want)
	}
}

// The whole flow through a real mosquitto with dynamic security, camotp
// as its admin: a camera registered through the admin API gets its broker
// login, logs in with its derived password and is provisioned, rotated and
// wiped; it shows the code the server computes. A camera presenting the
// embedded broker's signed token is refused there. After a server restart
// (a second sync) everything still works.
func TestProvisionThroughMosquittoDynsec(t *testing.T) {
	m := testenv.StartMosquitto(t)
	data := filepath.Join(t.TempDir(), "data")
	withDynsec := func(c *server.Config) {
		c.MQTTExternal = m.URL
		c.MQTTDynsec = &server.DynsecConfig{AdminUser: m.AdminUser, AdminPassword: m.AdminPassword}
	}
	srv := testenv.Server(t, data, withDynsec)
	if srv.MQTTAddr() != "" {
		t.Fatal("embedded broker started although an external one was given")
	}
	cam := testenv.Camera(t, srv, "DYN-1", device.Body4)
	tokenCam := testenv.Camera(t, srv, "DYN-2", device.Body3)
	sk := srv.Provisioning.ServerKey()
	for _, st := range []*device.State{cam, tokenCam} {
		if err := st.PinServerKey(sk[:]); err != nil { // what 'camera init --server-key' does
			t.Fatal(err)
		}
	}

	// The signed token of the embedded broker is no login on mosquitto.
	failed := make(chan error, 1)
	ta := provisioning.NewAgent(tokenCam, provisioning.LinkConfig{Broker: m.URL, Log: testenv.Log(t)})
	ta.Observe = func(e provisioning.LinkEvent) {
		if e.Kind == provisioning.EventFailed || e.Kind == provisioning.EventUp {
			select {
			case failed <- e.Err:
			default:
			}
		}
	}
	ta.Start()
	select {
	case err := <-failed:
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "not authori") {
			t.Fatalf("camera with a signed token on mosquitto: %v; want not authorised", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the token camera's first attempt never ended")
	}
	ta.Stop()

	derived := provisioning.LinkConfig{Broker: m.URL, Credential: provisioning.CredentialDerived}
	agent := testenv.AgentWith(t, cam, derived)
	v := testenv.Op(t, srv, "DYN-1", "provision")
	testenv.WaitCamera(t, srv.Store, "DYN-1", model.StateProvisioned, v)
	codeMatches(t, srv, cam)
	// Presence reaches the server through its own dynsec role.
	waitOnline(t, srv.Provisioning, 1)
	v = testenv.Op(t, srv, "DYN-1", "rotate")
	testenv.WaitCamera(t, srv.Store, "DYN-1", model.StateProvisioned, v)
	codeMatches(t, srv, cam)
	v = testenv.Op(t, srv, "DYN-1", "wipe")
	testenv.WaitCamera(t, srv.Store, "DYN-1", model.StateWiped, v)

	// A camera put in the registry behind the admin API's back (no login
	// made then) gets its login when it is sent a command.
	late, err := device.InitState(filepath.Join(t.TempDir(), "DYN-3"), "DYN-3", device.Body4)
	if err != nil {
		t.Fatal(err)
	}
	pub := late.Identity().Public()
	if err := srv.Store.AddCamera(context.Background(), pub.Serial, pub.Model, pub.PublicKey); err != nil {
		t.Fatal(err)
	}
	late.PinServerKey(sk[:])
	v = testenv.Op(t, srv, "DYN-3", "provision")
	testenv.AgentWith(t, late, derived)
	testenv.WaitCamera(t, srv.Store, "DYN-3", model.StateProvisioned, v)
	codeMatches(t, srv, late)

	// A camera registered behind the server's back and never sent a
	// command has no login until the next sync: the restart's.
	quiet, err := device.InitState(filepath.Join(t.TempDir(), "DYN-4"), "DYN-4", device.Body4)
	if err != nil {
		t.Fatal(err)
	}
	pub = quiet.Identity().Public()
	if err := srv.Store.AddCamera(context.Background(), pub.Serial, pub.Model, pub.PublicKey); err != nil {
		t.Fatal(err)
	}
	quiet.PinServerKey(sk[:])

	// Restart: the server syncs the broker's accounts again and carries on.
	srv.Close()
	srv = testenv.Server(t, data, withDynsec)
	qa := testenv.AgentWith(t, quiet, derived)
	for deadline := time.Now().Add(30 * time.Second); qa.Status() != provisioning.LinkConnected; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a camera registered while the server was down never got its login from the restart's sync")
		}
	}
	v = testenv.Op(t, srv, "DYN-1", "provision")
	testenv.WaitCamera(t, srv.Store, "DYN-1", model.StateProvisioned, v)
	codeMatches(t, srv, cam)
	if agent.Status() != provisioning.LinkConnected {
		t.Fatalf("camera link %s after the server restart", agent.Status())
	}
}

// brokerAccounts records EnsureCamera calls and fails them when told to.
type brokerAccounts struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (b *brokerAccounts) EnsureCamera(_ context.Context, serial string, _ camkey.PublicKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, serial)
	return b.fail
}

// A camera's broker login is ensured when it is added and before each
// command; when the broker cannot make it, the operation still goes ahead
// (the next one or the next sync retries) and the audit says so.
func TestBrokerLoginEnsuredOnAddAndOps(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	acc := &brokerAccounts{}
	srv.Provisioning.SetBrokerAccounts(acc)
	testenv.Camera(t, srv, "ACC-1", device.Body4)
	testenv.Op(t, srv, "ACC-1", "provision")
	acc.mu.Lock()
	acc.fail = errors.New("broker unreachable")
	acc.mu.Unlock()
	testenv.Op(t, srv, "ACC-1", "wipe")
	acc.mu.Lock()
	calls := strings.Join(acc.calls, ",")
	acc.mu.Unlock()
	if calls != "ACC-1,ACC-1,ACC-1" {
		t.Fatalf("EnsureCamera calls %q; want one on add and one per operation", calls)
	}
	entries, err := srv.Store.AuditLog(context.Background(), "ACC-1", 50)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range entries {
		if e.Action == "camera.broker-login" && strings.Contains(e.Result, "broker unreachable") && e.Actor == "admin" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audited broker-login failure in %+v", entries)
	}
}
