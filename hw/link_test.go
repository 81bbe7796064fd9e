package hw

import (
	"github.com/camotp/camotp/internal/testclock"

	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
)

// linkStep is one line of testdata/link.txt, the script the Go watchdog
// (linkWatch) and the firmware's camotp_link.c both run.
type linkStep struct {
	line          int
	op            string // rx or poll
	ms            uint32
	typ           byte
	state, action string
}

func readLinkScript(t *testing.T) []linkStep {
	t.Helper()
	f, err := os.Open("testdata/link.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []linkStep
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 5 {
			t.Fatalf("link.txt:%d: want OP MS TYPE STATE ACTION: %q", n, line)
		}
		ms, err := strconv.ParseUint(fields[1], 10, 32)
		if err != nil {
			t.Fatalf("link.txt:%d: %v", n, err)
		}
		st := linkStep{line: n, op: fields[0], ms: uint32(ms), state: fields[3], action: fields[4]}
		if st.op == "rx" {
			typ, err := strconv.ParseUint(fields[2], 16, 8)
			if err != nil {
				t.Fatalf("link.txt:%d: type: %v", n, err)
			}
			st.typ = byte(typ)
		}
		steps = append(steps, st)
	}
	return steps
}

// TestLinkScript runs the board simulator's link watchdog on the shared
// script (TestFirmwareLink runs the firmware's on the same file).
func TestLinkScript(t *testing.T) {
	steps := readLinkScript(t)
	if len(steps) < 20 {
		t.Fatalf("only %d steps", len(steps))
	}
	var l linkWatch
	for _, st := range steps {
		action := "-"
		switch st.op {
		case "rx":
			if l.rx(st.ms, st.typ) {
				action = "hello"
			}
		case "poll":
			if l.poll(st.ms) {
				action = "blank"
			}
		default:
			t.Fatalf("link.txt:%d: unknown step %q", st.line, st.op)
		}
		if l.state.String() != st.state || action != st.action {
			t.Errorf("link.txt:%d: %s %d: state %s, action %s; want %s %s", st.line, st.op, st.ms, l.state, action, st.state, st.action)
		}
	}
}

// compileC builds a host program from the firmware's C sources with the
// host's compiler, as strictly as the board build; it skips without one
// outside CI.
func compileC(t *testing.T, name string, srcs ...string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no C compiler (%s) in CI: .ci/run installs gcc", cc)
		}
		t.Skip("no C compiler (Debian package gcc); CI installs it")
	}
	bin := filepath.Join(t.TempDir(), name)
	args := append([]string{"-std=c99", "-Wall", "-Wextra", "-Werror", "-o", bin}, srcs...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("compile %s: %v\n%s", name, err, out)
	}
	return bin
}

// TestFirmwareLink compiles the firmware's link watchdog for this host and
// runs it on the shared script.
func TestFirmwareLink(t *testing.T) {
	bin := compileC(t, "link", "firmware/link_main.c", "firmware/camotp_board/src/camotp_link.c")
	out, err := exec.Command(bin, "testdata/link.txt").CombinedOutput()
	if err != nil {
		t.Fatalf("firmware link watchdog on the shared script: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// TestFirmwareLinkTimeout: the firmware's timeout is LinkTimeout.
func TestFirmwareLinkTimeout(t *testing.T) {
	h, err := os.ReadFile("firmware/camotp_board/src/camotp_link.h")
	if err != nil {
		t.Fatal(err)
	}
	want := "#define CAMOTP_LINK_TIMEOUT_MS " + strconv.Itoa(int(LinkTimeout/time.Millisecond)) + "u"
	if !bytes.Contains(h, []byte(want)) {
		t.Fatalf("camotp_link.h lacks %q", want)
	}
}

// fakeHost is the host end of a pty, speaking the protocol with the real
// codec: the test decides when the host talks and when it goes quiet.
type fakeHost struct {
	t      *testing.T
	port   *os.File
	frames chan Frame
}

func newFakeHost(t *testing.T, port *os.File) *fakeHost {
	h := &fakeHost{t: t, port: port, frames: make(chan Frame, 64)}
	go func() {
		var dec Decoder
		buf := make([]byte, 256)
		for {
			n, err := port.Read(buf)
			if err != nil {
				close(h.frames)
				return
			}
			for _, f := range dec.Feed(buf[:n]) {
				h.frames <- f
			}
		}
	}()
	return h
}

func (h *fakeHost) send(f Frame) {
	h.t.Helper()
	w, err := f.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.port.Write(w); err != nil {
		h.t.Fatal(err)
	}
}

// expect waits for the next frame of type typ from the board, skipping
// others.
func (h *fakeHost) expect(typ byte) Frame {
	h.t.Helper()
	deadline := time.After(screenWait)
	for {
		select {
		case f, ok := <-h.frames:
			if !ok {
				h.t.Fatal("board port closed")
			}
			if f.Type == typ {
				return f
			}
		case <-deadline:
			h.t.Fatalf("no frame of type %#x from the board", typ)
		}
	}
}

// shows waits until the board's display contains text.
func shows(t *testing.T, sim *Sim, text string) Draw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), screenWait)
	defer cancel()
	d, err := sim.WaitScreen(ctx, func(d Draw) bool {
		return slices.ContainsFunc(d.Lines(), func(l string) bool { return strings.Contains(l, text) })
	})
	if err != nil {
		t.Fatalf("waiting for %q: %v", text, err)
	}
	return d
}

