package device

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// IdleTimeout is how long the camera stays on a menu or info screen with no
// button activity before it returns to the home screen.
const IdleTimeout = 60 * time.Second

// TickInterval is how often Run re-evaluates timers and the screen (the
// countdown changes once a second).
const TickInterval = 100 * time.Millisecond

// MenuEntries are the camera menu's entries, top to bottom.
var MenuEntries = []string{"Device Info", "Authenticator", "Wi-Fi/Bluetooth", "Exit"}

// Menu entry indexes.
const (
	entryDeviceInfo = iota
	entryAuthenticator
	entryWireless
	entryExit
)

// Display shows screens: the LCD of a terminal emulator or a real board.
type Display interface {
	Show(Screen) error
}

// Panel is a camera's display and buttons. Edges delivers raw button edges
// stamped with the panel's monotonic time; Uptime reads that same time base
// so the camera can run its timers between edges.
type Panel interface {
	Display
	Edges() <-chan Edge
	Uptime() time.Duration
}

// LinkStatus reports the camera's connection to the fleet, shown on the
// Wi-Fi/Bluetooth screen. Nil means the camera has no link.
type LinkStatus interface {
	Status() string
}

// Config is what a Camera is made of.
type Config struct {
	Serial string
	Model  Model
	Clock  Clock
	Seeds  SeedSource
	Link   LinkStatus
	// TestMode shows a TEST banner (factory test seed in use).
	TestMode bool
}

// Camera is the camera firmware's state machine: it turns gestures into menu
// moves and renders the current screen. It is not safe for concurrent use;
// Run owns it while it runs.
type Camera struct {
	cfg      Config
	detector GestureDetector
	screen   ScreenID
	cursor   int
	lastUsed time.Duration
	now      time.Duration
}

// New returns a camera on its home screen.
func New(cfg Config) (*Camera, error) {
	if _, err := ParseModel(string(cfg.Model)); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Seeds == nil {
		return nil, errors.New("camera needs a seed source")
	}
	return &Camera{cfg: cfg, screen: HomeScreen}, nil
}

// Model returns the camera model.
func (c *Camera) Model() Model { return c.cfg.Model }

// Current is the screen the camera is on.
func (c *Camera) Current() ScreenID { return c.screen }

// HandleEdge feeds one raw button edge and applies the gestures it completes.
func (c *Camera) HandleEdge(e Edge) {
	c.now = max(c.now, e.At)
	c.lastUsed = c.now
	for _, g := range c.detector.Feed(e) {
		c.Apply(g)
	}
}

// Tick advances the camera's timers to now: long-presses of held buttons and
// the idle timeout.
func (c *Camera) Tick(now time.Duration) {
	c.now = max(c.now, now)
	for _, g := range c.detector.Advance(c.now) {
		c.lastUsed = c.now
		c.Apply(g)
	}
	if c.screen != HomeScreen && c.now-c.lastUsed >= IdleTimeout {
		c.screen = HomeScreen
	}
}

// Apply acts on one gesture.
func (c *Camera) Apply(g Gesture) {
	if g.Kind == Press && g.Button == Power {
		c.screen = HomeScreen
		return
	}
	switch c.screen {
	case HomeScreen:
		if open := c.cfg.Model.MenuGesture(); g.Kind == open.Kind && g.Button == open.Button {
			c.screen, c.cursor = MenuScreen, 0
		}
	case MenuScreen:
		if g.Kind != Press {
			return
		}
		switch g.Button {
		case VolDown:
			c.cursor = min(c.cursor+1, len(MenuEntries)-1)
		case VolUp:
			c.cursor = max(c.cursor-1, 0)
		case Select:
			switch c.cursor {
			case entryDeviceInfo:
				c.screen = DeviceInfoScreen
			case entryAuthenticator:
				c.screen = AuthenticatorScreen
			case entryWireless:
				c.screen = WirelessScreen
			case entryExit:
				c.screen = HomeScreen
			}
		}
	default:
		// Info screens: Select goes back to the menu.
		if g.Kind == Press && g.Button == Select {
			c.screen = MenuScreen
		}
	}
}

// Screen renders the current screen at the camera clock's time.
func (c *Camera) Screen() Screen {
	now := c.cfg.Clock.Now()
	banner := ""
	if c.cfg.TestMode {
		banner = " TEST"
	}
	switch c.screen {
	case MenuScreen:
		lines := []string{"MENU" + banner}
		for i, e := range MenuEntries {
			mark := "  "
			if i == c.cursor {
				mark = "> "
			}
			lines = append(lines, mark+e)
		}
		return newScreen(MenuScreen, lines...)
	case DeviceInfoScreen:
		return newScreen(DeviceInfoScreen, "DEVICE INFO"+banner,
			"Model: "+c.cfg.Model.DisplayName(), "SN: "+c.cfg.Serial,
			"Time: "+now.UTC().Format("15:04:05Z"), "", "Select: back")
	case WirelessScreen:
		status := "no link"
		if c.cfg.Link != nil {
			status = c.cfg.Link.Status()
		}
		return newScreen(WirelessScreen, "WI-FI/BLUETOOTH"+banner, "Fleet: "+status, "", "", "", "Select: back")
	case AuthenticatorScreen:
		return c.authenticator(now, banner)
	}
	return newScreen(HomeScreen, c.cfg.Model.DisplayName()+banner, "SN "+c.cfg.Serial,
		center(now.UTC().Format("15:04:05")), center(now.UTC().Format("2006-01-02")), "", "READY")
}

func (c *Camera) authenticator(now time.Time, banner string) Screen {
	title := "AUTHENTICATOR" + banner
	seed, err := c.cfg.Seeds.Seed()
	if errors.Is(err, ErrNoSeed) {
		return newScreen(AuthenticatorScreen, title, "", center("Not provisioned"), "", "", "Select: back")
	}
	if err != nil {
		return newScreen(AuthenticatorScreen, title, "", center("Seed error"), "", "", "Select: back")
	}
	code, err := seed.Code(now)
	if err != nil {
		return newScreen(AuthenticatorScreen, title, "", center("Seed error"), "", "", "Select: back")
	}
	remaining := int((seed.Remaining(now) + time.Second - 1) / time.Second)
	const barWidth = LCDWidth - 2
	filled := remaining * barWidth / seed.Period
	bar := "[" + strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled) + "]"
	s := newScreen(AuthenticatorScreen, title, "Verification code", center(code),
		fmt.Sprintf("Expires in %2ds", remaining), bar, "Select: back")
	s.Code, s.Remaining = code, remaining
	return s
}

// Run drives the camera from the panel until ctx ends or the panel's edge
// channel closes: it applies edges as they come, ticks timers every
// TickInterval and shows a screen whenever it changes.
func (c *Camera) Run(ctx context.Context, p Panel) error {
	t := time.NewTicker(TickInterval)
	defer t.Stop()
	var shown Screen
	show := func() error {
		s := c.Screen()
		if s.Equal(shown) {
			return nil
		}
		shown = s
		if err := p.Show(s); err != nil {
			return fmt.Errorf("show screen: %w", err)
		}
		return nil
	}
	c.Tick(p.Uptime())
	if err := show(); err != nil {
		return err
	}
	edges := p.Edges()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-edges:
			if !ok {
				return nil
			}
			c.HandleEdge(e)
		case <-t.C:
			c.Tick(p.Uptime())
		}
		if err := show(); err != nil {
			return err
		}
	}
}
