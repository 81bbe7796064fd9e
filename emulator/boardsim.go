package emulator

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/hw"
)

// Hold times of the board simulator's key presses: the simulated board
// stamps the edges, as a real one would.
const (
	ShortHold = 80 * time.Millisecond
	LongHold  = device.LongPressThreshold + 200*time.Millisecond
)

// BoardSim is the terminal face of `camotp board-sim`: it shows what the
// host drew on the simulated board and turns keys into button edges the
// simulated board sends.
type BoardSim struct {
	screen tcell.Screen
	sim    *hw.Sim
	// Notes are lines drawn under the board (e.g. the port to open).
	Notes []string

	drawMu sync.Mutex
	ready  chan struct{}
}

// NewBoardSim returns the UI of sim on screen.
func NewBoardSim(screen tcell.Screen, sim *hw.Sim) *BoardSim {
	return &BoardSim{screen: screen, sim: sim, ready: make(chan struct{})}
}

// Ready is closed once the UI has drawn its first frame.
func (b *BoardSim) Ready() <-chan struct{} { return b.ready }

// Run shows the board until q, Esc or Ctrl-C, or ctx ends.
func (b *BoardSim) Run(ctx context.Context) error {
	if err := b.screen.Init(); err != nil {
		return fmt.Errorf("init terminal: %w", err)
	}
	defer b.screen.Fini()
	events := make(chan tcell.Event, 16)
	quit := make(chan struct{})
	go b.screen.ChannelEvents(events, quit)
	defer close(quit)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	b.draw()
	close(b.ready)
	for {
		_, changed := b.sim.Screen()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			b.draw()
		case <-tick.C:
			b.draw()
		case ev := <-events:
			switch ev := ev.(type) {
			case *tcell.EventResize:
				b.drawMu.Lock()
				b.screen.Sync()
				b.drawMu.Unlock()
				b.draw()
			case *tcell.EventKey:
				if b.key(ev) {
					return nil
				}
			}
		}
	}
}

func (b *BoardSim) key(ev *tcell.EventKey) bool {
	action, btn := readKey(ev)
	hold := ShortHold
	switch action {
	case keyQuit:
		return true
	case keyNone:
		return false
	case keyLong:
		hold = LongHold
	}
	// The board stamps the edges: the down edge now, the up edge after the
	// hold, so two quick key presses are a double-press as on hardware.
	go b.sim.Press(btn, hold)
	return false
}

func (b *BoardSim) draw() {
	b.drawMu.Lock()
	defer b.drawMu.Unlock()
	d, _ := b.sim.Screen()
	s := b.screen
	s.Clear()
	w, _ := s.Size()
	body := tcell.StyleDefault.Foreground(tcell.ColorSilver)
	lcd := tcell.StyleDefault.Background(tcell.ColorNavy).Foreground(tcell.ColorWhite)
	cols, rows := max(int(d.Cols), device.LCDWidth), max(int(d.Rows), device.LCDHeight)
	bw := max(cols+8, 48)
	x0 := max((w-bw)/2, 0)
	box(s, x0, 0, bw, rows+6, body)
	title := " camotp board (simulated) · " + b.sim.ID + " "
	s.PutStrStyled(x0+max((bw-len([]rune(title)))/2, 1), 0, title, body)
	lx := x0 + (bw-cols-2)/2
	box(s, lx, 1, cols+2, rows+2, body)
	lines := d.Lines()
	for i := range rows {
		line := strings.Repeat(" ", cols)
		if i < len(lines) {
			line = lines[i] + strings.Repeat(" ", cols-len(lines[i]))
		}
		if d.Rows == 0 && i == 0 {
			line = fmt.Sprintf("%-*s", cols, "waiting for host")
		}
		s.PutStrStyled(lx+1, 2+i, line, lcd)
	}
	led := map[byte]string{hw.LEDOff: "off", hw.LEDOn: "on", hw.LEDBlink: "blinking"}[b.sim.LED()]
	link := ""
	if b.sim.LinkLost() {
		link = " · host silent"
	}
	st := b.sim.Stats()
	s.PutStrStyled(x0+3, rows+4, fmt.Sprintf("LED %s%s · frames in %d · dropped %d", led, link, st.Frames, st.Dropped()), body)
	y := rows + 7
	for _, l := range append(append([]string{}, HelpLines...), b.Notes...) {
		s.PutStrStyled(max((w-len([]rune(l)))/2, 0), y, l, tcell.StyleDefault)
		y++
	}
	s.Show()
}

// Text returns what the UI shows, on a tcell.SimulationScreen; "" otherwise.
func (b *BoardSim) Text() string {
	b.drawMu.Lock()
	defer b.drawMu.Unlock()
	return screenText(b.screen)
}
