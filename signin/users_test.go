package signin

import (
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// A user's counters are theirs only: alice2's block is not alice's, and
// unblocking alice2 leaves alice's counters.
func TestUsersBlockedAndUnblock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := newStore(t, t.TempDir(), clock)
	ctx := t.Context()
	for _, u := range []string{"alice", "alice2", "bob"} {
		if err := st.AddUser(ctx, model.User{Username: u, Email: u + "@pd.example"}, "h"); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := NewService(st, DefaultConfig(), clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	block := func(key string, attempts int) {
		t.Helper()
		r := model.ThrottleRule{Key: key, Limit: 1, Window: time.Hour, BlockBase: 10 * time.Minute, BlockMax: 10 * time.Minute}
		if attempts == 0 {
			r.Limit = 5 // counted, not blocked
		}
		if _, err := st.ReserveAttempt(ctx, now, r); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RecordFailure(ctx, now, r); err != nil {
			t.Fatal(err)
		}
	}
	block(pairKey("otp", "alice2", "192.0.2.1"), 1)
	block(acctKey("password", "bob"), 1)
	block(pairKey("otp", "alice", "192.0.2.1"), 0)
	users, total, err := svc.Users(ctx, model.UserQuery{})
	if err != nil || total != 3 {
		t.Fatalf("users: %d %v", total, err)
	}
	for _, u := range users {
		want := u.Username != "alice"
		if u.Blocked() != want || (want && !u.BlockedUntil.Equal(now.Add(10*time.Minute))) {
			t.Errorf("%s: blocked until %v", u.Username, u.BlockedUntil)
		}
	}
	if d, _ := svc.BlockedFor(ctx, "otp", "alice2", "192.0.2.1"); d != 10*time.Minute {
		t.Errorf("alice2 blocked for %v", d)
	}
	if d, _ := svc.BlockedFor(ctx, "otp", "alice2", "192.0.2.2"); d != 0 {
		t.Errorf("alice2 from another address blocked for %v", d)
	}
	n, err := svc.Unblock(ctx, "alice2", "sam", "192.0.2.50")
	if err != nil || n != 1 {
		t.Fatalf("unblock alice2: %d %v", n, err)
	}
	left, _ := st.ThrottlesIn(ctx, userRanges("alice")...)
	if len(left) != 1 {
		t.Fatalf("alice's counters after alice2's unblock: %+v", left)
	}
	if _, err := svc.Unblock(ctx, "nobody", "sam", ""); err == nil {
		t.Fatal("unblocked a user who does not exist")
	}
}

func TestUserOfKey(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{
		pairKey("otp", "alice", "2001:db8::1"):   "alice",
		acctKey("send", "a:b"):                   "a:b",
		pairKey("password", "x\x00y", "1.2.3.4"): "x",
		"radius:thing":                           "",
		"otp:pair:nouser":                        "",
	} {
		if got := userOfKey(key); got != want {
			t.Errorf("userOfKey(%q) = %q, want %q", key, got, want)
		}
	}
}
