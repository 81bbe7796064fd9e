package signin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/store"
)

// hangUpStore is the real store, except that the client "hangs up" (its
// request context is cancelled) just as the failure is recorded.
type hangUpStore struct {
	*store.Store
	hangUp context.CancelFunc
}

func (h hangUpStore) RecordFailure(ctx context.Context, now time.Time, rules ...store.ThrottleRule) (store.FailureResult, error) {
	h.hangUp()
	return h.Store.RecordFailure(ctx, now, rules...)
}

// A client that drops its request after the check still has its failure
// counted (and audited), and holds no slot afterwards: twelve dropped
// wrong passwords from four addresses must not lock the account for the
// rest of the hour without a failure on record (found by attacking it).
func TestDroppedRequestSettlesItsSlot(t *testing.T) {
	st := newStore(t, t.TempDir(), func() time.Time { return base })
	hash, err := password.HashWith(password.Params{Memory: 8 << 10, Time: 1, Threads: 1}, "right password")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(context.Background(), store.User{Username: "victim"}, hash); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Argon2 = password.Params{Memory: 8 << 10, Time: 1, Threads: 1}
	svc, err := NewService(st, cfg, func() time.Time { return base }, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		ctx, cancel := context.WithCancel(context.Background())
		svc.reg.Store = hangUpStore{Store: st, hangUp: cancel}
		_, err := svc.Login(ctx, "victim", "wrong password", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}[i%4], "")
		if err != nil && !errors.Is(err, ErrBadCredentials) && !errors.As(err, new(*BlockedError)) {
			t.Fatalf("dropped login %d: %v", i, err)
		}
	}
	ths, err := st.GetThrottles(context.Background(), acctKey("password", "victim"))
	if err != nil {
		t.Fatal(err)
	}
	// Ten failures crossed the ceiling once: a 1-minute block, level 1.
	if ths[0].Level != 1 || !ths[0].BlockedUntil.Equal(base.Add(time.Minute)) {
		t.Fatalf("account counter after 12 dropped wrong passwords: %+v, want blocked 1 minute at level 1", ths[0])
	}
	log, _ := st.AuditLog(context.Background(), "victim", 100)
	failed := 0
	for _, e := range log {
		if e.Result == "failed" {
			failed++
		}
	}
	if failed != 10 {
		t.Fatalf("%d failures audited, want 10", failed)
	}
}

// failingStore is the real store, except that recording a failure fails.
type failingStore struct{ *store.Store }

func (failingStore) RecordFailure(context.Context, time.Time, ...store.ThrottleRule) (store.FailureResult, error) {
	return store.FailureResult{}, errors.New("disk on fire")
}

// An evaluated wrong guess whose failure cannot be recorded keeps its slot
// (fail closed): storage trouble must not hand out free guesses.
func TestFailedFailureKeepsTheSlot(t *testing.T) {
	st := newStore(t, t.TempDir(), func() time.Time { return base })
	weak := password.Params{Memory: 8 << 10, Time: 1, Threads: 1}
	hash, err := password.HashWith(weak, "right password")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddUser(context.Background(), store.User{Username: "victim"}, hash); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Argon2 = weak
	svc, err := NewService(st, cfg, func() time.Time { return base }, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.reg.Store = failingStore{st}
	if _, err := svc.Login(context.Background(), "victim", "wrong password", "10.0.0.1", ""); err == nil {
		t.Fatal("a failure that could not be recorded was answered as a plain refusal")
	}
	ths, err := st.GetThrottles(context.Background(), pairKey("password", "victim", "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if ths[0].Attempts != 1 {
		t.Fatalf("pair counter %+v: the evaluated guess was given back", ths[0])
	}
}
