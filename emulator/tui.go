package emulator

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gdamore/tcell/v2"

	"github.com/camotp/camotp/device"
)

// keyButtons maps the emulator's keys to buttons. The upper-case letter is a
// long press of the same button (terminals report no key-up); two presses of
// a key inside device.DoublePressWindow are a double-press.
var keyButtons = map[rune]device.Button{
	's': device.Select,
	'u': device.VolUp,
	'd': device.VolDown,
	'p': device.Program,
	'o': device.Power,
}

func buttonKey(b device.Button) rune {
	for r, kb := range keyButtons {
		if kb == b {
			return r
		}
	}
	return '?'
}

// HelpLines is the key help shown under the camera.
var HelpLines = []string{
	"keys: s Select  u Vol+  d Vol-  p Program  o Power  (Enter/Up/Down too)",
	"upper-case = long press · same key twice quickly = double · q quit",
}

// TUI is a full-screen terminal emulator of a camera. It is the camera's
// Panel: it turns keys into button edges and draws the screens it is shown.
type TUI struct {
	screen tcell.Screen
	model  device.Model
	serial string
	clock  device.Clock
	status string

	edges chan device.Edge
	start time.Time
	ready chan struct{}

	// Notes are extra lines drawn under the key help (e.g. the demo's
	// sign-in URL). Set them before Run.
	Notes []string
	// Link, when set before Run, is the camera's link to its fleet: its
	// state is read at every frame and shown under the camera ("fleet:
	// connected"), so the line follows the link as it comes up or drops.
	Link device.LinkStatus

	drawMu sync.Mutex // one frame at a time: Show and the event loop both draw

	mu   sync.Mutex
	skew time.Duration // time added by synthesized long presses
	last time.Duration // last edge time, to keep edges monotonic
	lcd  device.Screen
}

// NewTUI makes an emulator that draws on screen (a real terminal from
// tcell.NewScreen, or a SimulationScreen in tests). status, when not empty,
// is shown under the camera (e.g. "TEST SEED").
func NewTUI(screen tcell.Screen, model device.Model, serial string, clock device.Clock, status string) *TUI {
	return &TUI{
		screen: screen, model: model, serial: serial, clock: clock, status: status,
		edges: make(chan device.Edge, 64), start: time.Now(), ready: make(chan struct{}),
	}
}

// Ready is closed once the terminal is initialised and the first frame drawn.
func (t *TUI) Ready() <-chan struct{} { return t.ready }

// Edges delivers button edges made from keys.
func (t *TUI) Edges() <-chan device.Edge { return t.edges }

// Uptime is the emulator's monotonic time.
func (t *TUI) Uptime() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.uptimeLocked()
}

func (t *TUI) uptimeLocked() time.Duration { return time.Since(t.start) + t.skew }

// Show draws a camera screen on the LCD.
func (t *TUI) Show(s device.Screen) error {
	t.mu.Lock()
	t.lcd = s
	t.mu.Unlock()
	t.draw()
	return nil
}

// Run initialises the terminal, runs cam with this emulator as its panel and
// returns when the user quits (q, Esc or Ctrl-C) or ctx ends. The terminal
// is restored on return.
func (t *TUI) Run(ctx context.Context, cam *device.Camera) error {
	if err := t.screen.Init(); err != nil {
		return fmt.Errorf("init terminal: %w", err)
	}
	defer t.screen.Fini()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	camDone := make(chan error, 1)
	go func() { camDone <- cam.Run(ctx, t) }()

	events := make(chan tcell.Event, 16)
	quit := make(chan struct{})
	go t.screen.ChannelEvents(events, quit)
	defer close(quit)

	clockTick := time.NewTicker(time.Second)
	defer clockTick.Stop()
	t.draw()
	close(t.ready)
	for {
		select {
		case <-ctx.Done():
			return <-camDone
		case err := <-camDone:
			return err
		case <-clockTick.C:
			t.draw()
		case ev := <-events:
			switch ev := ev.(type) {
			case *tcell.EventResize:
				t.drawMu.Lock()
				t.screen.Sync()
				t.drawMu.Unlock()
				t.draw()
			case *tcell.EventKey:
				if t.key(ev) {
					cancel()
					return <-camDone
				}
			}
		}
	}
}

// keyAction is what a key asks of a panel.
type keyAction int

const (
	keyNone keyAction = iota
	keyPress
	keyLong
	keyQuit
)

// readKey maps a key to a button action: the letter keys and Enter/Up/Down
// press buttons, upper case holds them long, q/Esc/Ctrl-C quit.
func readKey(ev *tcell.EventKey) (keyAction, device.Button) {
	switch ev.Key() {
	case tcell.KeyCtrlC, tcell.KeyEscape:
		return keyQuit, 0
	case tcell.KeyEnter:
		return keyPress, device.Select
	case tcell.KeyUp:
		return keyPress, device.VolUp
	case tcell.KeyDown:
		return keyPress, device.VolDown
	case tcell.KeyRune:
		r := ev.Rune()
		if r == 'q' || r == 'Q' {
			return keyQuit, 0
		}
		if kb, ok := keyButtons[unicode.ToLower(r)]; ok {
			if unicode.IsUpper(r) {
				return keyLong, kb
			}
			return keyPress, kb
		}
	}
	return keyNone, 0
}

