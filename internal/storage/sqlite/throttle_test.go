package sqlite

import (
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/together"

	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/masterkey"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func pairRule(key string) model.ThrottleRule {
	return model.ThrottleRule{Key: key, Limit: 3, Window: 10 * time.Minute, BlockBase: 10 * time.Minute, BlockMax: 10 * time.Minute}
}

// 32 callers race for the slots of one counter: exactly Limit win; their
// failures block the counter exactly once.
func TestReserveAttemptRace(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := pairRule("otp:pair:alice\x00ip")
	acct := model.ThrottleRule{Key: "otp:acct:alice", Limit: 10, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
	var mu sync.Mutex
	granted := 0
	together.Run(32, func(int) {
		res, err := s.ReserveAttempt(ctx, t0, r, acct)
		if err != nil {
			t.Error(err)
			return
		}
		if res.Granted {
			mu.Lock()
			granted++
			mu.Unlock()
		} else if res.RetryAfter != model.InFlightRetry {
			t.Errorf("refused with Retry-After %v while slots are in flight, want %v", res.RetryAfter, model.InFlightRetry)
		}
	})
	if granted != 3 {
		t.Fatalf("%d of 32 granted, want 3", granted)
	}
	blocks := 0
	together.Run(3, func(int) {
		res, err := s.RecordFailure(ctx, t0, r, acct)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		if res.Blocked[0] {
			blocks++
		}
		if res.Blocked[1] {
			t.Error("account blocked by 3 failures")
		}
		mu.Unlock()
	})
	ths, err := s.GetThrottles(ctx, r.Key, acct.Key)
	if err != nil {
		t.Fatal(err)
	}
	if blocks != 1 || ths[0].Level != 1 || !ths[0].BlockedUntil.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("%d failures reported the block; pair %+v", blocks, ths[0])
	}
	// The refused reservations took nothing from the account: all-or-none.
	if ths[1].Attempts != 3 {
		t.Fatalf("account attempts %d, want 3", ths[1].Attempts)
	}
}

// A burst of failures on a full account counter raises its level once.
func TestRecordFailureOneLevelPerCrossing(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	acct := model.ThrottleRule{Key: "password:acct:bob", Limit: 10, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
	together.Run(40, func(int) { s.ReserveAttempt(ctx, t0, acct) })
	together.Run(40, func(int) {
		if _, err := s.RecordFailure(ctx, t0, acct); err != nil {
			t.Error(err)
		}
	})
	ths, _ := s.GetThrottles(ctx, acct.Key)
	if ths[0].Level != 1 || !ths[0].BlockedUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after one burst: %+v, want level 1 blocked 1m", ths[0])
	}
	// A success keeps the sticky block but resets the level; release and
	// purge do what they say.
	if err := s.RecordSuccess(ctx, acct); err != nil {
		t.Fatal(err)
	}
	ths, _ = s.GetThrottles(ctx, acct.Key)
	if ths[0].Level != 0 || ths[0].BlockedUntil.IsZero() {
		t.Fatalf("after success: %+v, want the block kept, level 0", ths[0])
	}
	if err := s.PurgeThrottles(ctx, t0.Add(2*time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ths, _ = s.GetThrottles(ctx, acct.Key); ths[0] != (model.Throttle{}) {
		t.Fatalf("after purge: %+v", ths[0])
	}
}

// The database, its WAL and shared-memory files are readable by the
// server's user only, also when an older installation left them wider.
func TestFileModes(t *testing.T) {
	key, err := masterkey.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "modes.db")
	for round := range 2 {
		s, err := Open(context.Background(), path, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Audit(context.Background(), model.AuditEntry{Actor: "t", Action: "a", Subject: "s", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("round %d: %s has mode %v, want 0600", round, filepath.Base(f), fi.Mode().Perm())
			}
		}
		s.Close()
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			os.Chmod(f, 0o644) // as an older camotp left them
		}
	}
}
