// Package testenv starts real camotp parts for tests: a server on loopback
// ports with its SQLite file in a temp dir and the embedded broker, cameras
// with their own state directories connected as real MQTT clients, users.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/provisioning"
)

// Log is a logger that is quiet unless the test runs with -v.
func Log(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Server starts a server in dir on loopback ports; mod may change the
// config. It is closed at cleanup.
func Server(tb testing.TB, dir string, mod func(*server.Config)) *server.Server {
	tb.Helper()
	cfg := server.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Log: Log(tb)}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	return srv
}

// API calls srv's HTTP API with a bearer token; body may be a string (sent
// as is) or a value (sent as JSON). It returns the status and the decoded
// JSON object (nil when the body is not one).
func API(tb testing.TB, srv *server.Server, token, method, path string, body any) (int, map[string]any) {
	tb.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, "http://"+srv.HTTPAddr()+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// Camera creates a camera state dir and registers it through the admin API.
func Camera(tb testing.TB, srv *server.Server, serial string, model device.Model) *device.State {
	tb.Helper()
	st, err := device.InitState(filepath.Join(tb.TempDir(), serial), serial, model)
	if err != nil {
		tb.Fatal(err)
	}
	pub := st.Identity().Public()
	code, body := API(tb, srv, srv.AdminToken, "POST", "/api/v1/admin/cameras",
		provisioning.CameraRequest{Serial: pub.Serial, Model: string(pub.Model), PublicKey: pub.PublicKey})
	if code != http.StatusCreated {
		tb.Fatalf("add camera %s: %d %v", serial, code, body)
	}
	return st
}

// Agent connects the camera to broker; it stops at cleanup.
func Agent(tb testing.TB, st *device.State, broker string) *provisioning.Agent {
	tb.Helper()
	return AgentWith(tb, st, provisioning.LinkConfig{Broker: broker})
}

// AgentWith connects the camera as cfg says (its Log defaults to Log(tb));
// it stops at cleanup.
func AgentWith(tb testing.TB, st *device.State, cfg provisioning.LinkConfig) *provisioning.Agent {
	tb.Helper()
	if cfg.Log == nil {
		cfg.Log = Log(tb)
	}
	a := provisioning.NewAgent(st, cfg)
	a.Start()
	tb.Cleanup(a.Stop)
	return a
}

// Op starts a provisioning operation through the admin API and returns its version.
func Op(tb testing.TB, srv *server.Server, serial, what string) uint64 {
	tb.Helper()
	code, body := API(tb, srv, srv.AdminToken, "POST", "/api/v1/admin/cameras/"+serial+"/"+what, nil)
	if code != http.StatusAccepted {
		tb.Fatalf("%s %s: %d %v", what, serial, code, body)
	}
	return uint64(body["version"].(float64))
}

// WaitCamera waits until the camera reaches state at version with nothing pending.
func WaitCamera(tb testing.TB, st storage.Store, serial string, state model.CameraState, version uint64) model.Camera {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := st.Camera(context.Background(), serial)
		if err != nil {
			tb.Fatal(err)
		}
		if c.State == state && c.Version == version && c.PendingOp == "" {
			return c
		}
		if time.Now().After(deadline) {
			tb.Fatalf("camera %s: state %s v%d pending %q; want %s v%d", serial, c.State, c.Version, c.PendingOp, state, version)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ProvisionedCamera registers, connects and provisions a camera, and
// assigns it to user when user is not "".
func ProvisionedCamera(tb testing.TB, srv *server.Server, serial string, camModel device.Model, user string) *device.State {
	tb.Helper()
	st, _ := ProvisionedCameraAgent(tb, srv, serial, camModel, user)
	return st
}

// ProvisionedCameraAgent is ProvisionedCamera returning the camera's link
// to the broker too (it stops at cleanup).
func ProvisionedCameraAgent(tb testing.TB, srv *server.Server, serial string, camModel device.Model, user string) (*device.State, *provisioning.Agent) {
	tb.Helper()
	st := Camera(tb, srv, serial, camModel)
	a := Agent(tb, st, "tcp://"+srv.MQTTAddr())
	WaitCamera(tb, srv.Store, serial, model.StateProvisioned, Op(tb, srv, serial, "provision"))
	if user != "" {
		Assign(tb, srv, serial, user)
	}
	return st, a
}

// Running is a server started by Run, with the addresses a client needs.
type Running struct {
	Srv *server.Server
	// URL is the HTTP base URL, Broker the MQTT broker's.
	URL, Broker string
	AdminToken  string
}

// Run starts a server in dir with the defaults (Server) and says where it
// listens.
func Run(tb testing.TB, dir string) *Running {
	tb.Helper()
	srv := Server(tb, dir, nil)
	return &Running{Srv: srv, URL: "http://" + srv.HTTPAddr(), Broker: "tcp://" + srv.MQTTAddr(), AdminToken: srv.AdminToken}
}

// User adds a user through the admin API.
func User(tb testing.TB, srv *server.Server, name, password string) {
	tb.Helper()
	code, body := API(tb, srv, srv.AdminToken, "POST", "/api/v1/admin/users",
		provisioning.UserRequest{Username: name, Email: name + "@pd.example", Password: password})
	if code != http.StatusCreated {
		tb.Fatalf("add user %s: %d %v", name, code, body)
	}
}

// Assign gives a camera to a user through the admin API.
func Assign(tb testing.TB, srv *server.Server, serial, user string) {
	tb.Helper()
	if code, body := API(tb, srv, srv.AdminToken, "POST", "/api/v1/admin/cameras/"+serial+"/assign", provisioning.AssignRequest{User: user}); code != http.StatusOK {
		tb.Fatalf("assign %s to %s: %d %v", serial, user, code, body)
	}
}

// ScreenCode drives a camera core on st through its model's menu flow to
// the Authenticator screen at time now and returns the code it shows.
func ScreenCode(tb testing.TB, st *device.State, now time.Time) string {
	tb.Helper()
	id := st.Identity()
	cam, err := device.New(device.Config{Serial: id.Serial, Model: id.Model, Clock: device.FixedClock{T: now}, Seeds: st})
	if err != nil {
		tb.Fatal(err)
	}
	open := id.Model.MenuGesture()
	for _, g := range []device.Gesture{open, {Kind: device.Press, Button: device.VolDown}, {Kind: device.Press, Button: device.Select}} {
		cam.Apply(g)
	}
	s := cam.Screen()
	if s.Code == "" {
		tb.Fatalf("camera %s shows no code:\n%s", id.Serial, s.Text())
	}
	return s.Code
}
