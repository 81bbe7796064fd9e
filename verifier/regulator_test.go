package verifier

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestRegulatorPairBlock(t *testing.T) {
	ctx := context.Background()
	r := &Regulator{Store: newStore(t, t.TempDir(), nil), Limits: DefaultLimits()}
	now := base
	for i, wantLeft := range []int{2, 1} {
		d, err := r.Fail(ctx, "otp", "alice", "10.0.0.1", now)
		if err != nil || d.Blocked || d.AttemptsLeft != wantLeft {
			t.Fatalf("failure %d: %+v %v, want %d left", i+1, d, err, wantLeft)
		}
	}
	d, _ := r.Fail(ctx, "otp", "alice", "10.0.0.1", now)
	if !d.Blocked || d.RetryAfter != 10*time.Minute {
		t.Fatalf("third failure: %+v, want blocked 10m", d)
	}
	// Blocked for that pair only.
	if d, _ := r.Check(ctx, "otp", "alice", "10.0.0.1", now.Add(9*time.Minute+59*time.Second)); !d.Blocked {
		t.Fatal("unblocked before 10 minutes")
	}
	if d, _ := r.Check(ctx, "otp", "alice", "10.0.0.2", now); d.Blocked || d.AttemptsLeft != 3 {
		t.Fatalf("other IP: %+v", d)
	}
	if d, _ := r.Check(ctx, "password", "alice", "10.0.0.1", now); d.Blocked {
		t.Fatal("otp block spilled over to password")
	}
	// Unblocked after 10 minutes, with a fresh count.
	if d, _ := r.Check(ctx, "otp", "alice", "10.0.0.1", now.Add(10*time.Minute)); d.Blocked || d.AttemptsLeft != 3 {
		t.Fatalf("after the block: %+v", d)
	}
	// Old failures expire: two now and one 11 minutes later do not block.
	r.Fail(ctx, "otp", "bob", "ip", now)
	r.Fail(ctx, "otp", "bob", "ip", now)
	if d, _ := r.Fail(ctx, "otp", "bob", "ip", now.Add(11*time.Minute)); d.Blocked || d.AttemptsLeft != 2 {
		t.Fatalf("stale failures counted: %+v", d)
	}
	// Success clears the pair.
	r.Fail(ctx, "otp", "carol", "ip", now)
	r.Fail(ctx, "otp", "carol", "ip", now)
	dc, _ := r.Check(ctx, "otp", "carol", "ip", now)
	if dc.Clean {
		t.Fatal("decision with two failures reported clean")
	}
	r.Succeed(ctx, "otp", "carol", "ip", dc)
	if d, _ := r.Check(ctx, "otp", "carol", "ip", now); d.AttemptsLeft != 3 {
		t.Fatalf("after success: %+v", d)
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
		d, err := r.Fail(ctx, "otp", "alice", fmt.Sprintf("198.51.100.%d", ip), now)
		if err != nil {
			t.Fatal(err)
		}
		return d
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
	if d, _ := r.Check(ctx, "otp", "alice", "203.0.113.9", now.Add(59*time.Second)); !d.Blocked {
		t.Fatal("account block not applied to other IPs")
	}
	// Durable: a reopened store keeps the block.
	r2 := &Regulator{Store: newStore(t, dir, nil), Limits: DefaultLimits()}
	if d, _ := r2.Check(ctx, "otp", "alice", "203.0.113.9", now.Add(30*time.Second)); !d.Blocked {
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
	if d, _ := r.Check(ctx, "otp", "alice", "203.0.113.9", now); d.Blocked {
		t.Fatal("account still blocked after its block ended")
	}
	dr, _ := r.Check(ctx, "otp", "alice", "203.0.113.9", now)
	r.Succeed(ctx, "otp", "alice", "203.0.113.9", dr)
	for range 9 {
		guess()
	}
	if d := guess(); d.RetryAfter != time.Minute {
		t.Fatalf("after success the backoff did not reset: %+v", d)
	}
}
