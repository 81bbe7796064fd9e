package signin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// failOnce takes a slot and fails it, as a wrong code does.
func failOnce(t *testing.T, r *Regulator, kind, user, ip string, now time.Time) Decision {
	t.Helper()
	ctx := context.Background()
	d, err := r.Reserve(ctx, kind, user, ip, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Blocked {
		return d
	}
	if d, err = r.Fail(ctx, kind, user, ip, now); err != nil {
		t.Fatal(err)
	}
	return d
}

func reserve(t *testing.T, r *Regulator, kind, user, ip string, now time.Time) Decision {
	t.Helper()
	d, err := r.Reserve(context.Background(), kind, user, ip, now)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRegulatorPairBlock(t *testing.T) {
	ctx := context.Background()
	r := &Regulator{Store: newStore(t, t.TempDir(), nil), Limits: DefaultLimits()}
	now := base
	for i, wantLeft := range []int{2, 1} {
		if d := failOnce(t, r, "otp", "alice", "10.0.0.1", now); d.Blocked || d.AttemptsLeft != wantLeft || d.Lockout {
			t.Fatalf("failure %d: %+v, want %d left", i+1, d, wantLeft)
		}
	}
	d := failOnce(t, r, "otp", "alice", "10.0.0.1", now)
	if !d.Blocked || d.RetryAfter != 10*time.Minute || !d.Lockout {
		t.Fatalf("third failure: %+v, want blocked 10m by this failure", d)
	}
	// Blocked for that pair only.
	if d := reserve(t, r, "otp", "alice", "10.0.0.1", now.Add(9*time.Minute+59*time.Second)); !d.Blocked || d.RetryAfter != time.Second {
		t.Fatalf("before 10 minutes: %+v, want blocked 1s more", d)
	}
	if d := reserve(t, r, "otp", "alice", "10.0.0.2", now); d.Blocked || d.AttemptsLeft != 2 {
		t.Fatalf("other IP: %+v", d)
	}
	if d := reserve(t, r, "password", "alice", "10.0.0.1", now); d.Blocked {
		t.Fatal("otp block spilled over to password")
	}
	// An IPv6 source is its /64: a fresh address in it is the same source.
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"} {
		failOnce(t, r, "otp", "frank", ip, now)
	}
	if d := reserve(t, r, "otp", "frank", "2001:db8:1:2::77", now); !d.Blocked {
		t.Fatalf("fourth address of one /64: %+v, want blocked", d)
	}
	if d := reserve(t, r, "otp", "frank", "2001:db8:1:3::1", now); d.Blocked {
		t.Fatalf("another /64: %+v, want not blocked", d)
	}
	// Unblocked after 10 minutes, with a fresh count.
	if d := reserve(t, r, "otp", "alice", "10.0.0.1", now.Add(10*time.Minute)); d.Blocked || d.AttemptsLeft != 2 {
		t.Fatalf("after the block: %+v", d)
	}
	// Old failures expire: two now and one 11 minutes later do not block.
	failOnce(t, r, "otp", "bob", "ip", now)
	failOnce(t, r, "otp", "bob", "ip", now)
	if d := failOnce(t, r, "otp", "bob", "ip", now.Add(11*time.Minute)); d.Blocked || d.AttemptsLeft != 2 {
		t.Fatalf("stale failures counted: %+v", d)
	}
	// Success clears the pair.
	failOnce(t, r, "otp", "carol", "ip", now)
	failOnce(t, r, "otp", "carol", "ip", now)
	if d := reserve(t, r, "otp", "carol", "ip", now); d.Blocked || d.AttemptsLeft != 0 {
		t.Fatalf("third slot: %+v", d)
	}
	if err := r.Succeed(ctx, "otp", "carol", "ip"); err != nil {
		t.Fatal(err)
	}
	taken := reserve(t, r, "otp", "carol", "ip", now)
	if taken.AttemptsLeft != 2 {
		t.Fatalf("after success: %+v", taken)
	}
	// A released slot counts neither way.
	if err := r.Release(ctx, "otp", "carol", "ip", taken); err != nil {
		t.Fatal(err)
	}
	if d := reserve(t, r, "otp", "carol", "ip", now); d.AttemptsLeft != 2 {
		t.Fatalf("after release: %+v", d)
	}
	// A slot held across the end of its window gives nothing back to the
	// window that started since.
	old := reserve(t, r, "otp", "erin", "ip", now)
	later := now.Add(11 * time.Minute)
	if d := reserve(t, r, "otp", "erin", "ip", later); d.AttemptsLeft != 2 {
		t.Fatalf("new window: %+v", d)
	}
	if err := r.Release(ctx, "otp", "erin", "ip", old); err != nil {
		t.Fatal(err)
	}
	if d := reserve(t, r, "otp", "erin", "ip", later); d.AttemptsLeft != 1 {
		t.Fatalf("a release from the old window freed a slot of the new one: %+v", d)
	}
}

// Slots are taken before evaluation: with every slot held by attempts in
// flight, a further attempt is refused before it is evaluated.
func TestRegulatorSlotsInFlight(t *testing.T) {
	ctx := context.Background()
	r := &Regulator{Store: newStore(t, t.TempDir(), nil), Limits: DefaultLimits()}
	for i := range 3 {
		if d := reserve(t, r, "otp", "dave", "ip", base); d.Blocked || d.AttemptsLeft != 2-i {
			t.Fatalf("slot %d: %+v", i+1, d)
		}
	}
	d := reserve(t, r, "otp", "dave", "ip", base.Add(time.Minute))
	if !d.Blocked || d.RetryAfter != model.InFlightRetry {
		t.Fatalf("fourth attempt while three are in flight: %+v, want refused, ask again in %v", d, model.InFlightRetry)
	}
	// The three fail: exactly one of them blocks.
	var lockouts int
	for range 3 {
		d, err := r.Fail(ctx, "otp", "dave", "ip", base)
		if err != nil {
			t.Fatal(err)
		}
		if d.Lockout {
			lockouts++
		}
		if !d.Blocked {
			t.Fatalf("failure with the slots used: %+v", d)
		}
	}
	if lockouts != 1 {
		t.Fatalf("%d failures reported the lockout, want 1", lockouts)
	}
}

// A distributed guesser (one failure per IP) hits the per-account ceiling;
// the account block backs off exponentially but always ends.
func TestRegulatorAccountCeiling(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := &Regulator{Store: newStore(t, dir, nil), Limits: DefaultLimits()}
	now := base
	ip := 0
	guess := func() Decision {
		ip++
		return failOnce(t, r, "otp", "alice", fmt.Sprintf("198.51.100.%d", ip), now)
	}
	for i := 1; i < 10; i++ {
		if d := guess(); d.Blocked {
			t.Fatalf("blocked after %d distributed failures", i)
		}
	}
	d := guess()
	if !d.Blocked || d.RetryAfter != time.Minute {
		t.Fatalf("10th failure: %+v, want account blocked 1m", d)
	}
	// The real user from a fresh IP is blocked too, but only for a while.
	if d := reserve(t, r, "otp", "alice", "203.0.113.9", now.Add(59*time.Second)); !d.Blocked {
		t.Fatal("account block not applied to other IPs")
	}
	// Durable: a reopened store keeps the block.
	r2 := &Regulator{Store: newStore(t, dir, nil), Limits: DefaultLimits()}
	if d := reserve(t, r2, "otp", "alice", "203.0.113.9", now.Add(30*time.Second)); !d.Blocked {
		t.Fatal("block lost on reopen")
	}
	// Each further ceiling doubles the block, capped at BackoffMax.
	wants := []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for _, want := range wants {
		now = now.Add(d.RetryAfter)
		for range 9 {
			guess()
		}
		d = guess()
		if !d.Blocked || d.RetryAfter != want {
			t.Fatalf("next ceiling: %+v, want %v", d, want)
		}
	}
	// After the block the real user signs in; success resets the backoff.
	now = now.Add(time.Hour)
	if d := reserve(t, r, "otp", "alice", "203.0.113.9", now); d.Blocked {
		t.Fatal("account still blocked after its block ended")
	}
	if err := r.Succeed(ctx, "otp", "alice", "203.0.113.9"); err != nil {
		t.Fatal(err)
	}
	for range 9 {
		guess()
	}
	if d := guess(); d.RetryAfter != time.Minute {
		t.Fatalf("after success the backoff did not reset: %+v", d)
	}
}

// How many codes a distributed guesser (a fresh IP for every guess, as
// fast as the regulator lets it) gets evaluated against one account, from
// the real schedule: docs/api.md quotes these figures.
func TestRegulatorDistributedGuesserBudget(t *testing.T) {
	r := &Regulator{Store: newStore(t, t.TempDir(), nil), Limits: DefaultLimits()}
	now, ip := base, 0
	evaluated := map[time.Duration]int{}
	marks := []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	count := 0
	for now.Sub(base) < marks[len(marks)-1] {
		ip++
		d := reserve(t, r, "otp", "victim", fmt.Sprintf("ip-%d", ip), now)
		if d.Blocked {
			now = now.Add(d.RetryAfter)
			continue
		}
		count++
		for _, m := range marks {
			if now.Sub(base) < m {
				evaluated[m] = count
			}
		}
		if _, err := r.Fail(context.Background(), "otp", "victim", fmt.Sprintf("ip-%d", ip), now); err != nil {
			t.Fatal(err)
		}
	}
	// Each guess hits one of the 3 codes a ±1-step window accepts, of 10^6.
	for _, m := range marks {
		t.Logf("distributed guesser: %d codes evaluated in the first %v (chance of a hit ≈ %.3f%%)",
			evaluated[m], m, 100*float64(evaluated[m])*3/1e6)
	}
	if evaluated[time.Hour] != 60 || evaluated[24*time.Hour] != 290 {
		t.Fatalf("schedule changed: %v in an hour, %v in a day; update docs/api.md", evaluated[time.Hour], evaluated[24*time.Hour])
	}
}

// The wait a refused attempt is told: minutes for a block, seconds while
// attempts are in flight (not "1 minute" for a 5-second wait).
func TestBlockedErrorWording(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Minute, "You have reached the limit of attempts. Please try again in 10 minutes or ask your administrator to unblock you."},
		{61 * time.Second, "You have reached the limit of attempts. Please try again in 2 minutes or ask your administrator to unblock you."},
		{time.Minute, "You have reached the limit of attempts. Please try again in 1 minute or ask your administrator to unblock you."},
		{5 * time.Second, "Too many attempts at once. Please try again in 5 seconds."},
		{300 * time.Millisecond, "Too many attempts at once. Please try again in 1 second."},
	} {
		if got := (&BlockedError{RetryAfter: tc.d}).Error(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.d, got, tc.want)
		}
	}
}
