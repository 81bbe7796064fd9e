package device

import "time"

// Clock is the camera's wall clock, used for TOTP codes and the clock shown
// on the body. Cameras drift; docking syncs them.
type Clock interface {
	Now() time.Time
}

// SystemClock is the host's real time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// FixedClock always returns T: a frozen clock for tests and QA.
type FixedClock struct{ T time.Time }

// Now returns T.
func (c FixedClock) Now() time.Time { return c.T }

// DriftClock is a camera clock that is off: it reads Base plus Offset, and
// gains PPM parts per million of the time elapsed since Epoch (negative PPM
// loses time). It reproduces a camera that has not been docked for a while.
type DriftClock struct {
	Base   Clock
	Offset time.Duration
	PPM    float64
	Epoch  time.Time
}

// Now returns the drifted time.
func (c DriftClock) Now() time.Time {
	now := c.Base.Now()
	drift := time.Duration(float64(now.Sub(c.Epoch)) * c.PPM / 1e6)
	return now.Add(c.Offset + drift)
}

// OffsetClock is a Clock that reads Base plus a shift that its owner moves
// forward; the headless runner uses it so that "wait:" advances camera time
// without sleeping.
type OffsetClock struct {
	Base  Clock
	Shift time.Duration
}

// Now returns Base.Now() + Shift.
func (c *OffsetClock) Now() time.Time { return c.Base.Now().Add(c.Shift) }
