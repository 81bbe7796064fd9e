package rollover

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// Store is what the scheduler reads and claims in the shared store.
type Store interface {
	Setting(ctx context.Context, key string) (string, bool, error)
	ClaimRotations(ctx context.Context, c model.RotationClaim) ([]string, error)
	RotationCounts(ctx context.Context, dueBefore, overdueBefore, hour time.Time) (model.RotationCounts, error)
}

// Starter starts a provisioning operation (provisioning.Service.Start):
// for a rotate, a fresh seed sealed to the camera, the old seed active
// until the camera proves the new one.
type Starter interface {
	Start(ctx context.Context, serial string, op model.Op, actor, ip string) (uint64, error)
}

// Actor is who the audit log says started a scheduled rotation.
const Actor = "schedule"

// DefaultTick is how often the server runs Step.
const DefaultTick = time.Minute

// Lease is how long a claimed camera is left to the node that claimed it
// before another may claim it again (its start failed or its node died).
const Lease = 10 * time.Minute

// Status is what the scheduler saw at its last step.
type Status struct {
	Policy Policy `json:"policy"`
	// At is when the step ran.
	At time.Time `json:"at"`
	// InWindow says At was inside the window; WindowStart and WindowEnd
	// are that window, or the next one.
	InWindow    bool      `json:"inWindow"`
	WindowStart time.Time `json:"windowStart"`
	WindowEnd   time.Time `json:"windowEnd"`
	model.RotationCounts
	// Allowed is how many rotations the hour of At may have started by
	// now (all nodes).
	Allowed int `json:"allowed"`
	// Error is the last step's error, if any.
	Error string `json:"error,omitempty"`
}

// Scheduler starts due rotations. Every node runs one; they share the
// schedule through the store.
type Scheduler struct {
	st    Store
	start Starter
	now   func() time.Time
	log   *slog.Logger
	// Tick is how often Step is called (the pacing inside an hour counts
	// on it); DefaultTick when zero.
	Tick time.Duration

	mu      sync.Mutex
	last    Status
	started atomic.Uint64
}

// New returns a scheduler over st that starts rotations with start; now
// is the clock everything is timed by.
func New(st Store, start Starter, now func() time.Time, log *slog.Logger) *Scheduler {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{st: st, start: start, now: now, log: log}
}

// Started is the number of rotations this node's schedule started.
func (s *Scheduler) Started() uint64 { return s.started.Load() }

// Last is the status of the last step.
func (s *Scheduler) Last() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// LoadPolicy reads the policy from st (off when never set).
func LoadPolicy(ctx context.Context, st interface {
	Setting(ctx context.Context, key string) (string, bool, error)
}) (Policy, error) {
	v, _, err := st.Setting(ctx, SettingKey)
	if err != nil {
		return Policy{}, fmt.Errorf("read rotation policy: %w", err)
	}
	return Decode(v)
}

// Status counts the fleet for the policy as of now, without starting
// anything.
func (s *Scheduler) Status(ctx context.Context) (Status, error) {
	st, _, err := s.plan(ctx)
	return st, err
}

// plan reads the policy and the counts and works out how many rotations
// the hour may have started by now.
func (s *Scheduler) plan(ctx context.Context) (Status, *Schedule, error) {
	now := s.now()
	st := Status{At: now}
	pol, err := LoadPolicy(ctx, s.st)
	if err != nil {
		return st, nil, err
	}
	st.Policy = pol
	if pol.Off() {
		return st, nil, nil
	}
	sch, err := pol.Parse()
	if err != nil {
		return st, nil, err
	}
	hour := now.Truncate(time.Hour)
	ws, we, in := sch.Window(now)
	st.InWindow, st.WindowStart, st.WindowEnd = in, ws, we
	if st.RotationCounts, err = s.st.RotationCounts(ctx, now.Add(-sch.Every), sch.LastEnd(now).Add(-sch.Every), hour); err != nil {
		return st, nil, err
	}
	if in {
		st.Allowed = allowed(st.RotationCounts, sch.MaxPerHour, now, hour, ws, we, cmpOr(s.Tick, DefaultTick))
	}
	return st, &sch, nil
}

// allowed is how many rotations the hour may have started by now: the
// due cameras (and those the hour started) spread evenly over the hours
// left in the window, at most the hourly share of the fleet, and paced
// through the part of the hour inside the window, tick by tick, so they
// do not all start at its beginning.
func allowed(n model.RotationCounts, pct int, now, hour, ws, we time.Time, tick time.Duration) int {
	share := ceilDiv(n.Fleet*pct, 100)
	hoursLeft := max(1, int(ceilDiv64(int64(we.Sub(hour)), int64(time.Hour))))
	target := min(share, ceilDiv(n.Due+n.Started, hoursLeft))
	from, to := later(hour, ws), earlier(hour.Add(time.Hour), we)
	span := to.Sub(from)
	if span <= 0 {
		return target
	}
	done := min(now.Sub(from)+tick, span)
	return int(ceilDiv64(int64(target)*int64(done), int64(span)))
}

// Step runs the schedule once: it counts due and overdue cameras and,
// inside the window, claims the due online cameras the hour's pace allows
// and starts their rotation. It returns what it saw.
func (s *Scheduler) Step(ctx context.Context) (Status, error) {
	st, sch, err := s.plan(ctx)
	if err == nil && sch != nil && st.InWindow && st.Allowed > st.Started {
		var serials []string
		serials, err = s.st.ClaimRotations(ctx, model.RotationClaim{Now: st.At, DueBefore: st.At.Add(-sch.Every),
			LeaseBefore: st.At.Add(-Lease), Hour: st.At.Truncate(time.Hour), Allowed: st.Allowed})
		for _, sn := range serials {
			v, serr := s.start.Start(ctx, sn, model.OpRotate, Actor, "")
			if serr != nil {
				// Claimed, not started: another step claims it once the lease ends.
				s.log.Warn("scheduled rotation not started", "serial", sn, "err", serr)
				continue
			}
			s.started.Add(1)
			s.log.Info("scheduled rotation started", "serial", sn, "version", v)
		}
		st.Started += len(serials)
	}
	if err != nil {
		st.Error = err.Error()
	}
	s.mu.Lock()
	s.last = st
	s.mu.Unlock()
	return st, err
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func ceilDiv64(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
