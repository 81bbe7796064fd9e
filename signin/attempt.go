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
	// unreserved: no slot was taken before the evaluation (unreserved).
	unreserved bool
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

// unreserved is an attempt of a right code (found within the window with
// the same work for every code: pureChecker) that takes no slot before it
// is evaluated: its slot is checked in the commit that ends the sign-in
// (model.Settlement.Unreserved) with the statement that takes a slot, so
// a passed code costs one commit, not two, and a refused right code takes
// the same steps as a refused wrong one. Only settlement uses it; any
// other outcome takes a slot (reserve) before it goes further.
func (s *Service) unreserved(kind, user, ip string) *attempt {
	return &attempt{s: s, kind: kind, user: user, ip: ip, now: s.now(), unreserved: true}
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

// settlement settles the attempt's throttle counters as a success in a
// commit that records it together with other writes (give it a context
// that the client cannot cancel, and set settled once it committed).
func (a *attempt) settlement() model.Settlement {
	return model.Settlement{Rules: a.s.reg.rules(a.kind, a.user, a.ip), Unreserved: a.unreserved, At: a.now}
}

// release gives the slot back unless the attempt was settled (an
// unreserved attempt holds none).
func (a *attempt) release(ctx context.Context) {
	if a.settled || a.unreserved {
		return
	}
	a.settled = true
	if err := a.s.reg.Release(context.WithoutCancel(ctx), a.kind, a.user, a.ip, a.taken); err != nil {
		a.s.log.Error("release throttle slot", "kind", a.kind, "err", err)
	}
}
