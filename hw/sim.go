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
// clock is milliseconds since it started, like a microcontroller's.
type Sim struct {
	ID         string
	Rows, Cols int

	rw    io.ReadWriter
	start time.Time

	writeMu sync.Mutex
	mu      sync.Mutex
	draw    Draw
	led     byte
	stats   Stats
	unknown uint64
	changed chan struct{} // closed and replaced at every draw
}

// NewSim returns a simulated board with a 6×20 display on rw.
func NewSim(rw io.ReadWriter, id string) *Sim {
	return &Sim{ID: id, Rows: device.LCDHeight, Cols: device.LCDWidth, rw: rw, start: time.Now(), changed: make(chan struct{})}
}

// Millis is the board clock.
func (s *Sim) Millis() uint32 { return uint32(time.Since(s.start) / time.Millisecond) }

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
// and on request, Pong for Ping; it keeps the last Draw and LED state.
func (s *Sim) Run(ctx context.Context) error {
	if err := s.Send(s.hello()); err != nil {
		return err
	}
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
			if err := s.handle(f); err != nil {
				return err
			}
		}
	}
	return nil
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
			s.draw = d
			close(s.changed)
			s.changed = make(chan struct{})
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

// Screen returns the last drawn screen and a channel closed at the next draw.
func (s *Sim) Screen() (Draw, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draw, s.changed
}

// LED is the LED state the host set last.
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
