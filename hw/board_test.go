package hw

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/testclock"
	"github.com/camotp/camotp/internal/testpanel"
)

// rfcSeed is the RFC 6238 Appendix B SHA1 key.
var rfcSeed = device.Seed{Secret: []byte("12345678901234567890"), Algorithm: "SHA1", Digits: 6, Period: 30}

// At 2009-02-13T23:31:30Z RFC 6238 gives 89005924 (8 digits) → 005924 (6).
var rfcTime = time.Date(2009, 2, 13, 23, 31, 30, 0, time.UTC)

func quiet() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// rig is a simulated board on a real pty, opened by the host through
// go.bug.st/serial at a stable symlink (as udev gives /dev/serial/by-id/...).
// The board and the host share a manual clock: the board stamps button
// edges with it and the host maps them onto it, so a gesture is what the
// test's clock moves say, however slowly a loaded machine delivers it.
// (The board's link watchdog runs on it too: keep clock moves between two
// host frames under LinkTimeout.)
type rig struct {
	t     *testing.T
	ctx   context.Context
	link  string
	clock *testclock.Manual
	ptys  []*Pty // closed at cleanup, after the host
	pty   *Pty   // the board plugged in now
	sim   *Sim
	board *Board
	panel *testpanel.Spy // the board as the camera sees it
	cam   *device.Camera
	logs  *logCount
	sent  int // button edges the boards sent
}

// plug connects a new board at the stable path.
func (r *rig) plug(id string) {
	r.t.Helper()
	p, err := OpenPty()
	if err != nil {
		r.t.Fatal(err)
	}
	r.ptys = append(r.ptys, p)
	if err := os.Symlink(p.SlavePath, r.link); err != nil {
		r.t.Fatal(err)
	}
	r.pty, r.sim = p, NewSimClock(p.Master, id, r.clock)
	go r.sim.Run(r.ctx)
}

// unplug takes the board away as USB does: its stable name goes first
// (udev removes the by-id link), then the device. The host's reopen
// attempts then find no port. (Closing the pty with the link left in
// place would leave the host reopening /dev/pts/N, a number the kernel
// hands to the next pty anyone opens: another test's board, whose bytes
// two hosts would then share.)
func (r *rig) unplug() {
	r.t.Helper()
	if err := os.Remove(r.link); err != nil {
		r.t.Fatal(err)
	}
	r.pty.Close()
}

func newRig(t *testing.T, model device.Model) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, ctx: ctx, link: filepath.Join(t.TempDir(), "ttyCAMOTP"), clock: testclock.NewManual(rfcTime),
		logs: &logCount{Handler: quiet().Handler(), counts: &logCounts{n: map[string]int{}}}}
	t.Cleanup(func() { // after the host below has closed its port
		for _, p := range r.ptys {
			p.Close()
		}
	})
	r.plug("SIM-BOARD-1")
	board, err := Open(ctx, Config{Path: r.link, Log: slog.New(r.logs), Clock: r.clock})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r.board, r.panel = board, testpanel.New(board)
	r.cam, err = device.New(device.Config{Serial: "HW-1", Model: model, Clock: device.FixedClock{T: rfcTime}, Seeds: device.TestSeed{S: rfcSeed}})
	if err != nil {
		t.Fatal(err)
	}
	camDone := make(chan error, 1)
	go func() { camDone <- r.cam.Run(ctx, r.panel) }()
	t.Cleanup(func() {
		cancel()
		if err := <-camDone; err != nil {
			t.Errorf("camera run: %v", err)
		}
		board.Close()
	})
	r.wait("READY", screenWait)
	return r
}

// logCount passes records on to Handler and counts them by message and
// error text (debug records included), for waiting on what the host did.
type logCount struct {
	slog.Handler
	counts *logCounts
}

type logCounts struct {
	mu sync.Mutex
	n  map[string]int // by "msg" and by "msg: err"
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }

func (l *logCount) Handle(ctx context.Context, rec slog.Record) error {
	l.counts.mu.Lock()
	l.counts.n[rec.Message]++
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			l.counts.n[rec.Message+": "+a.Value.String()]++
		}
		return true
	})
	l.counts.mu.Unlock()
	if !l.Handler.Enabled(ctx, rec.Level) {
		return nil
	}
	return l.Handler.Handle(ctx, rec)
}

func (l *logCount) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCount{Handler: l.Handler.WithAttrs(as), counts: l.counts}
}

func (l *logCount) WithGroup(name string) slog.Handler {
	return &logCount{Handler: l.Handler.WithGroup(name), counts: l.counts}
}

// count is how many records said msg (with an error containing errPart,
// when not empty).
func (l *logCount) count(msg, errPart string) int {
	l.counts.mu.Lock()
	defer l.counts.mu.Unlock()
	n := 0
	for k, c := range l.counts.n {
		if errPart == "" && k == msg || errPart != "" && strings.HasPrefix(k, msg+": ") && strings.Contains(k, errPart) {
			n += c
		}
	}
	return n
}

