package cli

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testenv"
)

// simScreen is a tcell SimulationScreen whose text a test can read while
// the UI draws: tcell's GetContents hands out the cells Show writes, so
// frames and reads take one lock.
type simScreen struct {
	tcell.SimulationScreen
	mu sync.Mutex
}

func newSimScreen() *simScreen {
	return &simScreen{SimulationScreen: tcell.NewSimulationScreen("UTF-8")}
}

func (s *simScreen) Init() error { s.mu.Lock(); defer s.mu.Unlock(); return s.SimulationScreen.Init() }
func (s *simScreen) Fini()       { s.mu.Lock(); defer s.mu.Unlock(); s.SimulationScreen.Fini() }
func (s *simScreen) Show()       { s.mu.Lock(); defer s.mu.Unlock(); s.SimulationScreen.Show() }
func (s *simScreen) Sync()       { s.mu.Lock(); defer s.mu.Unlock(); s.SimulationScreen.Sync() }
func (s *simScreen) env() func() (tcell.Screen, error) {
	return func() (tcell.Screen, error) { return s, nil }
}

// text is what the screen shows, one line per row.
func (s *simScreen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cells, w, h := s.GetContents()
	var b strings.Builder
	for y := 0; y < h && len(cells) >= w*h; y++ {
		var line strings.Builder
		for x := 0; x < w; x++ {
			if c := cells[y*w+x]; len(c.Bytes) > 0 {
				line.Write(c.Bytes)
			} else {
				line.WriteByte(' ')
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return b.String()
}

// mainRun is Main running in the background until its context is
// cancelled.
type mainRun struct {
	stdout, stderr testenv.SyncBuffer
	cancel         context.CancelFunc
	done           chan int
}

func startMain(t *testing.T, env Env, args ...string) *mainRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &mainRun{cancel: cancel, done: make(chan int, 1)}
	env.Stdout, env.Stderr = &m.stdout, &m.stderr
	go func() { m.done <- Main(ctx, env, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
			t.Errorf("camotp %s did not stop within 30 s of its context's end", strings.Join(args, " "))
		}
		if t.Failed() {
			t.Logf("camotp %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), m.stdout.String(), m.stderr.String())
		}
	})
	return m
}

// waitUntil polls cond until it holds; it fails the test if the command
// exits first or the deadline passes.
func (m *mainRun) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // generous: 2 busy cores under -race
	for !cond() {
		select {
		case code := <-m.done:
			m.done <- code
			t.Fatalf("exited (code %d) before %s", code, what)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// stop cancels the command's context and returns its exit code.
func (m *mainRun) stop(t *testing.T) int {
	t.Helper()
	m.cancel()
	select {
	case code := <-m.done:
		m.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop within 30 s of its context's end")
		return -1
	}
}

// registeredCamera makes a camera state directory and registers the
// camera on srv.
func registeredCamera(t *testing.T, srv interface{ HTTPAddr() string }, token, serial string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), serial)
	st, err := device.InitState(dir, serial, device.Body4)
	if err != nil {
		t.Fatal(err)
	}
	pub := st.Identity().Public()
	req, _ := http.NewRequest("POST", "http://"+srv.HTTPAddr()+"/api/v1/admin/cameras",
		strings.NewReader(`{"serial":"`+pub.Serial+`","model":"body4","publicKey":"`+pub.PublicKey+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register %s: %d", serial, resp.StatusCode)
	}
	return dir
}

// TestHeadlessBrokerStaysRunning: 'camera run --ui headless --broker'
// without --script prints its screen and keeps running (a connected
// camera): a seed provisioned after the first screen still reaches it and
// is proven, its screen changes are printed, and it stops cleanly (exit 0)
// when its context ends, as Ctrl-C does.
func TestHeadlessBrokerStaysRunning(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	dir := registeredCamera(t, srv, srv.AdminToken, "BC4-FOLLOW")
	m := startMain(t, Env{}, "camera", "run", "--state", dir, "--ui", "headless", "--broker", "tcp://"+srv.MQTTAddr())
	m.waitUntil(t, "the first screen", func() bool { return strings.Contains(m.stdout.String(), "READY") })
	m.waitUntil(t, "the camera online", func() bool {
		c, err := srv.Store.Camera(context.Background(), "BC4-FOLLOW")
		return err == nil && c.Online
	})
	// Provisioned after the first screen: only a camera still running
	// receives the seed and proves it.
	v := testenv.Op(t, srv, "BC4-FOLLOW", "provision")
	testenv.WaitCamera(t, srv.Store, "BC4-FOLLOW", model.StateProvisioned, v)
	m.waitUntil(t, "a screen change printed while following", func() bool {
		return strings.Contains(m.stdout.String(), "\n--- ")
	})
	select {
	case code := <-m.done:
		t.Fatalf("camera run exited (code %d) before it was stopped", code)
	default:
	}
	if code := m.stop(t); code != 0 {
		t.Fatalf("stopped camera run: exit %d", code)
	}
	// A clean stop says goodbye: the server sees the camera go offline.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := srv.Store.Camera(context.Background(), "BC4-FOLLOW")
		if err == nil && !c.Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still sees the stopped camera online")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTUIShowsFleetLink: 'camera run --ui tui --broker' shows the fleet
// link under the camera as it is now: connected once the broker took the
// camera, offline once the broker is gone.
func TestTUIShowsFleetLink(t *testing.T) {
	srv := testenv.Server(t, t.TempDir(), nil)
	dir := registeredCamera(t, srv, srv.AdminToken, "BC4-TUI")
	screen := newSimScreen()
	m := startMain(t, Env{NewScreen: screen.env()}, "camera", "run", "--state", dir, "--ui", "tui", "--broker", "tcp://"+srv.MQTTAddr())
	m.waitUntil(t, `"fleet: connected" under the camera`, func() bool { return strings.Contains(screen.text(), "fleet: connected") })
	if text := screen.text(); !strings.Contains(text, "Body 4 · BC4-TUI") || !strings.Contains(text, "camera clock ") {
		t.Fatalf("no camera on screen:\n%s", text)
	}
	srv.Close()
	m.waitUntil(t, "the footer to leave connected", func() bool {
		text := screen.text()
		return !strings.Contains(text, "fleet: connected") && strings.Contains(text, "fleet: ")
	})
	if code := m.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestDemoFooterAndHeadless: a first run of the demo, headless, prints
// every camera's codes (the admin's too) and the demo passwords, and no
// "Emulator shows" line; a second run against the same data directory
// shows the emulator whose footer follows the fleet link to "connected"
// (it used to keep the "connecting" it read at start).
func TestDemoFooterAndHeadless(t *testing.T) {
	data := t.TempDir()
	args := []string{"demo", "--data", data, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0", "--radius", "", "--issuer", "off"}

	first := startMain(t, Env{}, append(args, "--headless")...)
	adminCode := regexp.MustCompile(`DEMO-BC4-0003 admin +\d{6}\n`)
	first.waitUntil(t, "the admin camera's code", func() bool { return adminCode.MatchString(first.stdout.String()) })
	if code := first.stop(t); code != 0 {
		t.Fatalf("demo --headless: exit %d", code)
	}
	out := first.stdout.String()
	if strings.Contains(out, "Emulator shows") {
		t.Errorf("demo --headless talks of an emulator:\n%s", out)
	}
	adminLine := regexp.MustCompile(`(?m)^  admin +password [a-z2-7]{16} +camera DEMO-BC4-0003 \(Body 4\)$`)
	if !adminLine.MatchString(out) || !strings.Contains(out, "admin console: /admin") {
		t.Errorf("no admin with a base32 password and the console:\n%s", out)
	}

	screen := newSimScreen()
	second := startMain(t, Env{NewScreen: screen.env()}, args...)
	second.waitUntil(t, `"fleet: connected" in the footer`, func() bool { return strings.Contains(screen.text(), "fleet: connected") })
	text := screen.text()
	if !strings.Contains(text, "Body 4 · DEMO-BC4-0001") || !regexp.MustCompile(`admin +password [a-z2-7]{16} +camera DEMO-BC4-0003`).MatchString(text) {
		t.Errorf("emulator lacks the camera or the admin's line:\n%s", text)
	}
	if code := second.stop(t); code != 0 {
		t.Fatalf("demo: exit %d", code)
	}
	if !strings.Contains(second.stdout.String(), "Emulator shows DEMO-BC4-0001.") {
		t.Errorf("the demo with its emulator does not say which camera it shows:\n%s", second.stdout.String())
	}
}
