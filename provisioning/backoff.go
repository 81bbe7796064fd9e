package provisioning

import (
	"math/rand/v2"
	"time"
)

// Reconnect schedule of a camera's MQTT link.
const (
	// BackoffBase is the first reconnect window.
	BackoffBase = time.Second
	// BackoffMax caps the reconnect window.
	BackoffMax = 60 * time.Second
	// BackoffStable is how long a connection must have lasted for its loss
	// to restart the schedule at BackoffBase (a broker that accepts and then
	// drops a camera at once keeps it backing off).
	BackoffStable = 60 * time.Second
)

// Backoff is a reconnect schedule: exponential with full jitter. After the
// n-th failure in a row the wait is uniform in [0, min(Max, Base·2ⁿ)), so a
// fleet that lost its broker at the same instant spreads its reconnects over
// the window instead of retrying in lock-step. It is pure: the caller passes
// the time and Rand supplies the randomness, so the schedule is testable to
// the nanosecond. The zero value is not ready; use NewBackoff.
type Backoff struct {
	Base, Max, Stable time.Duration
	// Rand returns a uniform integer in [0, n) for n > 0.
	Rand func(n int64) int64

	failures int
	up       bool
	upAt     time.Time
}

// NewBackoff returns the camera schedule (1 s doubling to a 60 s cap) with
// rnd as its randomness (nil: math/rand/v2).
func NewBackoff(rnd func(n int64) int64) *Backoff {
	if rnd == nil {
		rnd = rand.Int64N
	}
	return &Backoff{Base: BackoffBase, Max: BackoffMax, Stable: BackoffStable, Rand: rnd}
}

// Connected records that a connection came up at now.
func (b *Backoff) Connected(now time.Time) {
	b.up, b.upAt = true, now
}

// Next records a failed attempt or a lost connection at now and returns how
// long to wait before the next attempt.
func (b *Backoff) Next(now time.Time) time.Duration {
	if b.up {
		b.up = false
		if now.Sub(b.upAt) >= b.Stable {
			b.failures = 0
		}
	}
	window := b.Window()
	if b.Max <= 0 || window < b.Max {
		b.failures++
	}
	if window <= 0 {
		return 0
	}
	return time.Duration(b.Rand(int64(window)))
}

// Window is the upper bound of the next wait: min(Max, Base·2ⁿ) after n
// failures in a row.
func (b *Backoff) Window() time.Duration {
	w := b.Base
	for range b.failures {
		if b.Max > 0 && w >= b.Max/2 {
			return b.Max
		}
		w *= 2
	}
	if b.Max > 0 && w > b.Max {
		return b.Max
	}
	return w
}
