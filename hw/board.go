package hw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/camotp/camotp/device"
)

// DefaultBaud is the serial speed when the --ui value names none.
const DefaultBaud = 115200

// Link timing.
const (
	// HandshakeTimeout bounds the wait for Hello and the first Pong after
	// the port opens.
	HandshakeTimeout = 2 * time.Second
	// HeartbeatInterval is how often the host pings the board.
	HeartbeatInterval = time.Second
	// DeadAfter is how long a silent board is trusted before the link is
	// closed and reopened.
	DeadAfter = 3 * HeartbeatInterval
	// ReopenInterval is the pause between attempts to reopen a lost port.
	ReopenInterval = 500 * time.Millisecond
	// readTimeout is the serial read timeout of the reader loop.
	readTimeout = 50 * time.Millisecond
)

// Port is an open serial port (go.bug.st/serial.Port satisfies it).
type Port interface {
	io.ReadWriteCloser
	SetReadTimeout(time.Duration) error
}

// OpenFunc opens the port at path.
type OpenFunc func(path string, baud int) (Port, error)

// OpenSerial opens a serial device with go.bug.st/serial, 8N1.
func OpenSerial(path string, baud int) (Port, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("serial port %s: not found (is the board plugged in?)", path)
	}
	if err != nil {
		var pe *serial.PortError
		if errors.As(err, &pe) {
			switch pe.Code() {
			case serial.PortNotFound:
				return nil, fmt.Errorf("serial port %s: not found (is the board plugged in?)", path)
			case serial.PortBusy:
				return nil, fmt.Errorf("serial port %s: busy (another program has it open)", path)
			case serial.PermissionDenied:
				return nil, fmt.Errorf("serial port %s: permission denied (add yourself to the dialout group)", path)
			}
		}
		return nil, fmt.Errorf("serial port %s: %w", path, err)
	}
	return p, nil
}

// ParseUI parses the PATH[?baud=N] of a --ui serial:PATH[?baud=N] value.
func ParseUI(v string) (path string, baud int, err error) {
	path, query, _ := strings.Cut(v, "?")
	if path == "" {
		return "", 0, errors.New("serial: want serial:PATH[?baud=N], e.g. serial:/dev/ttyACM0")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", 0, fmt.Errorf("serial options %q: %w", query, err)
	}
	baud = DefaultBaud
	for k := range q {
		if k != "baud" {
			return "", 0, fmt.Errorf("serial: unknown option %q (want baud)", k)
		}
	}
	if b := q.Get("baud"); b != "" {
		if baud, err = strconv.Atoi(b); err != nil || baud < 300 || baud > 4_000_000 {
			return "", 0, fmt.Errorf("serial: baud %q: want a number from 300 to 4000000", b)
		}
	}
	return path, baud, nil
}

// Config sets up a Board.
type Config struct {
	Path string
	Baud int
	// Open opens the port (OpenSerial when nil).
	Open OpenFunc
	Log  *slog.Logger
	// Clock is the host's clock for the panel time that board timestamps
	// are mapped onto and that Uptime runs on (device.SystemClock when
	// nil). A test gives the host the manual clock of its simulated board.
	// Link timing (heartbeat, DeadAfter, reopening) is on real time.
	Clock device.Clock
}

// LinkStats counts what went over the link.
type LinkStats struct {
	Stats              // frames received, dropped by cause
	Unknown     uint64 // well-formed frames of an unknown type or with a bad payload
	Reconnects  uint64 // times the link was reopened after a loss
	FramesSent  uint64
	BoardID     string
	Connected   bool
	LastProblem string
}

// Board is a serial-attached board used as a camera's panel. It implements
// device.Panel: Show draws on the board, Edges delivers the board's button
// edges stamped with the board's own clock, Uptime reads that clock.
//
// When the board is unplugged the camera keeps running: Show remembers the
// screen, the port is reopened every ReopenInterval, and the screen is
// redrawn once the board is back.
type Board struct {
	cfg   Config
	log   *slog.Logger
	edges chan device.Edge

	writeMu sync.Mutex
	port    Port // nil while disconnected

	mu      sync.Mutex
	screen  *device.Screen // last shown
	hello   Hello          // of the current or last link
	stats   LinkStats
	clk     boardClock
	lastRx  time.Time
	nonce   uint32
	pongs   chan Pong
	helloCh chan Hello // a Hello during a handshake
	redraw  chan Hello // a Hello on a live link: the board lost its screen

	cancel context.CancelFunc
	done   chan struct{}
}

