package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// pairRule is the (account, source) counter of the product defaults: 3
// attempts, then 10 minutes.
func pairRule(key string) model.ThrottleRule {
	return model.ThrottleRule{Key: key, Limit: 3, Window: 10 * time.Minute, BlockBase: 10 * time.Minute, BlockMax: 10 * time.Minute}
}

// acctRule is the account counter of the product defaults: 10 attempts an
// hour, blocks from 1 minute doubling to 1 hour, sticky.
func acctRule(key string) model.ThrottleRule {
	return model.ThrottleRule{Key: key, Limit: 10, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
}

// reserve takes one slot at the store's now and fails t unless the answer
// is granted.
func (e *env) reserve(t *testing.T, rules ...model.ThrottleRule) model.Reservation {
	t.Helper()
	res, err := e.s.ReserveAttempt(e.ctx, e.now(), rules...)
	must(t, err, "reserve")
	if !res.Granted {
		t.Fatalf("reservation refused at %v: %+v", e.now(), res)
	}
	return res
}

// refused fails t unless a reservation at the store's now is refused with
// retry.
func (e *env) refused(t *testing.T, retry time.Duration, rules ...model.ThrottleRule) model.Reservation {
	t.Helper()
	res, err := e.s.ReserveAttempt(e.ctx, e.now(), rules...)
	must(t, err, "reserve")
	if res.Granted || res.RetryAfter != retry {
		t.Fatalf("reservation at %v: granted %v retry after %v, want refused, retry after %v", e.now(), res.Granted, res.RetryAfter, retry)
	}
	return res
}

// fail records a failure at the store's now.
func (e *env) fail(t *testing.T, rules ...model.ThrottleRule) model.FailureResult {
	t.Helper()
	res, err := e.s.RecordFailure(e.ctx, e.now(), rules...)
	must(t, err, "record failure")
	if len(res.Counters) != len(rules) || len(res.Blocked) != len(rules) {
		t.Fatalf("failure result for %d rules: %+v", len(rules), res)
	}
	return res
}

// counter reads one counter.
func (e *env) counter(t *testing.T, key string) model.Throttle {
	t.Helper()
	ths, err := e.s.GetThrottles(e.ctx, key)
	must(t, err, "read "+key)
	if len(ths) != 1 {
		t.Fatalf("GetThrottles(%s) gave %d counters", key, len(ths))
	}
	return ths[0]
}

// sameCounter fails t unless got is want (times compared as instants).
func sameCounter(t *testing.T, got, want model.Throttle, what string) {
	t.Helper()
	if got.Attempts != want.Attempts || got.Level != want.Level || !got.FirstAt.Equal(want.FirstAt) ||
		!got.BlockedUntil.Equal(want.BlockedUntil) {
		t.Fatalf("%s: counter %+v, want %+v", what, got, want)
	}
}

func throttleCases() []testCase {
	return []testCase{
		{"ReserveUpToLimit", func(t *testing.T, e *env) {
			r := pairRule("pair")
			for n := 1; n <= 3; n++ {
				res := e.reserve(t, r)
				sameCounter(t, res.Counters[0], model.Throttle{Attempts: n, FirstAt: T0}, fmt.Sprintf("reservation %d", n))
				e.clock.Advance(time.Second)
			}
			// Every slot is held by an attempt still being evaluated: ask
			// again shortly.
			res := e.refused(t, model.InFlightRetry, r)
			sameCounter(t, res.Counters[0], model.Throttle{Attempts: 3, FirstAt: T0}, "refused reservation")
			// ... but never later than the window's end.
			e.clock.Advance(10*time.Minute - 3*time.Second - 2*time.Second)
			e.refused(t, 2*time.Second, r)
		}},
		{"WindowStartsOver", func(t *testing.T, e *env) {
			r := pairRule("pair")
			for range 3 {
				e.reserve(t, r)
			}
			e.clock.Advance(10 * time.Minute)
			res := e.reserve(t, r)
			sameCounter(t, res.Counters[0], model.Throttle{Attempts: 1, FirstAt: T0.Add(10 * time.Minute)}, "first of a new window")
		}},
		{"FailureBelowLimitDoesNotBlock", func(t *testing.T, e *env) {
			r := pairRule("pair")
			e.reserve(t, r)
			res := e.fail(t, r)
			if res.Blocked[0] {
				t.Fatal("one failure of three blocked")
			}
			sameCounter(t, res.Counters[0], model.Throttle{Attempts: 1, FirstAt: T0}, "after one failure")
			// A failure on a counter that does not exist is no error.
			res = e.fail(t, pairRule("unknown"))
			if res.Blocked[0] || res.Counters[0] != (model.Throttle{}) {
				t.Fatalf("failure on no counter: %+v", res)
			}
		}},
		{"FailureAtLimitBlocks", func(t *testing.T, e *env) {
			r := pairRule("pair")
			for range 3 {
				e.reserve(t, r)
			}
			e.clock.Advance(time.Minute)
			res := e.fail(t, r)
			if !res.Blocked[0] {
				t.Fatal("the failure of the last slot did not block")
			}
			until := T0.Add(11 * time.Minute)
			sameCounter(t, res.Counters[0], model.Throttle{BlockedUntil: until, Level: 1}, "after blocking (counting starts over)")
			sameCounter(t, e.counter(t, "pair"), model.Throttle{BlockedUntil: until, Level: 1}, "stored")
			// The other reserved attempts fail too: they do not block again.
			for range 2 {
				if res := e.fail(t, r); res.Blocked[0] || res.Counters[0].Level != 1 {
					t.Fatalf("a later failure of the burst: %+v", res)
				}
			}
			e.clock.Advance(4 * time.Minute)
			e.refused(t, 6*time.Minute, r)
			e.clock.Advance(6*time.Minute - time.Millisecond)
			e.refused(t, time.Millisecond, r)
			e.clock.Advance(time.Millisecond)
			res2 := e.reserve(t, r)
			sameCounter(t, res2.Counters[0], model.Throttle{Attempts: 1, FirstAt: until, BlockedUntil: until, Level: 1}, "first after the block")
		}},
		{"LevelsDoubleUpToMax", func(t *testing.T, e *env) {
			r := model.ThrottleRule{Key: "acct", Limit: 2, Window: time.Hour, BlockBase: time.Minute, BlockMax: 5 * time.Minute}
			for level, block := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
				e.reserve(t, r)
				e.reserve(t, r)
				res := e.fail(t, r)
				if !res.Blocked[0] || res.Counters[0].Level != level+1 || !res.Counters[0].BlockedUntil.Equal(e.now().Add(block)) {
					t.Fatalf("block %d: %+v, want level %d for %v", level+1, res, level+1, block)
				}
				if res := e.fail(t, r); res.Blocked[0] || res.Counters[0].Level != level+1 {
					t.Fatalf("block %d: the second failure of the pair: %+v", level+1, res)
				}
				e.clock.Advance(block)
			}
		}},
		{"CalmWindowForgetsLevel", func(t *testing.T, e *env) {
			// a and b live the same life, and are asked again a second
			// apart.
			rule := func(key string) model.ThrottleRule {
				return model.ThrottleRule{Key: key, Limit: 1, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour}
			}
			a, b := rule("a"), rule("b")
			e.reserve(t, a, b)
			e.fail(t, a, b) // level 1 until T0+1m
			e.clock.Advance(time.Minute)
			e.reserve(t, a, b)
			e.fail(t, a, b) // level 2 until T0+3m
			until := T0.Add(3 * time.Minute)
			sameCounter(t, e.counter(t, "a"), model.Throttle{BlockedUntil: until, Level: 2}, "after two blocks")
			// Not calm for a whole window after the block: the level stays.
			e.clock.Advance(2*time.Minute + time.Hour - time.Second)
			if res := e.reserve(t, a); res.Counters[0].Level != 2 {
				t.Fatalf("level %d a second before a calm window, want 2", res.Counters[0].Level)
			}
			e.clock.Advance(time.Second)
			if res := e.reserve(t, b); res.Counters[0].Level != 0 {
				t.Fatalf("level %d after a calm window, want 0", res.Counters[0].Level)
			}
		}},
		{"AllOrNone", func(t *testing.T, e *env) {
			pair, acct := pairRule("pair"), model.ThrottleRule{Key: "acct", Limit: 1, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour}
			e.reserve(t, pair, acct)
			// The account refuses: the pair gives no slot either, in
			// either order.
			e.refused(t, model.InFlightRetry, pair, acct)
			e.refused(t, model.InFlightRetry, acct, pair)
			if c := e.counter(t, "pair"); c.Attempts != 1 {
				t.Fatalf("pair attempts %d after refusals, want 1", c.Attempts)
			}
			// Refused by a block on one counter: the longest wait is told.
			e.fail(t, pair, acct) // blocks the account for 1m
			res := e.refused(t, time.Minute, pair, acct)
			if len(res.Counters) != 2 || res.Counters[1].Level != 1 {
				t.Fatalf("counters of a refusal, in the order of the rules: %+v", res.Counters)
			}
		}},
		{"SuccessLiftsBlock", func(t *testing.T, e *env) {
			r := pairRule("pair")
			for range 3 {
				e.reserve(t, r)
			}
			e.fail(t, r)
			must(t, e.s.RecordSuccess(e.ctx, r), "success")
			sameCounter(t, e.counter(t, "pair"), model.Throttle{}, "after success")
			res := e.reserve(t, r)
			sameCounter(t, res.Counters[0], model.Throttle{Attempts: 1, FirstAt: T0}, "first after success")
			must(t, e.s.RecordSuccess(e.ctx, pairRule("unknown")), "success on no counter")
		}},
		{"StickySuccessKeepsBlock", func(t *testing.T, e *env) {
			r := model.ThrottleRule{Key: "acct", Limit: 2, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
			for range 2 {
				e.reserve(t, r)
			}
			if res := e.fail(t, r); !res.Blocked[0] {
				t.Fatal("not blocked")
			}
			// Another source's success resets the count and the level but
			// not the block the account is under.
			must(t, e.s.RecordSuccess(e.ctx, r), "success")
			until := T0.Add(time.Minute)
			sameCounter(t, e.counter(t, "acct"), model.Throttle{BlockedUntil: until}, "after a success")
			e.refused(t, time.Minute, r)
			e.clock.Advance(time.Minute)
			res2 := e.reserve(t, r)
			sameCounter(t, res2.Counters[0], model.Throttle{Attempts: 1, FirstAt: until, BlockedUntil: until}, "after the block")
		}},
		{"ReleaseSameWindowOnly", func(t *testing.T, e *env) {
			r := pairRule("pair")
			first := e.reserve(t, r)
			second := e.reserve(t, r)
			must(t, e.s.ReleaseAttempt(e.ctx, second, r), "release")
			sameCounter(t, e.counter(t, "pair"), model.Throttle{Attempts: 1, FirstAt: T0}, "after a release")
			// A new window owes the old one nothing.
			e.clock.Advance(10 * time.Minute)
			e.reserve(t, r)
			must(t, e.s.ReleaseAttempt(e.ctx, first, r), "release an old slot")
			sameCounter(t, e.counter(t, "pair"), model.Throttle{Attempts: 1, FirstAt: T0.Add(10 * time.Minute)}, "after releasing an old slot")
			// Nor does a block: it started the count over.
			taken := []model.Reservation{e.reserve(t, r), e.reserve(t, r)}
			res := e.fail(t, r)
			if !res.Blocked[0] {
				t.Fatal("not blocked")
			}
			for _, tk := range taken {
				must(t, e.s.ReleaseAttempt(e.ctx, tk, r), "release across a block")
			}
			sameCounter(t, e.counter(t, "pair"), res.Counters[0], "after releasing across a block")
		}},
		{"ReleaseEveryCounter", func(t *testing.T, e *env) {
			pair, acct := pairRule("pair"), acctRule("acct")
			e.reserve(t, pair, acct)
			taken := e.reserve(t, pair, acct)
			must(t, e.s.ReleaseAttempt(e.ctx, taken, pair, acct), "release")
			ths, err := e.s.GetThrottles(e.ctx, "pair", "acct")
			must(t, err, "read")
			if ths[0].Attempts != 1 || ths[1].Attempts != 1 {
				t.Fatalf("after release: %+v, want one attempt on each", ths)
			}
		}},
		{"Purge", func(t *testing.T, e *env) {
			calm, blocked := pairRule("calm"), pairRule("blocked")
			e.reserve(t, calm)
			for range 3 {
				e.reserve(t, blocked)
			}
			e.fail(t, blocked) // until T0+10m
			const maxWindow = time.Hour
			must(t, e.s.PurgeThrottles(e.ctx, T0.Add(maxWindow-time.Millisecond), maxWindow), "purge")
			if c := e.counter(t, "calm"); c.Attempts != 1 {
				t.Fatalf("a counter with an attempt within the window was purged: %+v", c)
			}
			must(t, e.s.PurgeThrottles(e.ctx, T0.Add(maxWindow), maxWindow), "purge")
			sameCounter(t, e.counter(t, "calm"), model.Throttle{}, "calm counter after purge")
			// A block is remembered for a window after it ends (its level
			// counts until then).
			if c := e.counter(t, "blocked"); c.Level != 1 {
				t.Fatalf("a recently blocked counter was purged: %+v", c)
			}
			must(t, e.s.PurgeThrottles(e.ctx, T0.Add(10*time.Minute+maxWindow), maxWindow), "purge")
			sameCounter(t, e.counter(t, "blocked"), model.Throttle{}, "blocked counter after purge")
		}},
		{"GetThrottles", func(t *testing.T, e *env) {
			if ths, err := e.s.GetThrottles(e.ctx); err != nil || len(ths) != 0 {
				t.Fatalf("no keys: %+v %v", ths, err)
			}
			e.reserve(t, pairRule("a"))
			e.reserve(t, pairRule("b"))
			e.reserve(t, pairRule("b"))
			ths, err := e.s.GetThrottles(e.ctx, "b", "none", "a")
			must(t, err, "read")
			if len(ths) != 3 || ths[0].Attempts != 2 || ths[1] != (model.Throttle{}) || ths[2].Attempts != 1 {
				t.Fatalf("counters %+v, want b (2), none (zero), a (1) in the order asked", ths)
			}
		}},
	}
}

// throttledFor fails t unless err is a *storage.ThrottledError asking to
// wait retry.
func throttledFor(t *testing.T, err error, retry time.Duration, what string) {
	t.Helper()
	var te *storage.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != retry {
		t.Fatalf("%s: %v, want refused by the counters, retry after %v", what, err, retry)
	}
}
