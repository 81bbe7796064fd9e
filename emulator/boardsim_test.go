package emulator

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/hw"
)

// TestBoardSimDrivesCameraOverSerial: keys typed into board-sim's screen
// become the simulated board's button edges; a camera on the other end of
// the pty (through go.bug.st/serial) opens its menu and shows the code, and
// board-sim shows what the camera drew.
func TestBoardSimDrivesCameraOverSerial(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := hw.OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sim := hw.NewSim(p.Master, "ui-test")
	go sim.Run(ctx)
	screen := tcell.NewSimulationScreen("UTF-8")
	screen.SetSize(100, 30)
	ui := NewBoardSim(screen, sim)
	uiDone := make(chan error, 1)
	go func() { uiDone <- ui.Run(ctx) }()
	<-ui.Ready()
	waitFor(t, ui, "waiting for host")

	board, err := hw.Open(ctx, hw.Config{Path: p.SlavePath, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer board.Close()
	cam, err := device.New(device.Config{Serial: "SIM-1", Model: device.Body4, Clock: device.FixedClock{T: time.Unix(1234567890, 0)}, Seeds: device.TestSeed{S: rfcSeed}})
	if err != nil {
		t.Fatal(err)
	}
	go cam.Run(ctx, board)
	waitFor(t, ui, "READY")

	key := func(r rune) {
		screen.InjectKey(tcell.KeyRune, r, tcell.ModNone)
		time.Sleep(150 * time.Millisecond) // a person's pace; two 's' in 150 ms are a double-press
	}
	key('s')
	key('s')
	waitFor(t, ui, "> Device Info")
	key('d')
	waitFor(t, ui, "> Authenticator")
	key('s')
	text := waitFor(t, ui, "005924")
	waitFor(t, ui, "LED blinking")
	screen.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	if err := <-uiDone; err != nil {
		t.Fatalf("board-sim UI: %v\n%s", err, text)
	}
}
