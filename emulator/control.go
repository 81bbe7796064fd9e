package emulator

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/httpx"
)

// Clock is a camera clock QA can move while the camera runs: set to a
// time, shifted, or made to drift (ppm) from the moment of the change. It
// is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	base   device.Clock
	anchor time.Time // base time at the last change
	value  time.Time // camera time at the last change
	ppm    float64
}

// NewClock is a clock that reads base until it is moved.
func NewClock(base device.Clock) *Clock {
	now := base.Now()
	return &Clock{base: base, anchor: now, value: now}
}

// Now is the camera's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time {
	el := c.base.Now().Sub(c.anchor)
	return c.value.Add(el + time.Duration(float64(el)*c.ppm/1e6))
}

// rebase starts a new segment at the current camera time.
func (c *Clock) rebase() {
	c.value, c.anchor = c.nowLocked(), c.base.Now()
}

// Set sets the camera's time to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.value, c.anchor = t, c.base.Now()
}

// Shift moves the camera's time by d.
func (c *Clock) Shift(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rebase()
	c.value = c.value.Add(d)
}

// SetPPM makes the clock run fast (ppm > 0) or slow from now on.
func (c *Clock) SetPPM(ppm float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rebase()
	c.ppm = ppm
}

// PPM is the clock's drift.
func (c *Clock) PPM() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ppm
}

// Controlled is a headless camera driven from outside while it runs (the
// QA control API): the camera core on a timeline that follows real time,
// its gestures applied at once. It is safe for concurrent use.
type Controlled struct {
	mu    sync.Mutex
	cam   *device.Camera
	clock *Clock
	link  device.LinkStatus
	start time.Time     // real time at uptime 0
	virt  time.Duration // the camera's uptime: real time, plus the gestures' own durations
	since func(time.Time) time.Duration
}

// NewControlled makes a camera of cfg whose clock QA can move (cfg.Clock
// is its base).
func NewControlled(cfg device.Config) (*Controlled, error) {
	base := cfg.Clock
	if base == nil {
		base = device.SystemClock{}
	}
	clock := NewClock(base)
	cfg.Clock = clock
	cam, err := device.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Controlled{cam: cam, clock: clock, link: cfg.Link, start: time.Now(), since: time.Since}, nil
}

// Clock is the camera's clock.
func (c *Controlled) Clock() *Clock { return c.clock }

// tick brings the camera's timers to real time (idle timeout, held
// buttons). Call with mu held.
func (c *Controlled) tick() {
	c.virt = max(c.virt, c.since(c.start))
	c.cam.Tick(c.virt)
}

// Screen is what the camera shows now.
func (c *Controlled) Screen() device.Screen {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick()
	return c.cam.Screen()
}

// Apply performs gesture g at once: its edges are fed on the camera's
// timeline, which then moves past the double-press window so the next
// gesture is never merged with it.
func (c *Controlled) Apply(g device.Gesture) device.Screen {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apply(g)
	return c.cam.Screen()
}

func (c *Controlled) apply(g device.Gesture) {
	c.tick()
	c.virt = Play(c.cam, nil, c.virt, []Step{{Kind: g.Kind, Button: g.Button}})
}

// ErrNoCode says the camera cannot show a code; its Reason is what the
// screen says instead.
type ErrNoCode struct{ Reason string }

func (e *ErrNoCode) Error() string { return "the camera shows no code: " + e.Reason }

// CodeFlow is the officer's way to the code on a camera of model m, from
// any screen: Power (home), the model's menu gesture, Volume Down to
// Authenticator, Select.
func CodeFlow(m device.Model) []device.Gesture {
	return []device.Gesture{{Kind: device.Press, Button: device.Power}, m.MenuGesture(),
		{Kind: device.Press, Button: device.VolDown}, {Kind: device.Press, Button: device.Select}}
}

// Code performs the model's own button flow (CodeFlow) and returns the
// Authenticator screen; *ErrNoCode when it shows no code (not
// provisioned, seed error).
func (c *Controlled) Code() (device.Screen, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range CodeFlow(c.cam.Model()) {
		c.apply(g)
	}
	s := c.cam.Screen()
	if s.ID != device.AuthenticatorScreen {
		return s, &ErrNoCode{Reason: "the menu did not reach the Authenticator screen"}
	}
	if s.Code == "" {
		return s, &ErrNoCode{Reason: strings.ToLower(strings.TrimSpace(s.Lines[2]))}
	}
	return s, nil
}

// Link is the camera's fleet link as its Wi-Fi/Bluetooth screen says it.
func (c *Controlled) Link() string {
	if c.link == nil {
		return "no link"
	}
	return c.link.Status()
}

// Model is the camera's model.
func (c *Controlled) Model() device.Model { return c.cam.Model() }

// screenNames name the screens in the control API.
var screenNames = map[device.ScreenID]string{
	device.HomeScreen: "home", device.MenuScreen: "menu", device.DeviceInfoScreen: "device-info",
	device.AuthenticatorScreen: "authenticator", device.WirelessScreen: "wireless",
}

// ScreenState is GET /screen's answer.
type ScreenState struct {
	Screen string   `json:"screen"`
	Lines  []string `json:"lines"`
	// Code is the code shown ("" when none) and SecondsLeft how long it
	// stays current.
	Code        string `json:"code,omitempty"`
	SecondsLeft int    `json:"secondsLeft,omitempty"`
	Link        string `json:"link"`
	Model       string `json:"model"`
	Time        string `json:"time"`
}

