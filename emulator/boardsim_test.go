package emulator

import (
	"github.com/camotp/camotp/internal/testclock"
	"github.com/camotp/camotp/internal/testpanel"

	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/hw"
)

// simRig is board-sim's UI on a simulation screen over a simulated board
// on a pty, the board's clock a manual one the test moves. A host on the
// pty is given the same clock (hw.Config.Clock), as a real board's and
// host's clocks run together: gestures are then what the test's clock
// moves say, however slowly a loaded machine delivers them.
type simRig struct {
	p      *hw.Pty
	clock  *testclock.Manual
	sim    *hw.Sim
	screen tcell.SimulationScreen
	ui     *BoardSim
	uiDone chan error // the UI's result
}

// startBoardSim starts a simRig for board id that runs until ctx ends; the
// pty is closed at cleanup.
func startBoardSim(t *testing.T, ctx context.Context, id string) simRig {
	t.Helper()
	p, err := hw.OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	r := simRig{p: p, clock: testclock.NewManual(time.Unix(1700000000, 0)), screen: tcell.NewSimulationScreen("UTF-8"),
		uiDone: make(chan error, 1)}
	r.sim = hw.NewSimClock(p.Master, id, r.clock)
	go r.sim.Run(ctx)
	r.screen.SetSize(100, 30)
	r.ui = NewBoardSim(r.screen, r.sim)
	go func() { r.uiDone <- r.ui.Run(ctx) }()
	<-r.ui.Ready()
	return r
}

// TestBoardSimDrivesCameraOverSerial: keys typed into board-sim's screen
// become the simulated board's button edges; a camera on the other end of
// the pty (through go.bug.st/serial) opens its menu and shows the code, and
// board-sim shows what the camera drew.
func TestBoardSimDrivesCameraOverSerial(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The board stamps button edges with its own clock and the host maps
	// them onto the same one: the test moves it, so a stalled machine
	// cannot stretch a double-press past its window.
	r := startBoardSim(t, ctx, "ui-test")
	p, clock, screen, ui, uiDone := r.p, r.clock, r.screen, r.ui, r.uiDone
	waitFor(t, ui, "waiting for host")

	board, err := hw.Open(ctx, hw.Config{Path: p.SlavePath, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer board.Close()
	cam, err := device.New(device.Config{Serial: "SIM-1", Model: device.Body4, Clock: device.FixedClock{T: time.Unix(1234567890, 0)}, Seeds: device.TestSeed{S: rfcSeed}})
	if err != nil {
		t.Fatal(err)
	}
	panel := testpanel.New(board)
	go cam.Run(ctx, panel)
	waitFor(t, ui, "READY")

	// key types r after gap on the board's clock, and waits until the
	// camera has handled the press's two edges (board-sim sends the up
	// edge ShortHold after the down edge): the next key's clock move
	// cannot overtake this press.
	edges := 0
	key := func(r rune, gap time.Duration) {
		t.Helper()
		clock.Advance(gap)
		screen.InjectKey(tcell.KeyRune, r, tcell.ModNone)
		edges += 2
		if err := panel.WaitHandled(ctx, edges, 15*time.Second); err != nil {
			t.Fatalf("key %q: %v\n%s", r, err, ui.Text())
		}
	}
	key('s', 0)
	key('s', 150*time.Millisecond) // two 's' 150 ms apart: a double-press
	waitFor(t, ui, "> Device Info")
	key('d', device.DoublePressWindow)
	waitFor(t, ui, "> Authenticator")
	key('s', device.DoublePressWindow) // a separate press, not a double
	text := waitFor(t, ui, "005924")
	waitFor(t, ui, "LED blinking")
	screen.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	if err := <-uiDone; err != nil {
		t.Fatalf("board-sim UI: %v\n%s", err, text)
	}
}

// TestBoardSimLinkLost: board-sim shows a camera's code; the camera
// process stops talking (its port stays open, as when it hangs); after
// hw.LinkTimeout by the board's clock (moved by hand, so a slow machine
// changes nothing) board-sim shows "Link lost" and no code. A camera
// that opens the port again gets its screen back on the board.
func TestBoardSimLinkLost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// p.Slave stays open: closing the host's port is silence, not an unplug.
	r := startBoardSim(t, ctx, "link-test")
	p, clock, sim, screen, ui, uiDone := r.p, r.clock, r.sim, r.screen, r.ui, r.uiDone

	// host runs a camera on the board until stop is called.
	host := func() (stop func()) {
		hctx, hcancel := context.WithCancel(ctx)
		board, err := hw.Open(hctx, hw.Config{Path: p.SlavePath, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		cam, err := device.New(device.Config{Serial: "SIM-1", Model: device.Body4, Clock: device.FixedClock{T: time.Unix(1234567890, 0)}, Seeds: device.TestSeed{S: rfcSeed}})
		if err != nil {
			t.Fatal(err)
		}
		camDone := make(chan error, 1)
		go func() { camDone <- cam.Run(hctx, board) }()
		return func() {
			hcancel()
			<-camDone
			board.Close()
		}
	}
	stop := host()
	waitFor(t, ui, "READY")
	// Double-press Select, Volume Down, Select, stamped by the board's clock.
	edge := func(b device.Button, down bool, after time.Duration) {
		clock.Advance(after)
		if err := sim.Edge(b, down); err != nil {
			t.Fatal(err)
		}
	}
	edge(device.Select, true, 0)
	edge(device.Select, false, 40*time.Millisecond)
	edge(device.Select, true, 100*time.Millisecond)
	edge(device.Select, false, 40*time.Millisecond)
	waitFor(t, ui, "> Device Info")
	edge(device.VolDown, true, time.Second)
	edge(device.VolDown, false, 40*time.Millisecond)
	waitFor(t, ui, "> Authenticator")
	edge(device.Select, true, time.Second)
	edge(device.Select, false, 40*time.Millisecond)
	waitFor(t, ui, "005924")
	waitFor(t, ui, "LED blinking")

	stop() // the camera process stops talking
	clock.Advance(hw.LinkTimeout)
	text := waitFor(t, ui, hw.LinkLostText)
	if strings.Contains(text, "005924") || !strings.Contains(text, "LED off · host silent") {
		t.Fatalf("after the host went silent:\n%s", text)
	}

	stop = host() // a camera opens the port again
	defer stop()
	text = waitFor(t, ui, "READY")
	if strings.Contains(text, hw.LinkLostText) || strings.Contains(text, "host silent") {
		t.Fatalf("after the host came back:\n%s", text)
	}
	screen.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	if err := <-uiDone; err != nil {
		t.Fatalf("board-sim UI: %v", err)
	}
}