// boardClock maps the board's wrapping millisecond counter to the panel's
// monotonic time, across wraps and board restarts.
type boardClock struct {
	offset   time.Duration // panel time of board millisecond 0 (this connection)
	lastMs   uint32
	wraps    int64
	lastEdge time.Duration // panel time of the latest board timestamp mapped
	last     time.Duration // latest panel time handed out (Uptime and edges)
	lastAt   time.Time     // host time of last
	started  bool
}

// sync starts a connection: board millisecond m maps to the panel time
// reached so far, so panel time never goes back when a board restarts.
func (c *boardClock) sync(m uint32, now time.Time) {
	c.offset = c.uptime(now) - time.Duration(m)*time.Millisecond
	c.lastMs, c.wraps, c.started = m, 0, true
}

// at returns the panel time of board millisecond m, read by the host at
// now. It is the board's own time (never earlier than the board's previous
// timestamp), not the host's estimate of the time: edges keep the spacing
// the board measured however late the host reads them, so host scheduling
// and USB jitter do not change what a gesture is (an edge read late would
// otherwise take the estimate, which ran on meanwhile, and two presses
// 150 ms apart on the board could arrive 600 ms apart: no double-press).
// Panel time moves on to t when the board is ahead of the estimate.
func (c *boardClock) at(m uint32, now time.Time) time.Duration {
	if m < c.lastMs && c.lastMs-m > 1<<31 {
		c.wraps++
	}
	c.lastMs = m
	t := max(c.offset+time.Duration(c.wraps<<32+int64(m))*time.Millisecond, c.lastEdge)
	c.lastEdge = t
	c.last = max(c.uptime(now), t)
	return t
}

// uptime estimates the panel time now from the last board timestamp.
func (c *boardClock) uptime(now time.Time) time.Duration {
	if !c.lastAt.IsZero() && now.After(c.lastAt) {
		c.last += now.Sub(c.lastAt)
	}
	c.lastAt = now
	return c.last
}

// link is one open, handshaken port and its reader.
type link struct {
	port  Port
	hello Hello
	stop  chan struct{}
	done  chan error // the reader's end
}

func (l *link) close() {
	close(l.stop)
	l.port.Close()
	<-l.done
}

// Open opens the board's port and shakes hands with it. The first open
// must succeed: a missing or busy port, or a device that does not answer
// as a camotp board, is an error that says so. The link then runs, and
// reopens after losses, until ctx ends or Close.
func Open(ctx context.Context, cfg Config) (*Board, error) {
	if cfg.Open == nil {
		cfg.Open = OpenSerial
	}
	if cfg.Baud == 0 {
		cfg.Baud = DefaultBaud
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = device.SystemClock{}
	}
	b := &Board{cfg: cfg, log: cfg.Log, edges: make(chan device.Edge, 64),
		pongs: make(chan Pong, 4), helloCh: make(chan Hello, 1), redraw: make(chan Hello, 1), done: make(chan struct{})}
	l, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	ctx, b.cancel = context.WithCancel(ctx)
	go b.run(ctx, l)
	return b, nil
}

// Close stops the link and closes the port.
func (b *Board) Close() error {
	b.cancel()
	<-b.done
	close(b.edges)
	return nil
}

