// Package qa lets a team whose records system signs officers in through
// camotp test it from its own Go tests: a real camotp server (embedded MQTT
// broker and SQLite in a temporary directory, on free loopback ports),
// officers, body cameras of any model provisioned over the real broker and
// assigned to them, read the way an officer reads them (the model's own
// button flow), their buttons and clocks, and whole sign-ins through the
// JSON API. Everything started is stopped when the test ends.
//
//	srv := qa.Start(t)
//	srv.AddOfficer(t, "jdoe", "a long password")
//	cam := srv.AddCamera(t, "BC4-0001", "body4", "jdoe")
//	session := srv.SignIn(t, "jdoe", "a long password", cam)
package qa

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/api"
	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/emulator"
	"github.com/camotp/camotp/internal/testenv"
)

// Server is a running camotp server.
type Server struct {
	// URL is the base URL of its sign-in pages and APIs (http://127.0.0.1:PORT).
	URL string
	// Broker is its MQTT broker (tcp://127.0.0.1:PORT), which the cameras use.
	Broker string
	// AdminToken is the bearer token of its admin API.
	AdminToken string

	run *testenv.Running
}

// Start starts a server for tb; it stops at tb's cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	run := testenv.Run(tb, tb.TempDir())
	return &Server{URL: run.URL, Broker: run.Broker, AdminToken: run.AdminToken, run: run}
}

// AddOfficer adds a user who signs in with password.
func (s *Server) AddOfficer(tb testing.TB, username, password string) {
	tb.Helper()
	testenv.User(tb, s.run.Srv, username, password)
}

// Camera is a body camera connected to the server's broker, driven from
// the test: its screen, buttons and clock.
type Camera struct {
	// Serial and Model ("body4", "body3", "workforce") say which camera.
	Serial, Model string

	ctl *emulator.Controlled
}

// AddCamera registers a camera of model ("body4", "body3" or "workforce"),
// connects it to the broker, provisions its seed over MQTT and, when
// officer is not "", assigns it to that officer. It returns once the server
// has the camera's proof of the seed.
func (s *Server) AddCamera(tb testing.TB, serial, model, officer string) *Camera {
	tb.Helper()
	m, err := device.ParseModel(model)
	if err != nil {
		tb.Fatal(err)
	}
	st, agent := testenv.ProvisionedCameraAgent(tb, s.run.Srv, serial, m, officer)
	ctl, err := emulator.NewControlled(device.Config{Serial: serial, Model: m, Seeds: st, Link: agent})
	if err != nil {
		tb.Fatal(err)
	}
	return &Camera{Serial: serial, Model: string(m), ctl: ctl}
}

// Screen is what a camera shows (the control API's GET /screen).
type Screen = emulator.ScreenState

// Code is the code the camera shows now, read as an officer reads it: the
// model's own button flow to the Authenticator screen. It fails tb when the
// camera shows none.
func (c *Camera) Code(tb testing.TB) string {
	tb.Helper()
	s, err := c.ctl.Code()
	if err != nil {
		tb.Fatalf("camera %s: %v", c.Serial, err)
	}
	return s.Code
}

// Press performs a gesture ("press", "double" or "long") on a button
// ("select", "volup", "voldown", "program", "power") and returns the
// screen after it.
func (c *Camera) Press(tb testing.TB, button, gesture string) Screen {
	tb.Helper()
	g, err := emulator.ParseGesture(button, gesture)
	if err != nil {
		tb.Fatal(err)
	}
	c.ctl.Apply(g)
	return c.Screen()
}

// Screen is what the camera shows now.
func (c *Camera) Screen() Screen { return c.ctl.State() }

// SkewClock moves the camera's clock by d (a camera whose clock is off).
func (c *Camera) SkewClock(d time.Duration) { c.ctl.Clock().Shift(d) }

// SetClockPPM makes the camera's clock drift by ppm from now on.
func (c *Camera) SetClockPPM(ppm float64) { c.ctl.Clock().SetPPM(ppm) }

// SetClock sets the camera's clock to t.
func (c *Camera) SetClock(t time.Time) { c.ctl.Clock().Set(t) }

// ServeControl serves the camera's HTTP control API (GET /screen, POST
// /press, GET /code, POST /clock, as `camotp camera run --control` does)
// on a loopback port until tb ends, for tests in other languages or a
// browser test's runner, and returns its base URL.
func (c *Camera) ServeControl(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(emulator.ControlHandler(c.ctl, nil))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// Login passes the password step through the JSON API and returns the
// status and the answer; a 200 answer's Token is the pending sign-in.
func (s *Server) Login(tb testing.TB, username, password string) (int, api.LoginResponse) {
	tb.Helper()
	var out api.LoginResponse
	status := s.post(tb, "/api/v1/auth/login", api.LoginRequest{Username: username, Password: password}, &out)
	return status, out
}

// Verify answers a pending sign-in's challenge with code through the JSON
// API and returns the status and the raw answer (a 200 holds
// "sessionToken"; a 401 "error" and "attemptsLeft").
func (s *Server) Verify(tb testing.TB, pending, code string) (int, map[string]any) {
	tb.Helper()
	var out map[string]any
	status := s.post(tb, "/api/v1/auth/verify", api.VerifyRequest{Token: pending, Code: code}, &out)
	return status, out
}

// SignIn signs username in with password and the code cam shows, and
// returns the session token; it fails tb when any step is refused.
func (s *Server) SignIn(tb testing.TB, username, password string, cam *Camera) string {
	tb.Helper()
	status, login := s.Login(tb, username, password)
	if status != http.StatusOK || login.Token == "" {
		tb.Fatalf("sign in %s: password step answered %d %+v", username, status, login)
	}
	status, ans := s.Verify(tb, login.Token, cam.Code(tb))
	session, _ := ans["sessionToken"].(string)
	if status != http.StatusOK || session == "" {
		tb.Fatalf("sign in %s: code step answered %d %v", username, status, ans)
	}
	return session
}

// post sends body as JSON to path and decodes the answer into out.
func (s *Server) post(tb testing.TB, path string, body, out any) int {
	tb.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+path, bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("POST %s: %d %q: %v", path, resp.StatusCode, raw, fmt.Errorf("decode: %w", err))
		}
	}
	return resp.StatusCode
}