// key handles one key and reports whether it asks to quit.
func (t *TUI) key(ev *tcell.EventKey) bool {
	action, b := readKey(ev)
	switch action {
	case keyQuit:
		return true
	case keyNone:
		return false
	}
	kind := device.Press
	if action == keyLong {
		kind = device.LongPress
	}
	t.mu.Lock()
	at := max(t.uptimeLocked(), t.last+time.Millisecond)
	edges, end := device.Synthesize(kind, b, at)
	// A long press is made of a hold longer than the threshold; move the
	// emulator's time forward by it so every later edge stays in order.
	if end > t.uptimeLocked() {
		t.skew += end - t.uptimeLocked()
	}
	t.last = end
	t.mu.Unlock()
	for _, e := range edges {
		select {
		case t.edges <- e:
		default: // the camera is far behind; drop rather than block the UI
		}
	}
	return false
}

// draw paints the camera body, LCD, buttons, clock and help line.
func (t *TUI) draw() {
	t.drawMu.Lock()
	defer t.drawMu.Unlock()
	t.mu.Lock()
	lcd := t.lcd
	t.mu.Unlock()
	s := t.screen
	s.Clear()
	w, h := s.Size()
	body := tcell.StyleDefault.Foreground(tcell.ColorSilver)
	lcdStyle := tcell.StyleDefault.Background(tcell.ColorDarkGreen).Foreground(tcell.ColorWhite)
	btn := tcell.StyleDefault.Reverse(true)

	const bw, bh = device.LCDWidth + 16, device.LCDHeight + 8
	// Centred with what is drawn under it: the clock line, the key help,
	// a blank line and the notes.
	x0, y0 := max((w-bw)/2, 0), max((h-bh-2-len(HelpLines)-len(t.Notes))/2, 0)
	box(s, x0, y0, bw, bh, body)
	title := " " + t.model.DisplayName() + " · " + t.serial + " "
	s.PutStrStyled(x0+max((bw-len([]rune(title)))/2, 1), y0, title, body)

	// Body 4 carries Vol+ / Select / Vol- on top (Select between the volume
	// keys) and Program / Power below; Body 3 and Workforce carry Power and
	// Program on top and the volume keys and Select below the screen.
	buttons := t.model.Buttons()
	top, bottom := buttons[:3], buttons[3:]
	if t.model != device.Body4 {
		top, bottom = buttons[:2], buttons[2:]
	}
	lcdY := y0 + 3
	t.buttonRow(x0, y0+1, bw, top, btn)
	t.buttonRow(x0, y0+bh-3, bw, bottom, btn)

	lx := x0 + (bw-device.LCDWidth-2)/2
	box(s, lx, lcdY, device.LCDWidth+2, device.LCDHeight+2, body)
	for i := 0; i < device.LCDHeight; i++ {
		line := strings.Repeat(" ", device.LCDWidth)
		if i < len(lcd.Lines) {
			line = lcd.Lines[i]
		}
		s.PutStrStyled(lx+1, lcdY+1+i, line, lcdStyle)
	}
	info := "camera clock " + t.clock.Now().UTC().Format("2006-01-02 15:04:05Z")
	if t.status != "" {
		info += "  " + t.status
	}
	if t.Link != nil {
		info += "  fleet: " + t.Link.Status()
	}
	s.PutStrStyled(max((w-len([]rune(info)))/2, 0), y0+bh, info, tcell.StyleDefault)
	for i, l := range HelpLines {
		s.PutStrStyled(max((w-len([]rune(l)))/2, 0), y0+bh+1+i, l, tcell.StyleDefault.Dim(true))
	}
	for i, l := range t.Notes {
		s.PutStrStyled(max((w-len([]rune(l)))/2, 0), y0+bh+2+len(HelpLines)+i, l, tcell.StyleDefault.Bold(true))
	}
	s.Show()
}

func (t *TUI) buttonRow(x0, y, bw int, buttons []device.Button, st tcell.Style) {
	labels := make([]string, len(buttons))
	for i, b := range buttons {
		labels[i] = fmt.Sprintf("[%s %c]", b.Label(), buttonKey(b))
	}
	row := strings.Join(labels, " ")
	t.screen.PutStrStyled(x0+max((bw-len([]rune(row)))/2, 1), y, row, st)
}

func box(s tcell.Screen, x, y, w, h int, st tcell.Style) {
	for i := 1; i < w-1; i++ {
		s.SetContent(x+i, y, tcell.RuneHLine, nil, st)
		s.SetContent(x+i, y+h-1, tcell.RuneHLine, nil, st)
	}
	for j := 1; j < h-1; j++ {
		s.SetContent(x, y+j, tcell.RuneVLine, nil, st)
		s.SetContent(x+w-1, y+j, tcell.RuneVLine, nil, st)
	}
	s.SetContent(x, y, tcell.RuneULCorner, nil, st)
	s.SetContent(x+w-1, y, tcell.RuneURCorner, nil, st)
	s.SetContent(x, y+h-1, tcell.RuneLLCorner, nil, st)
	s.SetContent(x+w-1, y+h-1, tcell.RuneLRCorner, nil, st)
}

// Text returns what the emulator shows as text, one line per row, when it
// draws on a tcell.SimulationScreen (tests and captures); "" otherwise. It
// reads between frames, never during one.
func (t *TUI) Text() string {
	t.drawMu.Lock()
	defer t.drawMu.Unlock()
	return screenText(t.screen)
}

// screenText is the text on a tcell.SimulationScreen, "" on a terminal.
func screenText(s tcell.Screen) string {
	sim, ok := s.(tcell.SimulationScreen)
	if !ok {
		return ""
	}
	cells, w, h := sim.GetContents()
	var b strings.Builder
	for y := 0; y < h; y++ {
		var line strings.Builder
		for x := 0; x < w; x++ {
			c := cells[y*w+x]
			if len(c.Bytes) == 0 {
				line.WriteByte(' ')
				continue
			}
			line.Write(c.Bytes)
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}
