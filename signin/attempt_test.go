package signin

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/password"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/together"
)

// hangUpStore is the real store, except that the client "hangs up" (its
// request context is cancelled) just as the failure is recorded.
type hangUpStore struct {
	*sqlite.Store
	hangUp context.CancelFunc
}

func (h hangUpStore) RecordFailure(ctx context.Context, now time.Time, rules ...model.ThrottleRule) (model.FailureResult, error) {
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
	if err := st.AddUser(context.Background(), model.User{Username: "victim"}, hash); err != nil {
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
type failingStore struct{ *sqlite.Store }

func (failingStore) RecordFailure(context.Context, time.Time, ...model.ThrottleRule) (model.FailureResult, error) {
	return model.FailureResult{}, errors.New("disk on fire")
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
	if err := st.AddUser(context.Background(), model.User{Username: "victim"}, hash); err != nil {
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

// The per-source share of password checks holds when 50 callers from one
// source arrive at once: never more than the share in progress.
func TestSourceShareParallel(t *testing.T) {
	sh := newSourceShare(4)
	var mu sync.Mutex
	in, peak, refused := 0, 0, 0
	together.Run(50, func(int) {
		if !sh.take("198.51.100.7") {
			mu.Lock()
			refused++
			mu.Unlock()
			return
		}
		mu.Lock()
		in++
		peak = max(peak, in)
		mu.Unlock()
		time.Sleep(time.Millisecond) // hold it a moment, as a hash does
		mu.Lock()
		in--
		mu.Unlock()
		sh.done("198.51.100.7")
	})
	if peak > 4 || peak < 1 {
		t.Fatalf("peak %d in progress (%d refused); want 1 to 4", peak, refused)
	}
	if !sh.take("203.0.113.1") || len(sh.n) != 1 {
		t.Fatalf("another source refused, or counters left behind: %v", sh.n)
	}
}
