// Package emulator runs the camera core without hardware: a full-screen
// tcell emulator of the camera body, LCD and buttons, and a headless mode
// that applies a scripted list of button events (for QA in CI).
package emulator

import (
	"fmt"
	"strings"
	"time"

	"github.com/camotp/camotp/device"
)

// MaxWait bounds one wait: step of a script.
const MaxWait = 24 * time.Hour

// Step is one script event: a gesture on a button, or a wait.
type Step struct {
	Kind   device.GestureKind // zero for a wait
	Button device.Button
	Wait   time.Duration
}

// ParseScript parses a comma-separated event list: press:BUTTON,
// double:BUTTON, long:BUTTON, wait:DURATION. The error names the bad token.
func ParseScript(s string) ([]Step, error) {
	var steps []Step
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for i, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		verb, arg, ok := strings.Cut(tok, ":")
		if !ok {
			return nil, fmt.Errorf("script event %d %q: want VERB:ARG (press, double, long, wait)", i+1, tok)
		}
		if verb == "wait" {
			d, err := time.ParseDuration(arg)
			if err != nil || d < 0 || d > MaxWait {
				return nil, fmt.Errorf("script event %d %q: wait takes a duration from 0 to 24h, e.g. wait:2s", i+1, tok)
			}
			steps = append(steps, Step{Wait: d})
			continue
		}
		var kind device.GestureKind
		switch verb {
		case "press":
			kind = device.Press
		case "double":
			kind = device.DoublePress
		case "long":
			kind = device.LongPress
		default:
			return nil, fmt.Errorf("script event %d %q: unknown event %q (want press, double, long or wait)", i+1, tok, verb)
		}
		b, err := device.ParseButton(arg)
		if err != nil {
			return nil, fmt.Errorf("script event %d %q: %w", i+1, tok, err)
		}
		steps = append(steps, Step{Kind: kind, Button: b})
	}
	return steps, nil
}

// settle is the pause the script runner leaves after each gesture so that
// two scripted presses never merge into a double-press by accident.
const settle = device.DoublePressWindow + 100*time.Millisecond

// Play applies steps to cam on a virtual timeline starting at uptime start,
// without sleeping: each gesture's edges are fed with their timestamps and
// clock (when not nil) is moved forward by the same amount, so the camera's
// wall time follows the script. It returns the uptime at the end.
func Play(cam *device.Camera, clock *device.OffsetClock, start time.Duration, steps []Step) time.Duration {
	t := start
	advance := func(to time.Duration) {
		if clock != nil {
			clock.Shift += to - t
		}
		t = to
		cam.Tick(t)
	}
	for _, st := range steps {
		if st.Kind == 0 {
			advance(t + st.Wait)
			continue
		}
		edges, end := device.Synthesize(st.Kind, st.Button, t)
		for _, e := range edges {
			advance(e.At)
			cam.HandleEdge(e)
		}
		advance(end + settle)
	}
	return t
}
