package verifier

import (
	"context"
	"time"

	"github.com/camotp/camotp/internal/store"
)

// ThrottleStore keeps throttling counters; UpdateThrottle must apply fn to
// the named counters atomically.
type ThrottleStore interface {
	// GetThrottles reads counters in the order of keys (zero when none).
	GetThrottles(ctx context.Context, keys ...string) ([]store.Throttle, error)
	UpdateThrottle(ctx context.Context, keys []string, fn func(map[string]*store.Throttle)) error
}

// Limits configure throttling.
type Limits struct {
	// MaxFailures failed attempts from one (account, IP) pair block that
	// pair for Block.
	MaxFailures int
	Block       time.Duration
	// AccountCeiling failures on one account from any source within
	// AccountWindow block the account for BackoffBase, doubling with each
	// further ceiling reached, up to BackoffMax; a success resets it. The
	// block always ends: an attacker cannot lock the real user out for good.
	AccountCeiling int
	AccountWindow  time.Duration
	BackoffBase    time.Duration
	BackoffMax     time.Duration
}

// DefaultLimits are the product defaults: 3 failures → 10 minutes.
func DefaultLimits() Limits {
	return Limits{MaxFailures: 3, Block: 10 * time.Minute, AccountCeiling: 10, AccountWindow: time.Hour,
		BackoffBase: time.Minute, BackoffMax: time.Hour}
}

// Regulator decides whether an attempt may proceed and counts failures.
type Regulator struct {
	Store  ThrottleStore
	Limits Limits
}

// Decision is the regulator's answer.
type Decision struct {
	Blocked    bool
	RetryAfter time.Duration
	// AttemptsLeft before the (account, IP) pair is blocked.
	AttemptsLeft int
	// Clean says no failure or backoff is recorded: Succeed has nothing to clear.
	Clean bool
}

func pairKey(kind, user, ip string) string { return kind + ":pair:" + user + "\x00" + ip }
func acctKey(kind, user string) string     { return kind + ":acct:" + user }

func (r *Regulator) decide(pair, acct store.Throttle, now time.Time) Decision {
	d := Decision{AttemptsLeft: r.Limits.MaxFailures - pair.Failures}
	for _, until := range []time.Time{pair.BlockedUntil, acct.BlockedUntil} {
		if now.Before(until) {
			d.Blocked = true
			d.RetryAfter = max(d.RetryAfter, until.Sub(now))
		}
	}
	if d.Blocked || d.AttemptsLeft < 0 {
		d.AttemptsLeft = 0
	}
	return d
}

// pairFresh returns the pair counter with failures older than the block
// window forgotten.
func (r *Regulator) pairFresh(th store.Throttle, now time.Time) store.Throttle {
	if !th.FirstAt.IsZero() && now.Sub(th.FirstAt) > r.Limits.Block {
		th.Failures, th.FirstAt = 0, time.Time{}
	}
	return th
}

// Check tells whether user may attempt kind ("password", "otp") from ip now.
func (r *Regulator) Check(ctx context.Context, kind, user, ip string, now time.Time) (Decision, error) {
	ths, err := r.Store.GetThrottles(ctx, pairKey(kind, user, ip), acctKey(kind, user))
	if err != nil {
		return Decision{}, err
	}
	pair, acct := ths[0], ths[1]
	pair = r.pairFresh(pair, now)
	d := r.decide(pair, acct, now)
	d.Clean = pair == (store.Throttle{}) && acct == (store.Throttle{})
	return d, nil
}

// Fail counts a failed attempt and returns the decision after it.
func (r *Regulator) Fail(ctx context.Context, kind, user, ip string, now time.Time) (Decision, error) {
	pk, ak := pairKey(kind, user, ip), acctKey(kind, user)
	var d Decision
	err := r.Store.UpdateThrottle(ctx, []string{pk, ak}, func(m map[string]*store.Throttle) {
		pair, acct := m[pk], m[ak]
		*pair = r.pairFresh(*pair, now)
		if pair.FirstAt.IsZero() {
			pair.FirstAt = now
		}
		pair.Failures++
		if pair.Failures >= r.Limits.MaxFailures {
			pair.BlockedUntil = now.Add(r.Limits.Block)
		}
		if !acct.FirstAt.IsZero() && now.Sub(acct.FirstAt) > r.Limits.AccountWindow {
			acct.Failures, acct.FirstAt = 0, time.Time{}
			if now.Sub(acct.BlockedUntil) > r.Limits.AccountWindow {
				acct.Level = 0 // calm for a whole window: back to the base block
			}
		}
		if acct.FirstAt.IsZero() {
			acct.FirstAt = now
		}
		acct.Failures++
		if acct.Failures >= r.Limits.AccountCeiling {
			block := r.Limits.BackoffBase << min(acct.Level, 20)
			if block > r.Limits.BackoffMax || block <= 0 {
				block = r.Limits.BackoffMax
			}
			acct.BlockedUntil = now.Add(block)
			acct.Level++
			acct.Failures, acct.FirstAt = 0, time.Time{}
		}
		d = r.decide(*pair, *acct, now)
		if pair.Failures >= r.Limits.MaxFailures {
			// The block holds the pair; counting starts over after it.
			pair.Failures, pair.FirstAt = 0, time.Time{}
		}
	})
	return d, err
}

// Succeed clears the counters of user after a successful attempt from ip
// (nothing to do when the decision taken before the attempt was clean). A
// block still in force for other sources stays.
func (r *Regulator) Succeed(ctx context.Context, kind, user, ip string, before Decision) error {
	if before.Clean {
		return nil
	}
	pk, ak := pairKey(kind, user, ip), acctKey(kind, user)
	return r.Store.UpdateThrottle(ctx, []string{pk, ak}, func(m map[string]*store.Throttle) {
		*m[pk] = store.Throttle{}
		acct := m[ak]
		acct.Failures, acct.FirstAt, acct.Level = 0, time.Time{}, 0
	})
}