// TestSimLinkLost: the simulated board on a pty blanks a code LinkTimeout
// after the host's last frame (by the board's clock, moved by hand: no
// timing assumption), never before; when the host talks again it asks for
// the screen with a Hello and keeps "Link lost" until the host draws.
func TestSimLinkLost(t *testing.T) {
	p, err := OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	clock := testclock.NewManual(rfcTime)
	sim := NewSimClock(p.Master, "LINK-1", clock)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sim.Run(ctx)
	host := newFakeHost(t, p.Slave)
	host.expect(TypeHello) // at boot

	// No host frame yet: no timeout, however long.
	clock.Advance(time.Hour)
	sim.checkLink()
	if sim.LinkLost() {
		t.Fatal("link lost before the host ever spoke")
	}

	code := device.Screen{Lines: []string{"AUTHENTICATOR", "Verification code", "       005924", "Expires in 20s"}, Code: "005924"}
	host.send(LED{State: LEDBlink}.Frame())
	host.send(DrawScreen(code, 6, 20).Frame())
	shows(t, sim, "005924")
	if sim.LED() != LEDBlink {
		t.Fatalf("LED %d", sim.LED())
	}

	// The host goes quiet. Just before the timeout the code is still there.
	clock.Advance(LinkTimeout - time.Millisecond)
	sim.checkLink()
	if d, _ := sim.Screen(); sim.LinkLost() || !strings.Contains(d.Lines()[2], "005924") {
		t.Fatalf("blanked early:\n%s", joinLines(d.Lines()))
	}
	// At the timeout the board's own watch (its Run loop) blanks it.
	clock.Advance(time.Millisecond)
	d := shows(t, sim, LinkLostText)
	if strings.Contains(strings.Join(d.Lines(), "\n"), "005924") || !sim.LinkLost() || sim.LED() != LEDOff {
		t.Fatalf("after the timeout: LED %d, screen:\n%s", sim.LED(), joinLines(d.Lines()))
	}

	// The host talks again (a heartbeat): the board asks for the screen and
	// shows nothing stale meanwhile.
	clock.Advance(time.Minute)
	host.send(Ping{Nonce: 9}.Frame())
	host.expect(TypeHello)
	if pong, err := ParsePong(host.expect(TypePong).Payload); err != nil || pong.Nonce != 9 {
		t.Fatalf("pong %+v %v", pong, err)
	}
	if d, _ := sim.Screen(); !sim.LinkLost() || !strings.Contains(strings.Join(d.Lines(), "\n"), LinkLostText) {
		t.Fatalf("before the redraw:\n%s", joinLines(d.Lines()))
	}
	fresh := device.Screen{Lines: []string{"AUTHENTICATOR", "Verification code", "       287082", "Expires in 29s"}, Code: "287082"}
	host.send(LED{State: LEDBlink}.Frame())
	host.send(DrawScreen(fresh, 6, 20).Frame())
	shows(t, sim, "287082")
	if sim.LinkLost() || sim.LED() != LEDBlink {
		t.Fatalf("after the redraw: lost %v, LED %d", sim.LinkLost(), sim.LED())
	}
	// Heartbeats keep it up: each one restarts the timeout.
	for range 5 {
		clock.Advance(HeartbeatInterval)
		host.send(Ping{Nonce: 10}.Frame())
		host.expect(TypePong)
		sim.checkLink()
	}
	if sim.LinkLost() {
		t.Fatal("link lost with heartbeats every second")
	}
}

// TestSerialRedrawOnHello: a Hello the host did not ask for (a board that
// blanked its screen after a loss, or restarted) makes the host redraw.
func TestSerialRedrawOnHello(t *testing.T) {
	r := newRig(t, device.Body4)
	// The board blanks its screen (as after a loss) and says Hello: only a
	// redraw brings the camera's screen back, which did not change.
	r.sim.mu.Lock()
	r.sim.blanked = true
	r.sim.show(linkLostDraw(r.sim.Rows, r.sim.Cols))
	r.sim.mu.Unlock()
	if err := r.sim.Send(r.sim.hello()); err != nil {
		t.Fatal(err)
	}
	r.wait("READY", screenWait)
	if r.sim.LinkLost() {
		t.Fatal("still blank after the redraw")
	}
}
