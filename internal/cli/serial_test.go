package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/hw"
)

// TestCameraRunSerial runs the real binary with --ui serial: on a pty whose
// other end is the board simulator, and reads the code off the board.
func TestCameraRunSerial(t *testing.T) {
	dir := initCamera(t, "BC3-SER1", "body3")
	p, err := hw.OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the camera process stops (cleanups run last first): a
	// host whose board went away reopens the path every 500 ms, and the
	// kernel hands this /dev/pts number to the next pty anyone opens.
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sim := hw.NewSim(p.Master, "cli-test")
	go sim.Run(ctx)
	var out bytes.Buffer
	startBinary(t, &out, "camera", "run", "--state", dir, "--ui", "serial:"+p.SlavePath+"?baud=57600",
		"--test-seed", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "--clock", "2009-02-13T23:31:30Z")
	has := func(s string) func(hw.Draw) bool {
		return func(d hw.Draw) bool { return strings.Contains(strings.Join(d.Lines(), "\n"), s) }
	}
	if _, err := sim.WaitScreen(ctx, has("READY")); err != nil {
		t.Fatal(err)
	}
	sim.Press(device.Program, device.LongPressThreshold+200*time.Millisecond)
	if _, err := sim.WaitScreen(ctx, has("> Device Info")); err != nil {
		t.Fatal(err)
	}
	sim.Press(device.VolDown, 50*time.Millisecond)
	sim.Press(device.Select, 50*time.Millisecond)
	if _, err := sim.WaitScreen(ctx, has("005924")); err != nil {
		t.Fatal(err)
	}
}

func TestCameraRunSerialErrors(t *testing.T) {
	dir := initCamera(t, "BC4-SER2", "body4")
	for _, tc := range []struct {
		ui   string
		code int
		msg  string
	}{
		{"serial:", 2, "want serial:PATH"},
		{"serial:/dev/x?baud=fast", 2, "baud"},
		{"serial:" + t.TempDir() + "/ttyNONE", 1, "not found"},
		{"usb", 2, "unknown --ui"},
	} {
		_, errOut, code := run(t, "camera", "run", "--state", dir, "--ui", tc.ui)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("--ui %s: exit %d %q, want %d and %q", tc.ui, code, errOut, tc.code, tc.msg)
		}
	}
}
