package device

import (
	"fmt"
	"time"
)

// Gesture timing. The board or keyboard that reports edges measures the
// time; the detector only compares timestamps, so these hold the same for a
// script, a terminal and a real board. docs/camera.md documents them.
const (
	// DoublePressWindow is the longest time between the down edges of two
	// short presses of the same button that still makes a double-press.
	DoublePressWindow = 500 * time.Millisecond
	// LongPressThreshold is how long a button must be held for a long-press.
	// A hold shorter than this is a short press.
	LongPressThreshold = 1500 * time.Millisecond
)

// Edge is one raw button transition. At is the panel's monotonic time (for a
// real board, its millisecond counter); only differences between edges matter.
type Edge struct {
	Button Button
	Down   bool
	At     time.Duration
}

// GestureKind is the kind of a recognised gesture.
type GestureKind uint8

// The gestures the detector recognises.
const (
	Press GestureKind = iota + 1
	DoublePress
	LongPress
)

// String names the gesture kind as scripts do (press, double, long).
func (k GestureKind) String() string {
	switch k {
	case Press:
		return "press"
	case DoublePress:
		return "double"
	case LongPress:
		return "long"
	}
	return fmt.Sprintf("gesture(%d)", uint8(k))
}

// Gesture is a recognised button gesture.
type Gesture struct {
	Kind   GestureKind
	Button Button
	At     time.Duration
}

// String formats the gesture as a script token, e.g. "double:select".
func (g Gesture) String() string { return g.Kind.String() + ":" + g.Button.String() }

type buttonState struct {
	held      bool
	downAt    time.Duration
	longFired bool
	// lastPress is the down time of the previous short press still waiting
	// for a possible second press; hasLast says whether there is one.
	lastPress time.Duration
	hasLast   bool
}

// GestureDetector turns raw edges into gestures. Every short press yields a
// Press when it is released; a second short press whose down edge comes
// within DoublePressWindow of the first one's also yields a DoublePress. A
// hold yields one LongPress as soon as it reaches LongPressThreshold (found by
// Advance or by the release) and no Press. The zero value is ready to use.
type GestureDetector struct {
	buttons map[Button]*buttonState
}

func (d *GestureDetector) state(b Button) *buttonState {
	if d.buttons == nil {
		d.buttons = make(map[Button]*buttonState)
	}
	s, ok := d.buttons[b]
	if !ok {
		s = &buttonState{}
		d.buttons[b] = s
	}
	return s
}

// Feed consumes one edge and returns the gestures it completes. A repeated
// down edge while the button is held, or an up edge with no down, is ignored
// (contact bounce or a lost frame), never a panic.
func (d *GestureDetector) Feed(e Edge) []Gesture {
	out := d.Advance(e.At)
	s := d.state(e.Button)
	if e.Down {
		if s.held {
			return out
		}
		s.held, s.downAt, s.longFired = true, e.At, false
		return out
	}
	if !s.held {
		return out
	}
	s.held = false
	if s.longFired {
		s.hasLast = false
		return out
	}
	if e.At-s.downAt >= LongPressThreshold {
		s.hasLast = false
		return append(out, Gesture{Kind: LongPress, Button: e.Button, At: e.At})
	}
	out = append(out, Gesture{Kind: Press, Button: e.Button, At: e.At})
	if s.hasLast && s.downAt-s.lastPress <= DoublePressWindow {
		s.hasLast = false
		return append(out, Gesture{Kind: DoublePress, Button: e.Button, At: e.At})
	}
	s.lastPress, s.hasLast = s.downAt, true
	return out
}

// Advance reports the long-presses that reached the threshold by now for
// buttons still held.
func (d *GestureDetector) Advance(now time.Duration) []Gesture {
	var out []Gesture
	for _, b := range AllButtons {
		s, ok := d.buttons[b]
		if !ok || !s.held || s.longFired {
			continue
		}
		if now-s.downAt >= LongPressThreshold {
			s.longFired = true
			out = append(out, Gesture{Kind: LongPress, Button: b, At: s.downAt + LongPressThreshold})
		}
	}
	return out
}

// Synthesize returns the edges of gesture kind k on button b starting at
// time at, as a keyboard or a script produces them (terminals report no
// key-up, so the hold is made up), and the time the gesture ends.
func Synthesize(k GestureKind, b Button, at time.Duration) ([]Edge, time.Duration) {
	const tap = 80 * time.Millisecond
	const gap = 150 * time.Millisecond
	switch k {
	case DoublePress:
		return []Edge{
			{Button: b, Down: true, At: at},
			{Button: b, Down: false, At: at + tap},
			{Button: b, Down: true, At: at + tap + gap},
			{Button: b, Down: false, At: at + 2*tap + gap},
		}, at + 2*tap + gap
	case LongPress:
		end := at + LongPressThreshold + 100*time.Millisecond
		return []Edge{{Button: b, Down: true, At: at}, {Button: b, Down: false, At: end}}, end
	default:
		return []Edge{{Button: b, Down: true, At: at}, {Button: b, Down: false, At: at + tap}}, at + tap
	}
}
