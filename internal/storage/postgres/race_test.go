package postgres

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
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/together"
)

var t0 = time.UnixMilli(1_700_000_000_000)

// nodes opens two stores on one fresh database: two camotp nodes. The
// racers of the tests below alternate between them.
func nodes(t *testing.T) [2]*Store {
	u := freshURL(t)
	return [2]*Store{openURL(t, u, nil), openURL(t, u, nil)}
}

// 32 callers on two nodes race to record one TOTP step: exactly one wins,
// round after round.
func TestAcceptStepRace(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	for step := int64(1); step <= 10; step++ {
		var won atomic.Int32
		together.Run(32, func(i int) {
			ok, err := n[i%2].AcceptStep(ctx, "BC4-0001", 1, step, 0)
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		})
		if won.Load() != 1 {
			t.Fatalf("step %d: %d winners, want 1", step, won.Load())
		}
	}
	st, _, err := n[0].OTPState(ctx, "BC4-0001")
	if err != nil || st.LastStep != 10 {
		t.Fatalf("state %+v %v", st, err)
	}
}

func pairRule(key string) model.ThrottleRule {
	return model.ThrottleRule{Key: key, Limit: 3, Window: 10 * time.Minute, BlockBase: 10 * time.Minute, BlockMax: 10 * time.Minute}
}

// 32 callers race for the slots of one counter: exactly Limit win, the
// refused ones take nothing from the second counter (all-or-none), and
// their failures block the counter exactly once.
func TestReserveAttemptRace(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	r := pairRule("otp:pair:alice\x00ip")
	acct := model.ThrottleRule{Key: "otp:acct:alice", Limit: 10, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
	var granted atomic.Int32
	together.Run(32, func(i int) {
		res, err := n[i%2].ReserveAttempt(ctx, t0, r, acct)
		if err != nil {
			t.Error(err)
			return
		}
		if res.Granted {
			granted.Add(1)
		} else if res.RetryAfter != model.InFlightRetry {
			t.Errorf("refused with Retry-After %v while slots are in flight, want %v", res.RetryAfter, model.InFlightRetry)
		}
	})
	if granted.Load() != 3 {
		t.Fatalf("%d of 32 granted, want 3", granted.Load())
	}
	var blocks atomic.Int32
	together.Run(3, func(i int) {
		res, err := n[i%2].RecordFailure(ctx, t0, r, acct)
		if err != nil {
			t.Error(err)
			return
		}
		if res.Blocked[0] {
			blocks.Add(1)
		}
		if res.Blocked[1] {
			t.Error("account blocked by 3 failures")
		}
	})
	ths, err := n[0].GetThrottles(ctx, r.Key, acct.Key)
	if err != nil {
		t.Fatal(err)
	}
	if blocks.Load() != 1 || ths[0].Level != 1 || !ths[0].BlockedUntil.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("%d failures reported the block; pair %+v", blocks.Load(), ths[0])
	}
	if ths[1].Attempts != 3 {
		t.Fatalf("account attempts %d, want 3", ths[1].Attempts)
	}
}

