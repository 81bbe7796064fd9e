package emulator

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/camotp/camotp/device"
)

var rfcSeed = device.Seed{Secret: []byte("12345678901234567890"), Algorithm: "SHA1", Digits: 6, Period: 30}

func TestParseScript(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		errPart string
	}{
		{"double:select,press:voldown,press:select", 3, ""},
		{"long:program, wait:1.5s ,press:power", 3, ""},
		{"", 0, ""},
		{"press:selekt", 0, `"press:selekt"`},
		{"tap:select", 0, `unknown event "tap"`},
		{"press", 0, `"press"`},
		{"press:select,wait:forever", 0, `"wait:forever"`},
		{"wait:-1s", 0, `"wait:-1s"`},
		{"wait:25h", 0, `"wait:25h"`},
	}
	for _, tc := range tests {
		steps, err := ParseScript(tc.in)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("ParseScript(%q) err = %v, want one naming %s", tc.in, err, tc.errPart)
			}
			continue
		}
		if err != nil || len(steps) != tc.want {
			t.Errorf("ParseScript(%q) = %d steps, %v; want %d", tc.in, len(steps), err, tc.want)
		}
	}
}

func TestPlayMovesClock(t *testing.T) {
	oc := &device.OffsetClock{Base: device.FixedClock{T: time.Unix(1234567890, 0)}}
	cam, err := device.New(device.Config{Serial: "S", Model: device.Body3, Clock: oc, Seeds: device.TestSeed{S: rfcSeed}})
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := ParseScript("long:program,press:voldown,press:select")
	end := Play(cam, oc, 0, steps)
	if got := cam.Screen().Code; got != "005924" {
		t.Fatalf("code = %q, want 005924:\n%s", got, cam.Screen().Text())
	}
	// Waiting 30 s of camera time moves to the next step's code.
	steps, _ = ParseScript("wait:30s")
	Play(cam, oc, end, steps)
	want, _ := rfcSeed.Code(oc.Now())
	if got := cam.Screen().Code; got != want || got == "005924" {
		t.Fatalf("after wait code = %q, want %q", got, want)
	}
}

// runTUI starts the emulator on a simulation screen and returns it with a
// stop function.
func runTUI(t *testing.T, model device.Model) (tcell.SimulationScreen, *TUI, func() error) {
	t.Helper()
	sim := tcell.NewSimulationScreen("UTF-8")
	clock := device.FixedClock{T: time.Unix(1234567890, 0)}
	cam, err := device.New(device.Config{Serial: "SIM-1", Model: model, Clock: clock, Seeds: device.TestSeed{S: rfcSeed}})
	if err != nil {
		t.Fatal(err)
	}
	tui := NewTUI(sim, model, "SIM-1", clock, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tui.Run(ctx, cam) }()
	<-tui.Ready()
	waitFor(t, tui, "SIM-1")
	return sim, tui, func() error { cancel(); return <-done }
}

func waitFor(t *testing.T, tui interface{ Text() string }, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second) // generous: a loaded machine under -race
	for {
		text := tui.Text()
		if strings.Contains(text, want) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q:\n%s", want, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inject(sim tcell.SimulationScreen, keys ...rune) {
	// InjectKey blocks when the 10-event queue is full: inject from a goroutine.
	go func() {
		for _, r := range keys {
			sim.InjectKey(tcell.KeyRune, r, tcell.ModNone)
		}
	}()
}

func TestTUIBody4ShowsCode(t *testing.T) {
	sim, tui, stop := runTUI(t, device.Body4)
	sim.SetSize(80, 24)
	text := waitFor(t, tui, "Body 4")
	for _, want := range []string{"[Vol+ u] [Select s] [Vol- d]", "camera clock 2009-02-13 23:31:30Z", "q quit"} {
		if !strings.Contains(text, want) {
			t.Fatalf("screen lacks %q:\n%s", want, text)
		}
	}
	inject(sim, 's', 's') // double-press: two presses inside the window
	waitFor(t, tui, "> Device Info")
	inject(sim, 'd')
	waitFor(t, tui, "> Authenticator")
	time.Sleep(device.DoublePressWindow) // a separate press, not a double
	inject(sim, 's')
	text = waitFor(t, tui, "005924")
	if !strings.Contains(text, "Expires in 30s") {
		t.Fatalf("no countdown:\n%s", text)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestTUIBody3LongPressAndQuit(t *testing.T) {
	sim, tui, stop := runTUI(t, device.Body3)
	inject(sim, 'P') // upper-case: long press of Program
	waitFor(t, tui, "> Device Info")
	inject(sim, 'd')
	waitFor(t, tui, "> Authenticator")
	inject(sim, 's')
	waitFor(t, tui, "005924")
	// Resize redraws at the new size.
	sim.SetSize(60, 30)
	sim.PostEvent(tcell.NewEventResize(60, 30))
	deadline := time.Now().Add(15 * time.Second) // generous: a loaded machine under -race
	for {
		text := tui.Text()
		if lines := strings.Split(text, "\n"); len(lines) == 31 && strings.Contains(text, "005924") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resize not drawn:\n%s", tui.Text())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestTUIQuitKey(t *testing.T) {
	sim := tcell.NewSimulationScreen("UTF-8")
	clock := device.FixedClock{T: time.Unix(0, 0)}
	cam, err := device.New(device.Config{Serial: "Q", Model: device.Workforce, Clock: clock, Seeds: device.TestSeed{S: rfcSeed}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	tui := NewTUI(sim, device.Workforce, "Q", clock, "")
	go func() { done <- tui.Run(context.Background(), cam) }()
	<-tui.Ready()
	waitFor(t, tui, "Body Workforce")
	inject(sim, 'q')
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("q did not quit the emulator")
	}
}

// link is a fleet link whose state the test sets.
type link struct{ s atomic.Value }

func (l *link) Status() string { return l.s.Load().(string) }

// TestTUIFleetLinkFollows: the line under the camera shows the fleet link
// as it is at each frame, not as it was when the emulator started.
func TestTUIFleetLinkFollows(t *testing.T) {
	sim := tcell.NewSimulationScreen("UTF-8")
	clock := device.FixedClock{T: time.Unix(1234567890, 0)}
	l := &link{}
	l.s.Store("connecting")
	cam, err := device.New(device.Config{Serial: "L-1", Model: device.Body4, Clock: clock, Seeds: device.TestSeed{S: rfcSeed}, Link: l})
	if err != nil {
		t.Fatal(err)
	}
	tui := NewTUI(sim, device.Body4, "L-1", clock, "")
	tui.Link = l
	tui.Notes = []string{"note one", "note two", "note three", "note four"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tui.Run(ctx, cam) }()
	<-tui.Ready()
	waitFor(t, tui, "camera clock 2009-02-13 23:31:30Z  fleet: connecting")
	l.s.Store("connected")
	text := waitFor(t, tui, "camera clock 2009-02-13 23:31:30Z  fleet: connected")
	// On an 80×24 terminal the camera, its help and four notes all fit.
	sim.SetSize(80, 24)
	sim.PostEvent(tcell.NewEventResize(80, 24))
	deadline := time.Now().Add(15 * time.Second)
	for text = tui.Text(); !(strings.Count(text, "\n") == 24 && strings.Contains(text, "note four") && strings.Contains(text, "Body 4 · L-1")); text = tui.Text() {
		if time.Now().After(deadline) {
			t.Fatalf("80×24 lacks the camera or the notes:\n%s", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.s.Store("offline")
	waitFor(t, tui, "fleet: offline")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
