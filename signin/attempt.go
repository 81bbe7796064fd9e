package signin

import (
	"context"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// attempt is one throttled attempt holding a reserved slot. Settle it
// exactly once with fail or succeed; release (deferred by the caller)
// gives the slot back when neither happened, e.g. on an error before the
// check, so a server fault never counts against the user.
type attempt struct {
	s              *Service
	kind, user, ip string
	now            time.Time
	taken          Decision // the reservation
	settled        bool
}

// reserve takes a slot for user on kind from ip before anything is
// evaluated; a *BlockedError says the caller must wait.
func (s *Service) reserve(ctx context.Context, kind, user, ip string) (*attempt, error) {
	now := s.now()
	d, err := s.reg.Reserve(ctx, kind, user, ip, now)
	if err != nil {
		return nil, err
	}
	if d.Blocked {
		return nil, &BlockedError{RetryAfter: d.RetryAfter}
	}
	return &attempt{s: s, kind: kind, user: user, ip: ip, now: now, taken: d}, nil
}

// fail records the attempt as failed and returns the decision after it,
// telling the observer of a lockout it caused. The attempt was evaluated:
// it is recorded even when the client has gone away meanwhile (a request
// dropped mid-check must not keep its slot without counting). When the
// write fails, the slot stays taken all the same (fail closed: an evaluated
// guess is never given back, so storage trouble cannot become a free
// guessing window).
func (a *attempt) fail(ctx context.Context) (Decision, error) {
	a.settled = true
	d, err := a.s.reg.Fail(context.WithoutCancel(ctx), a.kind, a.user, a.ip, a.now)
	if err != nil {
		return Decision{}, err
	}
	if d.Lockout && a.s.obs != nil {
		a.s.obs.Lockout(a.kind)
	}
	return d, nil
}

// succeed records the attempt as successful (whether or not the client is
// still there).
func (a *attempt) succeed(ctx context.Context) error {
	if err := a.s.reg.Succeed(context.WithoutCancel(ctx), a.kind, a.user, a.ip); err != nil {
		return err
	}
	a.settled = true
	return nil
}

// rules are the attempt's throttle counters, for a commit that records its
// success together with other writes (give it a context that the client
// cannot cancel, and set settled once it committed).
func (a *attempt) rules() []model.ThrottleRule { return a.s.reg.rules(a.kind, a.user, a.ip) }

// release gives the slot back unless the attempt was settled.
func (a *attempt) release(ctx context.Context) {
	if a.settled {
		return
	}
	a.settled = true
	if err := a.s.reg.Release(context.WithoutCancel(ctx), a.kind, a.user, a.ip, a.taken); err != nil {
		a.s.log.Error("release throttle slot", "kind", a.kind, "err", err)
	}
}