// CodeAnswer is GET /code's answer.
type CodeAnswer struct {
	Code      string `json:"code"`
	ExpiresIn int    `json:"expiresIn"`
	Model     string `json:"model"`
}

// PressRequest is POST /press's body.
type PressRequest struct {
	Button  string `json:"button"`
	Gesture string `json:"gesture"` // press (default), double or long
}

// ClockRequest is POST /clock's body: exactly one of Offset (a Go
// duration such as "90s" or "-2m", added to the camera's time), PPM (the
// drift from now on) or Set (an RFC 3339 time).
type ClockRequest struct {
	Offset string   `json:"offset,omitempty"`
	PPM    *float64 `json:"ppm,omitempty"`
	Set    string   `json:"set,omitempty"`
}

// ClockAnswer is POST /clock's answer.
type ClockAnswer struct {
	Time string  `json:"time"`
	PPM  float64 `json:"ppm"`
}

// maxControlBody bounds a control request's body.
const maxControlBody = 1 << 10

// MaxPPM bounds the drift QA may set: a millionth of a million is a clock
// that stands still or runs twice as fast.
const MaxPPM = 1e6

// ControlHandler serves the control API of cam: GET /screen, POST /press,
// GET /code, POST /clock. It answers only requests whose Host is a
// loopback address or localhost (a web page the QA engineer's browser
// opens cannot reach it through a rebound DNS name).
func ControlHandler(cam *Controlled, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /screen", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, cam.state(cam.Screen()))
	})
	mux.HandleFunc("POST /press", func(w http.ResponseWriter, r *http.Request) {
		var req PressRequest
		if err := httpx.DecodeLimit(w, r, &req, maxControlBody); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		g, err := ParseGesture(req.Button, req.Gesture)
		if err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		log.Info("control: gesture", "gesture", g.String())
		httpx.WriteJSON(w, http.StatusOK, cam.state(cam.Apply(g)))
	})
	mux.HandleFunc("GET /code", func(w http.ResponseWriter, r *http.Request) {
		s, err := cam.Code()
		if nc := (*ErrNoCode)(nil); errors.As(err, &nc) {
			httpx.WriteError(w, http.StatusConflict, nc.Reason)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, CodeAnswer{Code: s.Code, ExpiresIn: s.Remaining, Model: string(cam.Model())})
	})
	mux.HandleFunc("POST /clock", func(w http.ResponseWriter, r *http.Request) {
		var req ClockRequest
		if err := httpx.DecodeLimit(w, r, &req, maxControlBody); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := cam.setClock(req); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		log.Info("control: clock", "offset", req.Offset, "ppm", req.PPM, "set", req.Set)
		httpx.WriteJSON(w, http.StatusOK, ClockAnswer{Time: cam.clock.Now().UTC().Format(time.RFC3339Nano), PPM: cam.clock.PPM()})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			httpx.WriteError(w, http.StatusForbidden, "the control API answers requests to a loopback address or localhost only")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// loopbackHost tells whether a request's Host names this machine's
// loopback: localhost, 127.0.0.0/8 or ::1, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// State is the control API's view of the current screen.
func (c *Controlled) State() ScreenState { return c.state(c.Screen()) }

func (c *Controlled) state(s device.Screen) ScreenState {
	return ScreenState{Screen: screenNames[s.ID], Lines: s.Lines, Code: s.Code, SecondsLeft: s.Remaining,
		Link: c.Link(), Model: string(c.Model()), Time: c.clock.Now().UTC().Format(time.RFC3339)}
}

// ParseGesture reads a gesture as the control API takes it: a button
// (select, volup, voldown, program, power) and press (or ""), double or
// long.
func ParseGesture(button, gesture string) (device.Gesture, error) {
	b, err := device.ParseButton(strings.ToLower(button))
	if err != nil {
		return device.Gesture{}, err
	}
	var k device.GestureKind
	switch strings.ToLower(gesture) {
	case "", "press":
		k = device.Press
	case "double":
		k = device.DoublePress
	case "long":
		k = device.LongPress
	default:
		return device.Gesture{}, fmt.Errorf("unknown gesture %q (want press, double or long)", gesture)
	}
	return device.Gesture{Kind: k, Button: b}, nil
}

func (c *Controlled) setClock(req ClockRequest) error {
	n := 0
	for _, set := range []bool{req.Offset != "", req.PPM != nil, req.Set != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New(`give exactly one of "offset" (e.g. "90s"), "ppm" (e.g. 50) or "set" (RFC 3339 time)`)
	}
	switch {
	case req.Offset != "":
		d, err := time.ParseDuration(req.Offset)
		if err != nil || d < -MaxWait || d > MaxWait {
			return fmt.Errorf(`offset %q: want a duration within ±24h, e.g. "90s" or "-2m"`, req.Offset)
		}
		c.clock.Shift(d)
	case req.PPM != nil:
		p := *req.PPM
		if math.IsNaN(p) || p < -MaxPPM || p > MaxPPM {
			return fmt.Errorf("ppm %v: want a number from -1000000 to 1000000", p)
		}
		c.clock.SetPPM(p)
	default:
		t, err := time.Parse(time.RFC3339, req.Set)
		if err != nil || t.Year() < 1970 || t.Year() > 9999 {
			return fmt.Errorf("set %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", req.Set)
		}
		c.clock.Set(t)
	}
	return nil
}
