package hw

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
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
type rig struct {
	t     *testing.T
	ctx   context.Context
	link  string
	pty   *Pty
	sim   *Sim
	board *Board
	cam   *device.Camera
}

func (r *rig) plug(id string) {
	r.t.Helper()
	p, err := OpenPty()
	if err != nil {
		r.t.Fatal(err)
	}
	os.Remove(r.link)
	if err := os.Symlink(p.SlavePath, r.link); err != nil {
		r.t.Fatal(err)
	}
	r.pty, r.sim = p, NewSim(p.Master, id)
	go r.sim.Run(r.ctx)
	r.t.Cleanup(func() { p.Close() })
}

func newRig(t *testing.T, model device.Model) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, ctx: ctx, link: filepath.Join(t.TempDir(), "ttyCAMOTP")}
	r.plug("SIM-BOARD-1")
	board, err := Open(ctx, Config{Path: r.link, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r.board = board
	r.cam, err = device.New(device.Config{Serial: "HW-1", Model: model, Clock: device.FixedClock{T: rfcTime}, Seeds: device.TestSeed{S: rfcSeed}})
	if err != nil {
		t.Fatal(err)
	}
	camDone := make(chan error, 1)
	go func() { camDone <- r.cam.Run(ctx, board) }()
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

func (r *rig) press(b device.Button) {
	r.t.Helper()
	if err := r.sim.Press(b, 40*time.Millisecond); err != nil {
		r.t.Fatal(err)
	}
}

func TestSerialBoardGestures(t *testing.T) {
	for _, tc := range []struct {
		model device.Model
		open  func(r *rig)
	}{
		{device.Body4, func(r *rig) { // double-press Select
			r.press(device.Select)
			time.Sleep(60 * time.Millisecond)
			r.press(device.Select)
		}},
		{device.Body3, func(r *rig) { // long-press Program, timed by the board
			r.sim.Press(device.Program, device.LongPressThreshold+200*time.Millisecond)
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
	r.sim.Press(device.Program, device.LongPressThreshold+200*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
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
	deadline := time.Now().Add(3 * time.Second)
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
	r.press(device.Select)
	time.Sleep(60 * time.Millisecond)
	r.press(device.Select)
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
	r.press(device.Select)
	time.Sleep(60 * time.Millisecond)
	r.press(device.Select)
	r.wait("> Device Info", screenWait)
	r.press(device.VolDown)
	r.press(device.Select)
	r.wait("005924", screenWait)

	r.pty.Close()
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
	time.Sleep(2 * ReopenInterval) // reopen attempts on a missing port fail quietly

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