// dial opens the port and runs the handshake: HelloReq → Hello, then
// Ping → Pong, which syncs the board clock.
func (b *Board) dial(ctx context.Context) (*link, error) {
	port, err := b.cfg.Open(b.cfg.Path, b.cfg.Baud)
	if err != nil {
		return nil, err
	}
	if err := port.SetReadTimeout(readTimeout); err != nil {
		port.Close()
		return nil, fmt.Errorf("serial port %s: set read timeout: %w", b.cfg.Path, err)
	}
	l := &link{port: port, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() { l.done <- b.read(port, l.stop) }()
	if err := b.handshake(ctx, l); err != nil {
		l.close()
		return nil, fmt.Errorf("board on %s: %w", b.cfg.Path, err)
	}
	return l, nil
}

func (b *Board) handshake(ctx context.Context, l *link) error {
	ctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	// Drain answers left from an earlier connection.
	for len(b.helloCh) > 0 {
		<-b.helloCh
	}
	if err := b.send(l.port, Frame{Type: TypeHelloReq}); err != nil {
		return fmt.Errorf("send hello request: %w", err)
	}
	select {
	case l.hello = <-b.helloCh:
	case <-ctx.Done():
		return errors.New("no hello from the board (wrong port or baud, or not a camotp board?)")
	}
	if l.hello.Protocol != ProtocolVersion {
		return fmt.Errorf("board speaks protocol %d; this camotp speaks %d", l.hello.Protocol, ProtocolVersion)
	}
	if l.hello.Rows < 1 || l.hello.Cols < 1 {
		return fmt.Errorf("board reports a %dx%d display", l.hello.Cols, l.hello.Rows)
	}
	b.mu.Lock()
	b.nonce++
	nonce := b.nonce
	b.mu.Unlock()
	if err := b.send(l.port, Ping{Nonce: nonce}.Frame()); err != nil {
		return fmt.Errorf("send ping: %w", err)
	}
	for {
		select {
		case p := <-b.pongs:
			if p.Nonce != nonce {
				continue
			}
			b.mu.Lock()
			b.clk.sync(p.Millis, b.cfg.Clock.Now())
			b.mu.Unlock()
			return nil
		case <-ctx.Done():
			return errors.New("the board did not answer ping")
		}
	}
}

// run supervises the link: heartbeats, loss detection and reopening.
func (b *Board) run(ctx context.Context, l *link) {
	defer close(b.done)
	for {
		b.attach(l)
		err := b.serve(ctx, l)
		b.detach(l, err)
		if ctx.Err() != nil {
			return
		}
		for l = nil; l == nil; {
			select {
			case <-ctx.Done():
				return
			case <-time.After(ReopenInterval):
			}
			var err error
			if l, err = b.dial(ctx); err != nil {
				b.log.Debug("board reopen failed", "port", b.cfg.Path, "err", err)
			}
		}
		b.mu.Lock()
		b.stats.Reconnects++
		b.mu.Unlock()
	}
}

// attach makes l the board's link and redraws the screen on it.
func (b *Board) attach(l *link) {
	b.writeMu.Lock()
	b.port = l.port
	b.writeMu.Unlock()
	b.mu.Lock()
	b.hello = l.hello
	b.stats.BoardID, b.stats.Connected, b.stats.LastProblem = l.hello.BoardID, true, ""
	b.lastRx = time.Now()
	screen := b.screen // a Show from now on draws by itself
	b.mu.Unlock()
	b.log.Info("board connected", "port", b.cfg.Path, "board", l.hello.BoardID,
		"display", fmt.Sprintf("%dx%d", l.hello.Cols, l.hello.Rows))
	if screen != nil {
		b.Show(*screen)
	}
}

func (b *Board) detach(l *link, err error) {
	b.writeMu.Lock()
	b.port = nil
	b.writeMu.Unlock()
	l.close()
	if err == nil {
		return
	}
	b.mu.Lock()
	b.stats.Connected, b.stats.LastProblem = false, err.Error()
	b.mu.Unlock()
	b.log.Warn("board link lost; reopening", "port", b.cfg.Path, "err", err)
}

// serve pings the board until the reader fails, the board goes silent, or
// ctx ends (nil).
func (b *Board) serve(ctx context.Context, l *link) error {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-l.done:
			l.done <- err // for l.close
			if err == nil {
				err = errors.New("reader stopped")
			}
			return err
		case h := <-b.redraw:
			b.redrawAfterHello(h)
		case <-t.C:
			b.mu.Lock()
			silent := time.Since(b.lastRx)
			b.nonce++
			nonce := b.nonce
			b.mu.Unlock()
			if silent > DeadAfter {
				return fmt.Errorf("board silent for %s", silent.Round(time.Millisecond))
			}
			if err := b.write(Ping{Nonce: nonce}.Frame()); err != nil {
				return err
			}
		}
	}
}

// redrawAfterHello answers a Hello the host did not ask for: the board
// restarted, or blanked its screen after a link loss ("Link lost"), and
// needs the screen again.
func (b *Board) redrawAfterHello(h Hello) {
	if h.Protocol != ProtocolVersion || h.Rows < 1 || h.Cols < 1 {
		b.log.Warn("board sent an unusable hello; not redrawing", "port", b.cfg.Path, "protocol", h.Protocol,
			"display", fmt.Sprintf("%dx%d", h.Cols, h.Rows))
		return
	}
	b.mu.Lock()
	b.hello, b.stats.BoardID = h, h.BoardID
	screen := b.screen
	b.mu.Unlock()
	b.log.Info("board asked for the screen; redrawing", "port", b.cfg.Path, "board", h.BoardID)
	if screen != nil {
		b.Show(*screen)
	}
}