// Counters under concurrent reservations and failures lose no update:
// 200 reservations on a roomy counter count 200; each burst of failures
// on a full counter raises the level by exactly one, and the block doubles
// with it.
func TestThrottleNoLostUpdate(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	roomy := model.ThrottleRule{Key: "roomy", Limit: 1000, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour}
	together.Run(200, func(i int) {
		if res, err := n[i%2].ReserveAttempt(ctx, t0, roomy); err != nil || !res.Granted {
			t.Errorf("reserve: %+v %v", res, err)
		}
	})
	if ths, _ := n[0].GetThrottles(ctx, roomy.Key); ths[0].Attempts != 200 {
		t.Fatalf("200 reservations counted %d", ths[0].Attempts)
	}
	acct := model.ThrottleRule{Key: "acct", Limit: 10, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
	now := t0
	for level := 1; level <= 3; level++ {
		together.Run(40, func(i int) { n[i%2].ReserveAttempt(ctx, now, acct) })
		var blocked atomic.Int32
		together.Run(40, func(i int) {
			res, err := n[i%2].RecordFailure(ctx, now, acct)
			if err != nil {
				t.Error(err)
			} else if res.Blocked[0] {
				blocked.Add(1)
			}
		})
		ths, _ := n[0].GetThrottles(ctx, acct.Key)
		block := time.Minute << (level - 1)
		if blocked.Load() != 1 || ths[0].Level != level || !ths[0].BlockedUntil.Equal(now.Add(block)) {
			t.Fatalf("burst %d: %d failures blocked; counter %+v, want level %d blocked %v", level, blocked.Load(), ths[0], level, block)
		}
		now = now.Add(block)
	}
}

// One pending token exchanged by 16 callers at once makes one session:
// the others fail with ErrNotFound, and only one audit row is written.
func TestExchangeTokenRace(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	r := pairRule("otp:pair:alice\x00ip")
	pending, err := n[0].CreateToken(ctx, model.TokenPending, "alice", "bodycam", "ip", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	n[0].ReserveAttempt(ctx, time.Now(), r)
	var won, lost atomic.Int32
	var mu sync.Mutex
	var session string
	together.Run(16, func(i int) {
		tok, err := n[i%2].ExchangeToken(ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour,
			nil, model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}, model.Clear(r))
		switch {
		case err == nil:
			won.Add(1)
			mu.Lock()
			session = tok
			mu.Unlock()
		case errors.Is(err, storage.ErrNotFound):
			lost.Add(1)
		default:
			t.Error(err)
		}
	})
	if won.Load() != 1 || lost.Load() != 15 {
		t.Fatalf("%d exchanges won, %d lost; want 1 and 15", won.Load(), lost.Load())
	}
	toks, _ := n[0].UserTokens(ctx, "alice")
	log, _ := n[0].AuditLog(ctx, "alice", 100)
	ths, _ := n[0].GetThrottles(ctx, r.Key)
	if len(toks) != 1 || toks[0].Kind != model.TokenSession || len(log) != 1 || ths[0] != (model.Throttle{}) {
		t.Fatalf("tokens %+v, %d audit rows, counter %+v", toks, len(log), ths[0])
	}
	if _, err := n[1].LookupToken(ctx, model.TokenSession, session); err != nil {
		t.Fatalf("the winner's session: %v", err)
	}
	if err := n[1].ConsumeToken(ctx, pending, nil, model.AuditEntry{Action: "x", Subject: "alice"}, model.Settlement{}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consume an exchanged token: %v", err)
	}
}

// An authorization code redeemed by 16 callers at once is redeemed once;
// the others are told it was replayed.
func TestConsumeOIDCCodeRace(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	s := n[0]
	if err := s.CreateOIDCAuthRequest(ctx, "ar", "app", []byte(`{}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteOIDCAuthRequest(ctx, "ar", []byte(`{"user":"alice"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveOIDCCode(ctx, "ar", "the-code", time.Minute); err != nil {
		t.Fatal(err)
	}
	var won, replayed atomic.Int32
	together.Run(16, func(i int) {
		a, err := n[i%2].ConsumeOIDCCode(ctx, "the-code")
		switch {
		case err == nil && a.ID == "ar":
			won.Add(1)
		case errors.Is(err, storage.ErrReplayed):
			replayed.Add(1)
		default:
			t.Errorf("%+v %v", a, err)
		}
	})
	if won.Load() != 1 || replayed.Load() != 15 {
		t.Fatalf("%d redeemed, %d replayed; want 1 and 15", won.Load(), replayed.Load())
	}
}

// Single-use codes are used once under a race: a backup code, a sent code.
func TestOneTimeCodesRace(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	s := n[0]
	if err := s.AddUser(ctx, model.User{Username: "alice", Email: "a@pd"}, "h"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBackupCodes(ctx, "alice", []string{"AAAA2222", "BBBB3333"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSentCode(ctx, "alice", "login", "123456", time.Minute); err != nil {
		t.Fatal(err)
	}
	var backup, sent atomic.Int32
	together.Run(32, func(i int) {
		if i%2 == 0 {
			if ok, err := n[i/2%2].UseBackupCode(ctx, "alice", "AAAA2222"); err != nil {
				t.Error(err)
			} else if ok {
				backup.Add(1)
			}
			return
		}
		if ok, err := n[i/2%2].UseSentCode(ctx, "alice", "login", "123456"); err != nil {
			t.Error(err)
		} else if ok {
			sent.Add(1)
		}
	})
	if backup.Load() != 1 || sent.Load() != 1 {
		t.Fatalf("backup code used %d times, sent code %d times", backup.Load(), sent.Load())
	}
	if left, _ := s.BackupCodesLeft(ctx, "alice"); left != 1 {
		t.Fatalf("%d backup codes left, want 1", left)
	}
}

// Concurrent operations on one camera take versions one after another
// (the row is locked), and two cameras assigned to one user at once: one
// assignment wins.
func TestCameraRaces(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	s := n[0]
	for _, sn := range []string{"BC4-0001", "BC4-0002"} {
		if err := s.AddCamera(ctx, sn, device.Body4, "pk"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddUser(ctx, model.User{Username: "alice", Email: "a@pd"}, "h"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[uint64]bool{}
	together.Run(8, func(i int) {
		seed := device.DefaultSeed([]byte(fmt.Sprintf("seed-%02d-0123456789ab", i)))
		v, err := n[i%2].StartOp(ctx, "BC4-0001", model.OpProvision, &seed, nil, func(v uint64) ([]byte, error) { return []byte{byte(v)}, nil })
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		seen[v] = true
		mu.Unlock()
	})
	c, _ := s.Camera(ctx, "BC4-0001")
	if len(seen) != 8 || c.PendingVersion != 8 {
		t.Fatalf("versions %v, pending version %d: want 1..8", seen, c.PendingVersion)
	}
	p, err := s.Pending(ctx, "BC4-0001")
	if err != nil || p.Seed.Version != 8 || p.Payload[0] != 8 {
		t.Fatalf("pending %+v %v: the last operation's seed and payload", p, err)
	}
	var ok, conflict atomic.Int32
	together.Run(2, func(i int) {
		err := n[i].Assign(ctx, fmt.Sprintf("BC4-000%d", i+1), "alice")
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, storage.ErrConflict):
			conflict.Add(1)
		default:
			t.Error(err)
		}
	})
	if ok.Load() != 1 || conflict.Load() != 1 {
		t.Fatalf("%d assignments, %d conflicts: want one each", ok.Load(), conflict.Load())
	}
}

// One right code passing without a slot taken before (an unreserved
// ExchangeToken) and 31 wrong ones taking theirs (reserve, then fail on
// the other node), on two nodes at once, round after round. Never more
// wrong ones counted than the limit on either side of the success; when
// the right one is refused, exactly the limit was taken first and it took
// nothing — the counters' row locks hold across nodes.
func TestUnreservedAttemptsRace(t *testing.T) {
	n := nodes(t)
	ctx := context.Background()
	for round := range 6 {
		now := t0.Add(time.Duration(round) * time.Hour)
		r := pairRule(fmt.Sprintf("otp:pair:alice\x00ip%d", round))
		acct := model.ThrottleRule{Key: "otp:acct:alice", Limit: 10, Window: time.Minute, BlockBase: time.Minute, BlockMax: time.Hour, Sticky: true}
		pending, err := n[0].CreateToken(ctx, model.TokenPending, "alice", "bodycam", "ip", 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		use := &model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: int64(100 + round)}
		var counted, blocks atomic.Int32
		var passed error
		together.Run(32, func(i int) {
			if i == round {
				_, passed = n[i%2].ExchangeToken(ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, use,
					model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"},
					model.Settlement{Rules: []model.ThrottleRule{r, acct}, Unreserved: true, At: now})
				return
			}
			res, err := n[i%2].ReserveAttempt(ctx, now, r, acct)
			if err != nil || !res.Granted {
				if err != nil {
					t.Error(err)
				}
				return
			}
			counted.Add(1)
			f, err := n[(i+1)%2].RecordFailure(ctx, now, r, acct)
			if err != nil {
				t.Error(err)
				return
			}
			if f.Blocked[0] {
				blocks.Add(1)
			}
		})
		st, _, err := n[1].OTPState(ctx, "cam:A")
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case passed == nil:
			if c := counted.Load(); c > 5 || st.LastStep != use.Step {
				t.Fatalf("round %d: %d failures counted around the success; replay record %+v", round, c, st)
			}
		case errors.As(passed, new(*storage.ThrottledError)):
			if c := counted.Load(); c != 3 || blocks.Load() != 1 || st.LastStep == use.Step {
				t.Fatalf("round %d: refused after %d failures (%d blocks); replay record %+v", round, c, blocks.Load(), st)
			}
		default:
			t.Fatalf("round %d: the right code: %v", round, passed)
		}
	}
}
