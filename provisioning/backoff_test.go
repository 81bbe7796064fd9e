package provisioning_test

import (
	"testing"
	"time"

	"github.com/camotp/camotp/provisioning"
)

// maxRand draws the top of every window; halfRand its middle; zeroRand 0.
func maxRand(n int64) int64  { return n - 1 }
func halfRand(n int64) int64 { return n / 2 }
func zeroRand(int64) int64   { return 0 }

func TestBackoffSchedule(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	type step struct {
		up     bool          // Connected at this offset instead of a failure
		at     time.Duration // offset from t0
		window time.Duration // Window() before the step (0: not checked)
		wait   time.Duration // what Next returns
	}
	ns := time.Nanosecond
	cases := []struct {
		name  string
		rand  func(int64) int64
		steps []step
	}{
		{"refused camera doubles to the 60 s cap", maxRand, []step{
			{at: 0, window: 1 * time.Second, wait: time.Second - ns},
			{at: 1 * time.Second, window: 2 * time.Second, wait: 2*time.Second - ns},
			{at: 3 * time.Second, window: 4 * time.Second, wait: 4*time.Second - ns},
			{at: 7 * time.Second, window: 8 * time.Second, wait: 8*time.Second - ns},
			{at: 15 * time.Second, window: 16 * time.Second, wait: 16*time.Second - ns},
			{at: 31 * time.Second, window: 32 * time.Second, wait: 32*time.Second - ns},
			{at: 63 * time.Second, window: 60 * time.Second, wait: 60*time.Second - ns},
			{at: 123 * time.Second, window: 60 * time.Second, wait: 60*time.Second - ns},
		}},
		{"full jitter: the draw scales the window", halfRand, []step{
			{at: 0, window: time.Second, wait: 500 * time.Millisecond},
			{at: time.Second, window: 2 * time.Second, wait: time.Second},
			{at: 2 * time.Second, window: 4 * time.Second, wait: 2 * time.Second},
		}},
		{"a zero draw retries at once but the window still grows", zeroRand, []step{
			{at: 0, window: time.Second, wait: 0},
			{at: 0, window: 2 * time.Second, wait: 0},
			{at: 0, window: 4 * time.Second, wait: 0},
		}},
		{"a connection that lasted restarts the schedule", maxRand, []step{
			{at: 0, window: time.Second, wait: time.Second - ns},
			{at: time.Second, window: 2 * time.Second, wait: 2*time.Second - ns},
			{at: 3 * time.Second, window: 4 * time.Second, wait: 4*time.Second - ns},
			{up: true, at: 7 * time.Second},
			{at: 67 * time.Second, wait: time.Second - ns},
			{at: 68 * time.Second, window: 2 * time.Second, wait: 2*time.Second - ns},
		}},
		{"a broker that drops the camera at once keeps it backing off", maxRand, []step{
			{at: 0, window: time.Second, wait: time.Second - ns},
			{up: true, at: time.Second},
			{at: 2 * time.Second, window: 2 * time.Second, wait: 2*time.Second - ns},
			{up: true, at: 4 * time.Second},
			{at: 4*time.Second + provisioning.BackoffStable - ns, window: 4 * time.Second, wait: 4*time.Second - ns},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := provisioning.NewBackoff(tc.rand)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.up {
					b.Connected(now)
					continue
				}
				if w := b.Window(); s.window != 0 && w != s.window {
					t.Fatalf("step %d: window %s, want %s", i, w, s.window)
				}
				if got := b.Next(now); got != s.wait {
					t.Fatalf("step %d: wait %s, want %s", i, got, s.wait)
				}
			}
		})
	}
}

// A refused camera makes few attempts: with real randomness, over the 50 s
// that took ≈90 attempts per camera with paho's reconnect, the expected
// count is about 7, and never more than the number of windows that fit.
func TestBackoffAttemptRate(t *testing.T) {
	b := provisioning.NewBackoff(nil)
	t0 := time.Now()
	for cam := range 300 {
		b = provisioning.NewBackoff(nil)
		now, attempts := t0, 0
		for now.Sub(t0) < 50*time.Second {
			attempts++
			now = now.Add(b.Next(now))
		}
		if attempts > 40 {
			t.Fatalf("camera %d made %d attempts in 50 s", cam, attempts)
		}
	}
	if b.Window() != provisioning.BackoffMax && b.Window() < 16*time.Second {
		t.Fatalf("window after 50 s of refusals is %s", b.Window())
	}
}
