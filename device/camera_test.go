package device

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

var rfcSeed = Seed{Secret: []byte("12345678901234567890"), Algorithm: "SHA1", Digits: 6, Period: 30}

// at 1234567890 the RFC 6238 SHA1 seed gives 89005924 (8 digits), 005924 (6).
var rfcTime = time.Unix(1234567890, 0)

func newCam(t *testing.T, m Model, seeds SeedSource) *Camera {
	t.Helper()
	c, err := New(Config{Serial: "SN1", Model: m, Clock: FixedClock{T: rfcTime}, Seeds: seeds})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// feed plays edges on the camera, ticking the clock up to each one.
func feed(c *Camera, edges ...Edge) {
	for _, e := range edges {
		c.Tick(e.At)
		c.HandleEdge(e)
	}
}

func tap(b Button, at time.Duration) []Edge { return []Edge{down(b, at), up(b, at+80*ms)} }

func cat(parts ...[]Edge) []Edge {
	var out []Edge
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// The full button flow of each model: open the menu with the model's gesture,
// Volume Down to Authenticator, Select, read the code.
func TestModelFlows(t *testing.T) {
	w, l := DoublePressWindow, LongPressThreshold
	doubleAt := func(b Button, at, gap time.Duration) []Edge { return cat(tap(b, at), tap(b, at+gap)) }
	longAt := func(b Button, at, hold time.Duration) []Edge { return []Edge{down(b, at), up(b, at+hold)} }
	rest := func(at time.Duration) []Edge { return cat(tap(VolDown, at), tap(Select, at+time.Second)) }
	tests := []struct {
		name   string
		model  Model
		open   []Edge
		opened bool
	}{
		{"body4 double inside window", Body4, doubleAt(Select, 0, w), true},
		{"body4 double outside window", Body4, doubleAt(Select, 0, w+ms), false},
		{"body4 long program does nothing", Body4, longAt(Program, 0, l+ms), false},
		{"body3 long over threshold", Body3, longAt(Program, 0, l+ms), true},
		{"body3 long just under threshold", Body3, longAt(Program, 0, l-ms), false},
		{"body3 double select does nothing", Body3, doubleAt(Select, 0, 200*ms), false},
		{"workforce long program", Workforce, longAt(Program, 0, l), true},
		{"workforce double select does nothing", Workforce, doubleAt(Select, 0, 200*ms), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCam(t, tc.model, TestSeed{S: rfcSeed})
			feed(c, tc.open...)
			if got := c.Current() == MenuScreen; got != tc.opened {
				t.Fatalf("menu opened = %v, want %v (screen %d)\n%s", got, tc.opened, c.Current(), c.Screen().Text())
			}
			if !tc.opened {
				return
			}
			if !strings.Contains(c.Screen().Text(), "> Device Info") {
				t.Fatalf("menu does not highlight the first entry:\n%s", c.Screen().Text())
			}
			feed(c, rest(5*time.Second)...)
			s := c.Screen()
			if c.Current() != AuthenticatorScreen || s.Code != "005924" || !strings.Contains(s.Text(), "005924") {
				t.Fatalf("want Authenticator with 005924, got screen %d:\n%s", c.Current(), s.Text())
			}
			if s.Remaining != 30 || !strings.Contains(s.Text(), "Expires in 30s") {
				t.Fatalf("countdown: remaining %d\n%s", s.Remaining, s.Text())
			}
		})
	}
}

func TestMenuNavigation(t *testing.T) {
	c := newCam(t, Body3, TestSeed{S: rfcSeed})
	c.screen = MenuScreen
	steps := []struct {
		b      Button
		want   string
		screen ScreenID
	}{
		{VolUp, "> Device Info", MenuScreen}, // clamps at the top
		{VolDown, "> Authenticator", MenuScreen},
		{VolDown, "> Wi-Fi/Bluetooth", MenuScreen},
		{VolDown, "> Exit", MenuScreen},
		{VolDown, "> Exit", MenuScreen}, // clamps at the bottom
		{VolUp, "> Wi-Fi/Bluetooth", MenuScreen},
		{Select, "Fleet: no link", WirelessScreen},
		{Select, "> Wi-Fi/Bluetooth", MenuScreen}, // back to the menu, cursor kept
		{VolUp, "> Authenticator", MenuScreen},
		{VolUp, "> Device Info", MenuScreen},
		{Select, "SN: SN1", DeviceInfoScreen},
		{Select, "MENU", MenuScreen},
		{Power, "READY", HomeScreen},
	}
	at := time.Duration(0)
	for i, st := range steps {
		at += time.Second
		feed(c, tap(st.b, at)...)
		if c.Current() != st.screen || !strings.Contains(c.Screen().Text(), st.want) {
			t.Fatalf("step %d (%s): screen %d, want %d containing %q:\n%s", i, st.b, c.Current(), st.screen, st.want, c.Screen().Text())
		}
	}
}

func TestExitEntry(t *testing.T) {
	c := newCam(t, Body4, TestSeed{S: rfcSeed})
	c.screen = MenuScreen
	at := time.Second
	for range 3 {
		feed(c, tap(VolDown, at)...)
		at += time.Second
	}
	feed(c, tap(Select, at)...)
	if c.Current() != HomeScreen {
		t.Fatalf("Exit led to screen %d", c.Current())
	}
}

func TestNotProvisionedNeverShowsCode(t *testing.T) {
	dir := t.TempDir()
	st, err := InitState(dir, "SN1", Body4)
	if err != nil {
		t.Fatal(err)
	}
	c := newCam(t, Body4, st)
	c.screen = AuthenticatorScreen
	s := c.Screen()
	if s.Code != "" || !strings.Contains(s.Text(), "Not provisioned") {
		t.Fatalf("unprovisioned screen:\n%s", s.Text())
	}
	for _, l := range s.Lines {
		if strings.ContainsAny(strings.TrimSpace(strings.TrimPrefix(l, "Select: back")), "0123456789") {
			t.Fatalf("unprovisioned screen shows digits: %q", l)
		}
	}
	// Once a seed is stored the same camera shows its code.
	seed := rfcSeed
	seed.Version = 1
	if err := st.StoreSeed(seed); err != nil {
		t.Fatal(err)
	}
	if got := c.Screen().Code; got != "005924" {
		t.Fatalf("after provisioning code = %q", got)
	}
}

func TestIdleTimeoutReturnsHome(t *testing.T) {
	c := newCam(t, Body4, TestSeed{S: rfcSeed})
	feed(c, cat(tap(Select, 0), tap(Select, 200*ms))...)
	if c.Current() != MenuScreen {
		t.Fatal("menu did not open")
	}
	last := 280 * ms
	c.Tick(last + IdleTimeout - ms)
	if c.Current() != MenuScreen {
		t.Fatal("returned home before the idle timeout")
	}
	c.Tick(last + IdleTimeout)
	if c.Current() != HomeScreen {
		t.Fatal("did not return home at the idle timeout")
	}
}

// stepClock is a settable clock for refresh tests.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (s *stepClock) Now() time.Time  { s.mu.Lock(); defer s.mu.Unlock(); return s.t }
func (s *stepClock) set(t time.Time) { s.mu.Lock(); s.t = t; s.mu.Unlock() }

func TestAuthenticatorRefreshesAtStepBoundary(t *testing.T) {
	clk := &stepClock{t: time.Unix(1234567890+29, 0)}
	c, err := New(Config{Serial: "SN1", Model: Body4, Clock: clk, Seeds: TestSeed{S: rfcSeed}})
	if err != nil {
		t.Fatal(err)
	}
	c.screen = AuthenticatorScreen
	before := c.Screen()
	if before.Code != "005924" || before.Remaining != 1 {
		t.Fatalf("before boundary: %q %ds", before.Code, before.Remaining)
	}
	clk.set(time.Unix(1234567890+30, 0))
	after := c.Screen()
	want, _ := rfcSeed.Code(time.Unix(1234567920, 0))
	if after.Code != want || after.Code == before.Code || after.Remaining != 30 {
		t.Fatalf("after boundary: %q %ds, want %q 30s", after.Code, after.Remaining, want)
	}
}

func TestDriftClock(t *testing.T) {
	base := time.Unix(1_000_000, 0)
	c := DriftClock{Base: FixedClock{T: base.Add(1000 * time.Second)}, Offset: 45 * time.Second, PPM: 1000, Epoch: base}
	// 1000 s at 1000 ppm gains 1 s, plus 45 s offset.
	if got, want := c.Now(), base.Add(1046*time.Second); !got.Equal(want) {
		t.Fatalf("DriftClock.Now() = %v, want %v", got, want)
	}
}

// fakePanel records what Run shows.
type fakePanel struct {
	edges chan Edge
	mu    sync.Mutex
	shown []Screen
	up    time.Duration
}

func (p *fakePanel) Show(s Screen) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shown = append(p.shown, s)
	return nil
}
func (p *fakePanel) Edges() <-chan Edge { return p.edges }
func (p *fakePanel) Uptime() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}
func (p *fakePanel) last() Screen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shown[len(p.shown)-1]
}

func TestRunShowsScreensFromEdges(t *testing.T) {
	p := &fakePanel{edges: make(chan Edge)}
	c := newCam(t, Body3, TestSeed{S: rfcSeed})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx, p) }()
	for _, e := range cat([]Edge{down(Program, 0), up(Program, 2*time.Second)}, tap(VolDown, 3*time.Second), tap(Select, 4*time.Second)) {
		p.edges <- e
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.last().Code != "005924" {
		if time.Now().After(deadline) {
			t.Fatalf("Run never showed the code; last:\n%s", p.last().Text())
		}
		time.Sleep(10 * ms)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Run only shows changes: no two consecutive screens are the same.
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 1; i < len(p.shown); i++ {
		if p.shown[i].Equal(p.shown[i-1]) {
			t.Fatalf("screen %d shown twice in a row", i)
		}
	}
}
