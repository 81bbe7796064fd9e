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

// Shift is real time plus a shift the test moves.
type Shift struct {
	mu    sync.Mutex
	shift time.Duration
}

// Now is the shifted time.
func (c *Shift) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.shift)
}

// Add moves the clock by d.
func (c *Shift) Add(d time.Duration) {
	c.mu.Lock()
	c.shift += d
	c.mu.Unlock()
}
