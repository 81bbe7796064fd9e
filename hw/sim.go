package hw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/camotp/camotp/device"
)

// Sim is a board simulator: the board side of the protocol on any byte
// stream (the master of a pty for `camotp board-sim` and the tests). Its
// clock is milliseconds since it started, like a microcontroller's. Like
// the reference firmware, it blanks its screen to LinkLostText when the
// host sends nothing for LinkTimeout, and asks for a redraw when the host
// is back.
type Sim struct {
	ID         string
	Rows, Cols int

	rw    io.ReadWriter
	clock device.Clock
	start time.Time

	writeMu sync.Mutex
	mu      sync.Mutex
	draw    Draw // what the display shows
	led     byte
	link    linkWatch
	blanked bool // the display shows LinkLostText
	stats   Stats
	unknown uint64
	changed chan struct{} // closed and replaced at every change of the display
}

// NewSim returns a simulated board with a 6×20 display on rw, on the
// system clock.
func NewSim(rw io.ReadWriter, id string) *Sim { return NewSimClock(rw, id, device.SystemClock{}) }

// NewSimClock returns a simulated board whose millisecond counter (button
// and Pong stamps, the link timeout) runs on clock.
func NewSimClock(rw io.ReadWriter, id string, clock device.Clock) *Sim {
	return &Sim{ID: id, Rows: device.LCDHeight, Cols: device.LCDWidth, rw: rw, clock: clock, start: clock.Now(),
		changed: make(chan struct{})}
}

// Millis is the board clock.
func (s *Sim) Millis() uint32 { return uint32(s.clock.Now().Sub(s.start) / time.Millisecond) }

// Send writes one frame to the host.
func (s *Sim) Send(f Frame) error {
	data, err := f.Marshal()
	if err != nil {
		return err
	}
	return s.Raw(data)
}

// Raw writes bytes to the host as they are (tests send garbage with it).
func (s *Sim) Raw(data []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, err := s.rw.Write(data)
	return err
}

// Edge sends a button edge stamped now.
func (s *Sim) Edge(b device.Button, down bool) error {
	return s.Send(ButtonEvent{Button: b, Down: down, Millis: s.Millis()}.Frame())
}

// Press holds b for hold, then releases it.
func (s *Sim) Press(b device.Button, hold time.Duration) error {
	if err := s.Edge(b, true); err != nil {
		return err
	}
	time.Sleep(hold)
	return s.Edge(b, false)
}

func (s *Sim) hello() Frame {
	return Hello{Protocol: ProtocolVersion, Cols: byte(s.Cols), Rows: byte(s.Rows), Buttons: 5, BoardID: s.ID}.Frame()
}

// Run answers the host until ctx ends or the stream fails: Hello at start
// and on request, Pong for Ping; it keeps the last Draw and LED state. It
// checks the link every LinkCheckInterval meanwhile.
func (s *Sim) Run(ctx context.Context) error {
	if err := s.Send(s.hello()); err != nil {
		return fmt.Errorf("board sim: send hello: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.watch(ctx)
	var dec Decoder
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		n, err := s.rw.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		frames := dec.Feed(buf[:n])
		s.mu.Lock()
		s.stats = dec.Stats()
		s.mu.Unlock()
		for _, f := range frames {
			s.mu.Lock()
			hello := s.link.rx(s.Millis(), f.Type)
			s.mu.Unlock()
			if hello { // back after a loss: ask the host for the screen
				if err := s.Send(s.hello()); err != nil {
					return fmt.Errorf("board sim: send hello: %w", err)
				}
			}
			if err := s.handle(f); err != nil {
				return fmt.Errorf("board sim: answer frame %#x: %w", f.Type, err)
			}
		}
	}
	return nil
}

// watch checks the link until ctx ends.
func (s *Sim) watch(ctx context.Context) {
	t := time.NewTicker(LinkCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkLink()
		}
	}
}

// checkLink blanks the display and the LED once the host has been silent
// for LinkTimeout.
func (s *Sim) checkLink() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link.poll(s.Millis()) {
		s.led, s.blanked = LEDOff, true
		s.show(linkLostDraw(s.Rows, s.Cols))
	}
}

// show puts d on the display; s.mu is held.
func (s *Sim) show(d Draw) {
	s.draw = d
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sim) handle(f Frame) error {
	switch f.Type {
	case TypeHelloReq:
		return s.Send(s.hello())
	case TypePing:
		p, err := ParsePing(f.Payload)
		if err == nil {
			return s.Send(Pong{Nonce: p.Nonce, Millis: s.Millis()}.Frame())
		}
	case TypeDraw:
		d, err := ParseDraw(f.Payload)
		if err == nil {
			s.mu.Lock()
			s.blanked = false
			s.show(d)
			s.mu.Unlock()
			return nil
		}
	case TypeLED:
		l, err := ParseLED(f.Payload)
		if err == nil {
			s.mu.Lock()
			s.led = l.State
			s.mu.Unlock()
			return nil
		}
	}
	s.mu.Lock()
	s.unknown++
	s.mu.Unlock()
	return nil
}

// Screen returns what the display shows (the host's last Draw, or the
// LinkLostText screen) and a channel closed at its next change.
func (s *Sim) Screen() (Draw, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draw, s.changed
}

// LinkLost reports whether the display shows LinkLostText: the host went
// silent for LinkTimeout and has not drawn since.
func (s *Sim) LinkLost() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blanked
}

// LED is the LED state: the one the host set last, or off while the link
// is lost.
func (s *Sim) LED() byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.led
}

// Stats returns what the simulated board's decoder counted.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// WaitScreen waits until the drawn screen satisfies ok.
func (s *Sim) WaitScreen(ctx context.Context, ok func(Draw) bool) (Draw, error) {
	for {
		d, changed := s.Screen()
		if d.Rows > 0 && ok(d) {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("screen never matched; last:\n%s", joinLines(d.Lines()))
		case <-changed:
		}
	}
}

func joinLines(lines []string) string {
	out := ""
	for _, l := range lines {
		out += "| " + l + "\n"
	}
	return out
}

// Pty is a pseudo-terminal pair standing in for a USB serial cable: the
// board simulator holds Master; the host opens SlavePath like /dev/ttyACM0.
type Pty struct {
	Master, Slave *os.File
	SlavePath     string
}

// OpenPty creates a pty pair with the slave in raw mode (no echo, no line
// editing), as a USB CDC serial port behaves.
func OpenPty() (*Pty, error) {
	m, sl, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	if _, err := term.MakeRaw(int(sl.Fd())); err != nil {
		m.Close()
		sl.Close()
		return nil, fmt.Errorf("pty raw mode: %w", err)
	}
	return &Pty{Master: m, Slave: sl, SlavePath: sl.Name()}, nil
}

// Close closes both ends: to the host, the board was unplugged.
func (p *Pty) Close() error {
	return errors.Join(p.Master.Close(), p.Slave.Close())
}