// screenWait bounds a wait for a screen: generous, because on a loaded CI
// machine a reopen and handshake can take seconds; a passing wait returns
// as soon as the screen shows.
const screenWait = 20 * time.Second

func (r *rig) wait(text string, timeout time.Duration) Draw {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	d, err := r.sim.WaitScreen(ctx, func(d Draw) bool {
		return slices.ContainsFunc(d.Lines(), func(l string) bool { return strings.Contains(l, text) })
	})
	if err != nil {
		r.t.Fatalf("waiting for %q: %v", text, err)
	}
	return d
}

// edge sends a button edge after the board's clock moved by after.
func (r *rig) edge(b device.Button, down bool, after time.Duration) {
	r.t.Helper()
	r.clock.Advance(after)
	if err := r.sim.Edge(b, down); err != nil {
		r.t.Fatal(err)
	}
	r.sent++
}

// hold presses b for hold on the board's clock.
func (r *rig) hold(b device.Button, hold time.Duration) {
	r.t.Helper()
	r.edge(b, true, 0)
	r.edge(b, false, hold)
}

// press is a short press of b.
func (r *rig) press(b device.Button) { r.t.Helper(); r.hold(b, 40*time.Millisecond) }

// double is a double-press of b: the down edges 100 ms apart.
func (r *rig) double(b device.Button) {
	r.t.Helper()
	r.press(b)
	r.clock.Advance(60 * time.Millisecond)
	r.press(b)
}

// handled waits until the camera has handled every edge the boards sent.
func (r *rig) handled() {
	r.t.Helper()
	if err := r.panel.WaitHandled(r.ctx, r.sent, screenWait); err != nil {
		r.t.Fatal(err)
	}
}

func TestSerialBoardGestures(t *testing.T) {
	for _, tc := range []struct {
		model device.Model
		open  func(r *rig)
	}{
		{device.Body4, func(r *rig) { r.double(device.Select) }},
		{device.Body3, func(r *rig) { // long-press Program, timed by the board
			r.hold(device.Program, device.LongPressThreshold+200*time.Millisecond)
		}},
	} {
		t.Run(string(tc.model), func(t *testing.T) {
			r := newRig(t, tc.model)
			tc.open(r)
			r.wait("> Device Info", screenWait)
			r.press(device.VolDown)
			r.wait("> Authenticator", screenWait)
			r.press(device.Select)
			d := r.wait("005924", screenWait)
			if !strings.HasPrefix(d.Lines()[0], "AUTHENTICATOR") {
				t.Errorf("screen:\n%s", joinLines(d.Lines()))
			}
			if r.sim.LED() != LEDBlink {
				t.Errorf("LED %d while a code shows, want blink", r.sim.LED())
			}
			st := r.board.Stats()
			if st.Dropped() != 0 || st.Unknown != 0 || !st.Connected || st.BoardID != "SIM-BOARD-1" {
				t.Errorf("link stats %+v", st)
			}
		})
	}
}

// TestSerialOtherModelGestureIgnored: the Body 3 gesture does not open a
// Body 4's menu, over the serial path as on the keyboard.
func TestSerialOtherModelGestureIgnored(t *testing.T) {
	r := newRig(t, device.Body4)
	r.hold(device.Program, device.LongPressThreshold+200*time.Millisecond)
	r.handled() // the camera has handled the press and shown what it does
	for _, s := range r.panel.Shown() {
		if s.ID != device.HomeScreen {
			t.Fatalf("Body 4 reacted to a long Program press:\n%s", s.Text())
		}
	}
	if d, _ := r.sim.Screen(); d.Lines()[5] != "READY" {
		t.Fatalf("Body 4 reacted to a long Program press:\n%s", joinLines(d.Lines()))
	}
}

