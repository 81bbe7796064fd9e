// Package testclock holds the clocks tests inject: one that stands still
// until the test moves it, and one that runs with real time shifted by
// what the test adds.
package testclock

import (
	"sync"
	"time"
)

// Manual is a clock the test moves by hand.
type Manual struct {
	mu sync.Mutex
	t  time.Time
}

// NewManual returns a manual clock standing at t.
func NewManual(t time.Time) *Manual { return &Manual{t: t} }

// Now is the clock's time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Shift is real time plus a shift the test moves; the test may also stop
// it (Freeze) to measure durations to the millisecond.
type Shift struct {
	mu     sync.Mutex
	shift  time.Duration
	frozen *time.Time
}

// Now is the shifted time (where it stands while frozen).
func (c *Shift) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen != nil {
		return *c.frozen
	}
	return time.Now().Add(c.shift)
}

// Add moves the clock by d.
func (c *Shift) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shift += d
	if c.frozen != nil {
		t := c.frozen.Add(d)
		c.frozen = &t
	}
}

// Freeze stops the clock where it is: until Thaw only Add moves it.
func (c *Shift) Freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen == nil {
		t := time.Now().Add(c.shift)
		c.frozen = &t
	}
}

// Thaw lets the clock run with real time again, from where it stands.
func (c *Shift) Thaw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen != nil {
		c.shift = time.Until(*c.frozen)
		c.frozen = nil
	}
}
