package provisioning_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/store"
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
	testenv.WaitCamera(t, srv.Store, "DYN-1", store.StateProvisioned, v)
	codeMatches(t, srv, cam)
	// Presence reaches the server through its own dynsec role.
	waitOnline(t, srv.Provisioning, 1)
	v = testenv.Op(t, srv, "DYN-1", "rotate")
	testenv.WaitCamera(t, srv.Store, "DYN-1", store.StateProvisioned, v)
	codeMatches(t, srv, cam)
	v = testenv.Op(t, srv, "DYN-1", "wipe")
	testenv.WaitCamera(t, srv.Store, "DYN-1", store.StateWiped, v)

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
	testenv.WaitCamera(t, srv.Store, "DYN-3", store.StateProvisioned, v)
	codeMatches(t, srv, late)

	// Restart: the server syncs the broker's accounts again and carries on.
	srv.Close()
	srv = testenv.Server(t, data, withDynsec)
	v = testenv.Op(t, srv, "DYN-1", "provision")
	testenv.WaitCamera(t, srv.Store, "DYN-1", store.StateProvisioned, v)
	codeMatches(t, srv, cam)
	if agent.Status() != provisioning.LinkConnected {
		t.Fatalf("camera link %s after the server restart", agent.Status())
	}
}