// TestSerialGarbage: noise, truncated frames, bad CRCs and unknown versions
// are dropped and counted; the link keeps working.
func TestSerialGarbage(t *testing.T) {
	r := newRig(t, device.Body4)
	good, _ := ButtonEvent{Button: device.VolUp, Down: true, Millis: r.sim.Millis()}.Frame().Marshal()
	badCRC := slices.Clone(good)
	badCRC[3] ^= 0x40
	v2 := Frame{Type: TypeButton, Payload: make([]byte, 6)}
	v2wire, _ := v2.Marshal()
	// Re-encode with version 2 and a valid CRC.
	raw, _ := cobsDecode(v2wire[:len(v2wire)-1])
	raw[0] = 2
	sum := Checksum(raw[:len(raw)-2])
	raw[len(raw)-2], raw[len(raw)-1] = byte(sum>>8), byte(sum)
	v2wire = append(cobsEncode(raw), 0)
	unknownType, _ := Frame{Type: 0x55, Payload: []byte{1}}.Marshal()
	for _, junk := range [][]byte{
		[]byte("\x00\x00garbage line noise\r\n\x00"),
		good[:len(good)/2], // truncated: runs into the next frame's bytes
		[]byte{0},
		badCRC,
		v2wire,
		unknownType,
		append(slices.Repeat([]byte{7}, 3*MaxFrame), 0),
	} {
		if err := r.sim.Raw(junk); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(screenWait)
	for {
		st := r.board.Stats()
		if st.COBS+st.Short >= 1 && st.CRC >= 1 && st.Version == 1 && st.Oversize == 1 && st.Unknown == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Still a working link.
	r.double(device.Select)
	r.wait("> Device Info", screenWait)
	if !r.board.Stats().Connected {
		t.Fatal("link dropped by garbage")
	}
}

// TestSerialUnplugReplug: the board goes away (the pty is closed) and a new
// one appears at the same path; the host reopens it and redraws the
// camera's screen, which kept its state meanwhile.
func TestSerialUnplugReplug(t *testing.T) {
	r := newRig(t, device.Body4)
	r.double(device.Select)
	r.wait("> Device Info", screenWait)
	r.press(device.VolDown)
	r.clock.Advance(time.Second) // a separate press, not a double
	r.press(device.Select)
	r.wait("005924", screenWait)

	r.unplug()
	deadline := time.Now().Add(DeadAfter + screenWait)
	for r.board.Stats().Connected {
		if time.Now().After(deadline) {
			t.Fatal("unplug not noticed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := r.board.Status(); !strings.Contains(s, "disconnected") {
		t.Errorf("status %q", s)
	}
	// Reopen attempts on the missing port fail quietly, and count as no
	// reconnect.
	const notFound = "not found (is the board plugged in?)"
	for deadline := time.Now().Add(screenWait); r.logs.count("board reopen failed", notFound) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed reopen attempts logged", r.logs.count("board reopen failed", notFound))
		}
	}
	if st := r.board.Stats(); st.Connected || st.Reconnects != 0 {
		t.Fatalf("stats while unplugged %+v", st)
	}

	r.plug("SIM-BOARD-2")
	d := r.wait("005924", screenWait) // redrawn without a button press
	if !strings.HasPrefix(d.Lines()[0], "AUTHENTICATOR") {
		t.Fatalf("after replug:\n%s", joinLines(d.Lines()))
	}
	st := r.board.Stats()
	if !st.Connected || st.Reconnects != 1 || st.BoardID != "SIM-BOARD-2" {
		t.Fatalf("stats after replug %+v", st)
	}
	// Buttons work on the new board.
	r.clock.Advance(time.Second)
	r.press(device.Select)
	r.wait("> Authenticator", screenWait)
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Open(ctx, Config{Path: filepath.Join(dir, "ttyNONE"), Log: quiet()}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing port: %v", err)
	}
	// A pty with nothing on the other side: not a camotp board.
	p, err := OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	go io.Copy(io.Discard, p.Master)
	if _, err := Open(ctx, Config{Path: p.SlavePath, Log: quiet()}); err == nil || !strings.Contains(err.Error(), "no hello") {
		t.Errorf("silent device: %v", err)
	}
}

func TestParseUI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		path string
		baud int
		bad  bool
	}{
		{"/dev/ttyACM0", "/dev/ttyACM0", DefaultBaud, false},
		{"/dev/ttyUSB1?baud=9600", "/dev/ttyUSB1", 9600, false},
		{"", "", 0, true},
		{"/dev/x?baud=fast", "", 0, true},
		{"/dev/x?baud=10", "", 0, true},
		{"/dev/x?parity=odd", "", 0, true},
	} {
		path, baud, err := ParseUI(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && (path != tc.path || baud != tc.baud)) {
			t.Errorf("ParseUI(%q) = %q %d %v", tc.in, path, baud, err)
		}
	}
}

// BenchmarkEdgeToFrame measures a button edge leaving the board until the
// redrawn screen arrives back: pty, serial library, decoder, gesture
// detector, camera, encoder.
func BenchmarkEdgeToFrame(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := OpenPty()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	sim := NewSim(p.Master, "BENCH")
	go sim.Run(ctx)
	board, err := Open(ctx, Config{Path: p.SlavePath, Log: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer board.Close()
	cam, _ := device.New(device.Config{Serial: "B", Model: device.Body4, Clock: device.FixedClock{T: rfcTime}, Seeds: device.TestSeed{S: rfcSeed}})
	go cam.Run(ctx, board)
	wait := func(text string) {
		wctx, c := context.WithTimeout(ctx, 5*time.Second)
		defer c()
		if _, err := sim.WaitScreen(wctx, func(d Draw) bool { return strings.Contains(strings.Join(d.Lines(), "\n"), text) }); err != nil {
			b.Fatal(err)
		}
	}
	wait("READY")
	sim.Press(device.Select, 20*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	sim.Press(device.Select, 20*time.Millisecond)
	wait("> Device Info")
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		btn, want := device.VolDown, "> Authenticator"
		if i%2 == 1 {
			btn, want = device.VolUp, "> Device Info"
		}
		sim.Edge(btn, true)
		_, changed := sim.Screen()
		t0 := time.Now()
		sim.Edge(btn, false) // a short press acts on its release
		<-changed
		lat = append(lat, time.Since(t0))
		wait(want)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