// read decodes frames from port until stop closes or the port fails.
func (b *Board) read(port Port, stop <-chan struct{}) error {
	var dec Decoder
	var prev Stats
	buf := make([]byte, 256)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		n, err := port.Read(buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			continue // read timeout
		}
		rx, now := time.Now(), b.cfg.Clock.Now()
		frames := dec.Feed(buf[:n])
		b.mu.Lock()
		st := dec.Stats()
		b.stats.Stats = addStats(b.stats.Stats, st, prev)
		prev = st
		if len(frames) > 0 {
			b.lastRx = rx
		}
		b.mu.Unlock()
		for _, f := range frames {
			b.handle(f, now)
		}
	}
}

func addStats(total, cur, prev Stats) Stats {
	total.Frames += cur.Frames - prev.Frames
	total.Short += cur.Short - prev.Short
	total.CRC += cur.CRC - prev.CRC
	total.Version += cur.Version - prev.Version
	total.Oversize += cur.Oversize - prev.Oversize
	total.COBS += cur.COBS - prev.COBS
	return total
}

// handle acts on one good frame from the board, read at now on the
// host's clock.
func (b *Board) handle(f Frame, now time.Time) {
	var err error
	switch f.Type {
	case TypeHello:
		var h Hello
		if h, err = ParseHello(f.Payload); err == nil {
			b.writeMu.Lock()
			live := b.port != nil // attached: the handshake is over
			b.writeMu.Unlock()
			ch := b.helloCh
			if live {
				ch = b.redraw
			}
			select {
			case ch <- h:
			default:
			}
		}
	case TypePong:
		var p Pong
		if p, err = ParsePong(f.Payload); err == nil {
			select {
			case b.pongs <- p:
			default:
			}
		}
	case TypeButton:
		var e ButtonEvent
		if e, err = ParseButton(f.Payload); err == nil {
			b.mu.Lock()
			synced := b.clk.started
			var at time.Duration
			if synced {
				at = b.clk.at(e.Millis, now)
			}
			b.mu.Unlock()
			if !synced {
				return // before the handshake synced the clock
			}
			select {
			case b.edges <- device.Edge{Button: e.Button, Down: e.Down, At: at}:
			default:
				b.log.Warn("board button edge dropped: camera not reading")
			}
		}
	default:
		err = errors.New("unknown frame type")
	}
	if err != nil {
		b.mu.Lock()
		b.stats.Unknown++
		b.mu.Unlock()
		b.log.Debug("board frame dropped", "type", fmt.Sprintf("%#x", f.Type), "err", err)
	}
}

func (b *Board) send(port Port, f Frame) error {
	data, err := f.Marshal()
	if err != nil {
		return err
	}
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	if _, err := port.Write(data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	b.mu.Lock()
	b.stats.FramesSent++
	b.mu.Unlock()
	return nil
}

// write sends f on the current link; it fails when there is none.
func (b *Board) write(f Frame) error {
	b.writeMu.Lock()
	port := b.port
	b.writeMu.Unlock()
	if port == nil {
		return errors.New("board not connected")
	}
	return b.send(port, f)
}

// Show draws s on the board. While the board is away it only remembers s:
// the camera keeps running and the board gets the screen when it is back.
func (b *Board) Show(s device.Screen) error {
	b.mu.Lock()
	b.screen = &s
	rows, cols := int(b.hello.Rows), int(b.hello.Cols)
	b.mu.Unlock()
	if rows == 0 {
		return nil
	}
	led := LEDOn
	if s.Code != "" {
		led = LEDBlink // a code is on screen
	}
	// LED first: once the board has the new screen it has the LED state too.
	if err := b.write(LED{State: led}.Frame()); err != nil {
		return nil // the supervisor notices the loss and reopens
	}
	b.write(DrawScreen(s, rows, cols).Frame())
	return nil
}

// Edges delivers the board's button edges, stamped with its clock.
func (b *Board) Edges() <-chan device.Edge { return b.edges }

// Uptime is the panel time now, in the board clock's time base.
func (b *Board) Uptime() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clk.uptime(b.cfg.Clock.Now())
}

// Stats returns the link counters.
func (b *Board) Stats() LinkStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Status describes the link for people ("connected to BOARD-ID", ...).
func (b *Board) Status() string {
	st := b.Stats()
	if st.Connected {
		return "board " + st.BoardID + " connected"
	}
	return "board disconnected: " + st.LastProblem
}
