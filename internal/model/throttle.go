package model

import "time"

// ThrottleRule is the rule of one throttling counter. Up to Limit attempts
// may be taken within Window (counted from the first); once Limit have
// been taken and one of them fails, the counter is blocked for BlockBase
// doubled once per earlier block (Level), capped at BlockMax, and counting
// starts over after the block. A counter calm for a whole Window after its
// last block forgets its level.
type ThrottleRule struct {
	Key       string
	Limit     int
	Window    time.Duration
	BlockBase time.Duration
	BlockMax  time.Duration
	// Sticky blocks outlive a success (an account block set by other
	// sources); a success lifts a block that is not sticky.
	Sticky bool
}

// Throttle is a counter as stored.
type Throttle struct {
	// Attempts taken in the current window, including those still being
	// evaluated.
	Attempts     int
	FirstAt      time.Time
	BlockedUntil time.Time
	// Level is the number of blocks so far (the backoff exponent).
	Level int
}

// Reservation is the answer to ReserveAttempt.
type Reservation struct {
	// Granted says the caller holds one attempt slot on every counter.
	Granted bool
	// RetryAfter, when refused, is how long until a slot may free up.
	RetryAfter time.Duration
	// Counters are the counters after the reservation (when granted) or as
	// they stand (when refused), in the order of the rules.
	Counters []Throttle
}

// FailureResult is the answer to RecordFailure.
type FailureResult struct {
	// Counters after the failure, in the order of the rules.
	Counters []Throttle
	// Blocked says this failure is the one that blocked the counter at
	// that index (exactly one failure blocks a counter per crossing).
	Blocked []bool
}

// InFlightRetry is the wait a refused attempt is told when every slot is
// held by attempts still being evaluated.
const InFlightRetry = 5 * time.Second

// RetryAfter is how long a refused reservation tells its caller to wait,
// at now, given the rules and their counters as they stand: the longest
// wait of any counter. A counter blocked waits out its block; one whose
// slots are all held by attempts still being evaluated is asked about
// again shortly (InFlightRetry, never later than its window's end), as
// within moments those attempts either block it or free a slot. Never
// less than a second.
func RetryAfter(now time.Time, rules []ThrottleRule, counters []Throttle) time.Duration {
	var wait time.Duration
	for i, r := range rules {
		th := counters[i]
		w := th.BlockedUntil.Sub(now)
		if !now.Before(th.BlockedUntil) && th.Attempts >= r.Limit {
			w = min(InFlightRetry, th.FirstAt.Add(r.Window).Sub(now))
		}
		wait = max(wait, w)
	}
	if wait <= 0 {
		wait = time.Second // a slot just freed up: try again
	}
	return wait
}

// Settlement is how the commit that acts on a passed attempt settles the
// attempt's throttle counters.
type Settlement struct {
	// Rules are the attempt's counters: the success clears them.
	Rules []ThrottleRule
	// Unreserved says the attempt took no slot before it was evaluated
	// (its check wrote nothing): the commit first takes one on every
	// counter of Rules At (the success then clears them), and changes
	// nothing when one refuses (storage.ThrottledError).
	Unreserved bool
	At         time.Time
}

// Clear is the Settlement of a reserved attempt that clears rules.
func Clear(rules ...ThrottleRule) Settlement { return Settlement{Rules: rules} }
