// Package testpanel lets a test see what a camera did with its panel's
// button edges, without sleeping: Spy stands between a device.Panel (a
// serial board, say) and the camera that runs on it.
package testpanel

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/camotp/camotp/device"
)

// Spy is a device.Panel that forwards to another one and counts the edges
// the camera has finished with. Camera.Run is one goroutine that takes an
// edge, handles it, shows the screen, and only then, on its next tick,
// asks Uptime: an Uptime call therefore tells that every edge taken before
// it is handled and its screen shown.
type Spy struct {
	panel device.Panel
	edges chan device.Edge

	mu      sync.Mutex
	taken   int // edges the camera received
	handled int // edges taken before the camera's latest Uptime call
	shown   []device.Screen
	changed chan struct{} // closed and replaced when handled grows
}

// New returns a spy on p; its forwarder runs until p's edge channel closes.
func New(p device.Panel) *Spy {
	s := &Spy{panel: p, edges: make(chan device.Edge), changed: make(chan struct{})}
	go func() {
		defer close(s.edges)
		for e := range p.Edges() {
			s.edges <- e // unbuffered: done once the camera has it
			s.mu.Lock()
			s.taken++
			s.mu.Unlock()
		}
	}()
	return s
}

// Show records the screen and shows it on the panel.
func (s *Spy) Show(sc device.Screen) error {
	s.mu.Lock()
	s.shown = append(s.shown, sc)
	s.mu.Unlock()
	return s.panel.Show(sc)
}

// Edges are the panel's edges, handed over one at a time.
func (s *Spy) Edges() <-chan device.Edge { return s.edges }

// Uptime is the panel's; the call marks the edges taken so far as handled.
func (s *Spy) Uptime() time.Duration {
	s.mu.Lock()
	if s.taken > s.handled {
		s.handled = s.taken
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
	return s.panel.Uptime()
}

// Handled is how many edges the camera has handled (and shown the screen
// after) for sure.
func (s *Spy) Handled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handled
}

// Shown returns the screens the camera showed, oldest first.
func (s *Spy) Shown() []device.Screen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]device.Screen(nil), s.shown...)
}

// WaitHandled waits until the camera has handled n edges in all, or
// timeout (generous: a loaded machine) passes.
func (s *Spy) WaitHandled(ctx context.Context, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		s.mu.Lock()
		handled, changed := s.handled, s.changed
		s.mu.Unlock()
		if handled >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the camera handled %d of %d button edges: %w", handled, n, ctx.Err())
		case <-changed:
		}
	}
}
