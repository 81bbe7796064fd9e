package signin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/together"
)

// wrongCode is a well-formed code that matches no step of seed within the
// resync range of at.
func wrongCode(t *testing.T, seed device.Seed, at time.Time) string {
	t.Helper()
	for n := 0; n < 1000; n++ {
		c := fmt.Sprintf("%06d", n*7919%1000000)
		hit := false
		for o := -12; o <= 12 && !hit; o++ {
			want, err := seed.Code(at.Add(time.Duration(o) * 30 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			hit = want == c
		}
		if !hit {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// auditResults counts alice's audit rows by result.
func auditResults(t *testing.T, st *sqlite.Store) map[string]int {
	t.Helper()
	log, err := st.AuditLog(context.Background(), "alice", 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range log {
		if e.Action == "login.mfa" {
			out[e.Result]++
		}
	}
	return out
}

// A camera code is evaluated before its throttle slot is checked (the
// check writes nothing; the slot is checked in the commit). Once blocked,
// the right code, a code showing the clock is off and a wrong code get
// the same answer, and none of them changes anything: no step used, no
// resync candidate, no slot, the sign-in still pending.
func TestBlockedCallerLearnsNothing(t *testing.T) {
	ctx, ip := context.Background(), "192.0.2.9"
	st, svc, seed := cameraFixture(t, func() time.Time { return base })
	pending, err := st.CreateToken(ctx, model.TokenPending, "alice", MethodBodycam, ip, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wrong := wrongCode(t, seed, base)
	for i := 1; i <= 3; i++ {
		_, err := svc.Verify(ctx, pending, wrong, ip)
		if blocked := errors.As(err, new(*BlockedError)); blocked != (i == 3) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	keys := []string{pairKey("otp", "alice", ip), acctKey("otp", "alice")}
	before, err := st.GetThrottles(ctx, keys...)
	if err != nil {
		t.Fatal(err)
	}
	audited := auditResults(t, st)
	for _, tc := range []struct{ name, code string }{
		{"the right code", codeAt(t, seed, 0)},
		{"a code of a camera whose clock is off", codeAt(t, seed, 5)},
		{"a wrong code", wrong},
	} {
		_, err := svc.Verify(ctx, pending, tc.code, ip)
		var be *BlockedError
		if !errors.As(err, &be) || be.RetryAfter != 10*time.Minute {
			t.Fatalf("%s while blocked: %v, want blocked for 10 minutes", tc.name, err)
		}
	}
	after, err := st.GetThrottles(ctx, keys...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if after[i] != before[i] {
			t.Fatalf("counter %s: %+v, was %+v", keys[i], after[i], before[i])
		}
	}
	if rec, found, err := st.OTPState(ctx, model.CameraSubject("SN1")); err != nil || found {
		t.Fatalf("replay record %+v (found %v, %v): a refused code wrote it", rec, found, err)
	}
	if _, err := st.LookupToken(ctx, model.TokenPending, pending); err != nil {
		t.Fatalf("the sign-in after refused codes: %v", err)
	}
	got := auditResults(t, st)
	if got["blocked"] != audited["blocked"]+3 || got["invalid"] != audited["invalid"] || got["ok"] != 0 || got["clock-off"] != 0 {
		t.Fatalf("audit %v, was %v: want three more blocked, nothing else", got, audited)
	}
}

// The right code sent together with fifteen wrong ones, none holding a
// slot before it is evaluated: the right one passes only while the
// counters allow it — refused when the three wrong ones the limit allows
// were counted first — and the wrong ones counted never exceed the limit
// on either side of the success.
func TestRightCodeAmongParallelWrongOnes(t *testing.T) {
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(base.Unix())
	now := func() time.Time { return time.Unix(clock.Load(), 0) }
	st, svc, seed := cameraFixture(t, now)
	passed, refused := 0, 0
	for round := range 8 {
		clock.Add(int64(2 * time.Hour / time.Second)) // no block, no window left over
		ip := fmt.Sprintf("192.0.2.%d", round+1)
		pending, err := st.CreateToken(ctx, model.TokenPending, "alice", MethodBodycam, ip, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		right, err := seed.Code(now())
		if err != nil {
			t.Fatal(err)
		}
		wrong := wrongCode(t, seed, now())
		audited := auditResults(t, st)
		var mu sync.Mutex
		var rightErr error
		codeErrs := 0
		together.Run(16, func(i int) {
			code := wrong
			if i == round {
				code = right
			}
			_, err := svc.Verify(ctx, pending, code, ip)
			mu.Lock()
			defer mu.Unlock()
			if i == round {
				rightErr = err
			} else if errors.As(err, new(*CodeError)) {
				codeErrs++
			} else if !errors.As(err, new(*BlockedError)) && !errors.Is(err, ErrBadToken) {
				t.Errorf("round %d: a wrong code: %v", round, err)
			}
		})
		invalid := auditResults(t, st)["invalid"] - audited["invalid"]
		switch {
		case rightErr == nil:
			passed++
			// At most two counted before it (it needed a slot), three after.
			if invalid > 5 || codeErrs > 4 {
				t.Fatalf("round %d: %d wrong codes evaluated (%d answered as wrong) around the success", round, invalid, codeErrs)
			}
		case errors.As(rightErr, new(*BlockedError)):
			refused++
			if invalid != 3 {
				t.Fatalf("round %d: the right code was refused after %d wrong ones, want the limit (3)", round, invalid)
			}
			if rec, _, _ := st.OTPState(ctx, model.CameraSubject("SN1")); rec.LastStep == now().Unix()/30 {
				t.Fatalf("round %d: a refused code used its step", round)
			}
		default:
			t.Fatalf("round %d: the right code: %v", round, rightErr)
		}
	}
	t.Logf("the right code among 16 at once: passed %d times, refused %d times", passed, refused)
}

// Before a code holds a throttle slot, its check does the same work
// whatever the code: every step of the window, no more (the search beyond
// the window waits for the slot). Right, replayed, clock-off and wrong
// codes alike.
func TestWindowCheckSameWorkForEveryCode(t *testing.T) {
	st := newStore(t, t.TempDir(), func() time.Time { return base })
	steps := 0
	c := &Checker{Store: st, computed: func(int64) { steps++ }}
	seed := testSeed
	used := model.OTPState{SeedVersion: seed.Version, LastStep: base.Unix()/30 - 1}
	for _, tc := range []struct {
		name string
		code string
		want Outcome
	}{
		{"right, at the expected step", codeAt(t, seed, 0), Accepted},
		{"right, a step early", codeAt(t, seed, -1), Replayed}, // that step is used
		{"right, a step late", codeAt(t, seed, 1), Accepted},
		{"of a camera 5 steps fast", codeAt(t, seed, 5), Invalid},
		{"wrong", wrongCode(t, seed, base), Invalid},
	} {
		steps = 0
		res, err := c.MatchWindowRecord("cam:SN1", seed, used, true, tc.code, base)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != tc.want || steps != 3 {
			t.Errorf("%s: %v after %d steps computed, want %v after 3 (the window)", tc.name, res.Outcome, steps, tc.want)
		}
	}
	// With the slot held, the whole check looks beyond the window.
	steps = 0
	if res, err := c.MatchRecord(context.Background(), "cam:SN1", seed, used, true, codeAt(t, seed, 5), base); err != nil || res.Outcome != ClockOff || steps <= 3 {
		t.Fatalf("the whole check of a clock-off code: %v %v after %d steps", res.Outcome, err, steps)
	}
}

// A blocked caller's right, wrong and clock-off codes reach the database
// the same way: one write that changes nothing (a refused slot) and no
// rerun, whatever the code.
func TestBlockedCodesSameWrites(t *testing.T) {
	ctx, ip := context.Background(), "192.0.2.9"
	st, svc, seed := cameraFixture(t, func() time.Time { return base })
	pending, err := st.CreateToken(ctx, model.TokenPending, "alice", MethodBodycam, ip, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wrong := wrongCode(t, seed, base)
	for range 3 {
		svc.Verify(ctx, pending, wrong, ip)
	}
	for _, tc := range []struct{ name, code string }{
		{"right", codeAt(t, seed, 0)}, {"clock-off", codeAt(t, seed, 5)}, {"wrong", wrong},
	} {
		before := st.WriterStats()
		if _, err := svc.Verify(ctx, pending, tc.code, ip); !errors.As(err, new(*BlockedError)) {
			t.Fatalf("%s code while blocked: %v", tc.name, err)
		}
		after := st.WriterStats()
		// The audit row of the refusal is the second write.
		if w, p, r := after.Writes-before.Writes, after.Pages-before.Pages, after.Reruns-before.Reruns; w != 2 || r != 0 {
			t.Fatalf("%s code while blocked: %d writes (%d pages, %d reruns), want the refused slot and the audit row", tc.name, w, p, r)
		}
	}
}
