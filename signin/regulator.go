package signin

import (
	"context"
	"net/netip"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// ThrottleStore keeps throttling counters. Every operation is atomic in
// the database (a conditional statement decides, never a read followed by
// a write in Go), so the limits hold however many requests arrive at once,
// on one node or on several sharing the database.
type ThrottleStore interface {
	ReserveAttempt(ctx context.Context, now time.Time, rules ...model.ThrottleRule) (model.Reservation, error)
	RecordFailure(ctx context.Context, now time.Time, rules ...model.ThrottleRule) (model.FailureResult, error)
	RecordSuccess(ctx context.Context, rules ...model.ThrottleRule) error
	ReleaseAttempt(ctx context.Context, taken model.Reservation, rules ...model.ThrottleRule) error
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
// An attempt is reserved before it is evaluated (Reserve), then settled
// exactly once: Fail, Succeed or Release.
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
	// Lockout says this failure is the one that blocked the pair or the
	// account.
	Lockout bool

	taken model.Reservation // the slot Reserve took, for Release
}

func pairKey(kind, user, ip string) string { return kind + ":pair:" + user + "\x00" + sourceOf(ip) }

// sourceOf is the source an (account, source) counter keys on: the
// address, or for IPv6 its /64 — one host, or one customer's network,
// holds a whole /64, and would otherwise get a fresh counter per address.
func sourceOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Unmap().Is6() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}
func acctKey(kind, user string) string { return kind + ":acct:" + user }

// rules are the two counters of an attempt: the (account, IP) pair and
// the account.
func (r *Regulator) rules(kind, user, ip string) []model.ThrottleRule {
	l := r.Limits
	return []model.ThrottleRule{
		{Key: pairKey(kind, user, ip), Limit: l.MaxFailures, Window: l.Block, BlockBase: l.Block, BlockMax: l.Block},
		{Key: acctKey(kind, user), Limit: l.AccountCeiling, Window: l.AccountWindow, BlockBase: l.BackoffBase,
			BlockMax: l.BackoffMax, Sticky: true},
	}
}

// Reserve takes an attempt slot for user on kind ("password", "otp",
// "send") from ip at now, or says how long the caller is blocked. Only a
// granted attempt may be evaluated.
func (r *Regulator) Reserve(ctx context.Context, kind, user, ip string, now time.Time) (Decision, error) {
	res, err := r.Store.ReserveAttempt(ctx, now, r.rules(kind, user, ip)...)
	if err != nil {
		return Decision{}, err
	}
	if !res.Granted {
		return Decision{Blocked: true, RetryAfter: res.RetryAfter}, nil
	}
	// This attempt is counted already: if it fails, this many remain.
	return Decision{AttemptsLeft: max(r.Limits.MaxFailures-res.Counters[0].Attempts, 0), taken: res}, nil
}

// Fail settles a reserved attempt as failed and returns the decision after
// it: blocked when it was the last slot.
func (r *Regulator) Fail(ctx context.Context, kind, user, ip string, now time.Time) (Decision, error) {
	res, err := r.Store.RecordFailure(ctx, now, r.rules(kind, user, ip)...)
	if err != nil {
		return Decision{}, err
	}
	return r.decide(now, res), nil
}

// decide is the decision after a failure whose counters are res.
func (r *Regulator) decide(now time.Time, res model.FailureResult) Decision {
	pair := res.Counters[0]
	d := Decision{AttemptsLeft: max(r.Limits.MaxFailures-pair.Attempts, 0)}
	for i, th := range res.Counters {
		if now.Before(th.BlockedUntil) {
			d.Blocked, d.AttemptsLeft = true, 0
			d.RetryAfter = max(d.RetryAfter, th.BlockedUntil.Sub(now))
		}
		d.Lockout = d.Lockout || res.Blocked[i]
	}
	return d
}

// Succeed settles a reserved attempt as successful: the pair's counter is
// cleared and the account's failures and backoff reset. An account block
// in force for other sources stays.
func (r *Regulator) Succeed(ctx context.Context, kind, user, ip string) error {
	return r.Store.RecordSuccess(ctx, r.rules(kind, user, ip)...)
}

// Release gives back the attempt Reserve granted as taken that was never
// evaluated (an error before the check): it counts neither way.
func (r *Regulator) Release(ctx context.Context, kind, user, ip string, taken Decision) error {
	return r.Store.ReleaseAttempt(ctx, taken.taken, r.rules(kind, user, ip)...)
}
