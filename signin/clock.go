package signin

import (
	"context"
	"fmt"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// DefaultClockFresh is how old a camera's clock report may be and still
// centre the window: three reports at the cameras' default period.
const DefaultClockFresh = 30 * time.Minute

// ClockStore flags a camera whose clock reports disagree with its codes.
type ClockStore interface {
	SetClockMismatch(ctx context.Context, serial string, mismatch bool, at time.Time) (bool, error)
}

// clockFresh is the configured freshness of clock reports (0: never used).
func (s *Service) clockFresh() time.Duration {
	switch f := s.cfg.ClockFresh; {
	case f < 0:
		return 0
	case f == 0:
		return DefaultClockFresh
	default:
		return f
	}
}

// reportSteps is the offset in steps of the camera's clock report at now
// when it is fresh and precise enough to compare with a code, whether or
// not it is trusted; nil otherwise.
func (s *Service) reportSteps(cc *model.CameraCheck, now time.Time) *int64 {
	fresh := s.clockFresh()
	if cc == nil || cc.Clock == nil || cc.Seed == nil || fresh == 0 {
		return nil
	}
	k := *cc.Clock
	k.MismatchSince = nil // Usable but for the trust
	period := int64(cc.Seed.Period)
	if period <= 0 {
		period = 30
	}
	if !k.Usable(now, fresh, period) {
		return nil
	}
	n := k.Steps(now, period)
	return &n
}

// clockNear is the offset in steps to centre the camera's window on: its
// clock report's, when fresh and trusted (no disagreement with its codes
// outstanding); nil otherwise.
func (s *Service) clockNear(cc *model.CameraCheck, now time.Time) *int64 {
	if cc == nil || cc.Clock == nil || cc.Clock.Mismatch() {
		return nil
	}
	return s.reportSteps(cc, now)
}

// noteClock compares an accepted camera code's offset with the camera's
// clock report: more than one step apart flags the camera (its reports
// no longer centre the window), within one step clears the flag. Each
// change is logged and audited once, by whichever node makes it.
func (s *Service) noteClock(ctx context.Context, cc *model.CameraCheck, res CheckResult, now time.Time) {
	rep := s.reportSteps(cc, now)
	if rep == nil {
		return
	}
	d := res.Offset - *rep
	mismatch := d > 1 || d < -1
	if mismatch == cc.Clock.Mismatch() {
		return
	}
	serial := cc.Camera.Serial
	changed, err := s.st.SetClockMismatch(context.WithoutCancel(ctx), serial, mismatch, now)
	if err != nil {
		s.log.Warn("record camera clock mismatch", "serial", serial, "err", err)
		return
	}
	if !changed {
		return
	}
	e := model.AuditEntry{Actor: "camera:" + serial, Action: "camera.clock-mismatch", Subject: serial, Result: "cleared",
		Detail: fmt.Sprintf("code offset %+d steps, clock report %+d", res.Offset, *rep)}
	if mismatch {
		e.Result = "flagged"
	}
	if err := s.st.Audit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit write failed", "action", e.Action, "subject", serial, "err", err)
	}
	if mismatch {
		s.log.Warn("camera clock report disagrees with its codes; its reports no longer centre the window", "serial", serial,
			"code_offset", res.Offset, "report_offset", *rep)
		return
	}
	s.log.Info("camera clock report agrees with its codes again", "serial", serial, "code_offset", res.Offset, "report_offset", *rep)
}
