package hw

import (
	"testing"
	"time"

	"github.com/camotp/camotp/device"
)

// TestBoardClockKeepsBoardSpacing: edges keep the spacing the board
// measured however late the host reads them, while the host's estimate of
// the time (Uptime, which the camera polls every tick) runs on meanwhile.
// A double-press of 150 ms on the board stays one when the host reads the
// second press 700 ms late.
func TestBoardClockKeepsBoardSpacing(t *testing.T) {
	h0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return h0.Add(d) }
	ms := time.Millisecond
	var c boardClock
	c.sync(10_000, at(0)) // the handshake's Pong: board ms 10000 is panel time 0
	var det device.GestureDetector
	var got []device.Gesture
	var last time.Duration
	edge := func(board uint32, down bool, readAt time.Duration) time.Duration {
		t.Helper()
		e := c.at(board, at(readAt))
		if u := c.uptime(at(readAt)); u < e || u < last {
			t.Fatalf("uptime %v behind edge %v or earlier uptime %v", u, e, last)
		}
		got = append(got, det.Feed(device.Edge{Button: device.Select, Down: down, At: e})...)
		return e
	}
	tick := func(from, to time.Duration) { // the camera polls Uptime every 100 ms
		for h := from; h <= to; h += 100 * ms {
			u := c.uptime(at(h))
			if u < last {
				t.Fatalf("uptime went back: %v after %v", u, last)
			}
			last = u
		}
	}
	d1 := edge(10_100, true, 110*ms)
	edge(10_140, false, 150*ms)
	tick(200*ms, 900*ms)
	d2 := edge(10_250, true, 950*ms) // read 700 ms after the board stamped it
	edge(10_290, false, 960*ms)
	if d2-d1 != 150*ms {
		t.Errorf("down edges %v apart on the panel; the board measured 150ms", d2-d1)
	}
	if len(got) != 3 || got[2].Kind != device.DoublePress {
		t.Errorf("gestures %v, want press, press, double", got)
	}

	// A board ahead of the host's estimate moves panel time on.
	if e := edge(20_000, true, 1000*ms); e != 10*time.Second || c.uptime(at(1000*ms)) != 10*time.Second {
		t.Errorf("edge %v, uptime %v; want both at 10s", e, c.uptime(at(1000*ms)))
	}
	edge(20_040, false, 1040*ms)

	// The counter wraps: the host extends it.
	c.sync(1<<32-100, at(2000*ms))
	before := c.uptime(at(2000 * ms))
	if e := edge(50, true, 2150*ms); e != before+150*ms {
		t.Errorf("edge across the wrap at %v, want %v", e, before+150*ms)
	}
	edge(90, false, 2190*ms)

	// The board restarts (its counter back near 0): panel time never goes back.
	tick(2200*ms, 3000*ms)
	c.sync(5, at(3000*ms))
	if e := edge(30, true, 3030*ms); e < last {
		t.Errorf("edge %v after a restart is before earlier panel time %v", e, last)
	}
}
