package device

import (
	"reflect"
	"testing"
	"time"
)

const ms = time.Millisecond

func down(b Button, at time.Duration) Edge { return Edge{Button: b, Down: true, At: at} }
func up(b Button, at time.Duration) Edge   { return Edge{Button: b, Down: false, At: at} }

func kinds(gs []Gesture) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.String())
	}
	return out
}

func TestGestureDetector(t *testing.T) {
	w, l := DoublePressWindow, LongPressThreshold
	tests := []struct {
		name  string
		edges []Edge
		want  []string
	}{
		{"single press", []Edge{down(Select, 0), up(Select, 80*ms)}, []string{"press:select"}},
		{"double just inside window", []Edge{down(Select, 0), up(Select, 80*ms), down(Select, w), up(Select, w+80*ms)},
			[]string{"press:select", "press:select", "double:select"}},
		{"double just outside window", []Edge{down(Select, 0), up(Select, 80*ms), down(Select, w+ms), up(Select, w+81*ms)},
			[]string{"press:select", "press:select"}},
		{"triple is one double then a press", []Edge{down(Select, 0), up(Select, 50*ms), down(Select, 150*ms), up(Select, 200*ms), down(Select, 300*ms), up(Select, 350*ms)},
			[]string{"press:select", "press:select", "double:select", "press:select"}},
		{"two buttons are not a double", []Edge{down(Select, 0), up(Select, 80*ms), down(VolDown, 100*ms), up(VolDown, 180*ms)},
			[]string{"press:select", "press:voldown"}},
		{"long just under threshold", []Edge{down(Program, 0), up(Program, l-ms)}, []string{"press:program"}},
		{"long at threshold", []Edge{down(Program, 0), up(Program, l)}, []string{"long:program"}},
		{"long over threshold", []Edge{down(Program, 0), up(Program, l+ms)}, []string{"long:program"}},
		{"long then press is no double", []Edge{down(Select, 0), up(Select, l+ms), down(Select, l+100*ms), up(Select, l+150*ms)},
			[]string{"long:select", "press:select"}},
		{"bounce: repeated down ignored", []Edge{down(Select, 0), down(Select, 10*ms), up(Select, 80*ms)}, []string{"press:select"}},
		{"stray up ignored", []Edge{up(Select, 0)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d GestureDetector
			var got []Gesture
			for _, e := range tc.edges {
				got = append(got, d.Feed(e)...)
			}
			if !reflect.DeepEqual(kinds(got), tc.want) {
				t.Fatalf("gestures = %v, want %v", kinds(got), tc.want)
			}
		})
	}
}

func TestLongPressFiresWhileHeld(t *testing.T) {
	var d GestureDetector
	d.Feed(down(Program, 100*ms))
	if g := d.Advance(100*ms + LongPressThreshold - ms); len(g) != 0 {
		t.Fatalf("fired early: %v", kinds(g))
	}
	g := d.Advance(100*ms + LongPressThreshold)
	if !reflect.DeepEqual(kinds(g), []string{"long:program"}) {
		t.Fatalf("Advance = %v, want long:program", kinds(g))
	}
	if g := d.Feed(up(Program, 5*time.Second)); len(g) != 0 {
		t.Fatalf("release after long fired gave %v, want nothing", kinds(g))
	}
}

func TestSynthesizeRoundTrip(t *testing.T) {
	for _, k := range []GestureKind{Press, DoublePress, LongPress} {
		var d GestureDetector
		edges, end := Synthesize(k, Select, time.Second)
		var got []Gesture
		for _, e := range edges {
			got = append(got, d.Feed(e)...)
		}
		if last := got[len(got)-1]; last.Kind != k || last.Button != Select {
			t.Errorf("Synthesize(%v) detected %v", k, kinds(got))
		}
		if end != edges[len(edges)-1].At {
			t.Errorf("Synthesize(%v) end = %v, want last edge time", k, end)
		}
	}
}
