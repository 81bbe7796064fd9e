package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
	"github.com/camotp/camotp/internal/together"
)

// Racers are how many goroutines race for one thing.
const (
	racers      = 32
	smallRacers = 16
)

// race calls fn(i) from n goroutines released together and returns the
// errors, by i.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	together.Run(n, func(i int) { errs[i] = fn(i) })
	return errs
}

// oneWinner fails t unless exactly one of errs is nil and every other one
// is loser; it returns the winner's index.
func oneWinner(t *testing.T, errs []error, loser error, what string) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: both %d and %d won", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Fatalf("%s: racer %d: %v, want %v", what, i, err, loser)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: nobody won", what)
	}
	return winner
}

// errLost is a racer's "false": the race was lost without an error.
var errLost = errors.New("lost")

func lostIfFalse(ok bool, err error) error {
	if err == nil && !ok {
		return errLost
	}
	return err
}

func raceCases() []testCase {
	return []testCase{
		{"AcceptStepOneWinner", func(t *testing.T, e *env) {
			errs := race(racers, func(int) error {
				return lostIfFalse(e.s.AcceptStep(e.ctx, "cam:A", 1, 1000, 0))
			})
			oneWinner(t, errs, errLost, fmt.Sprintf("%d racers for one step", racers))
			if st, _, err := e.s.OTPState(e.ctx, "cam:A"); err != nil || st.LastStep != 1000 {
				t.Fatalf("state %+v %v", st, err)
			}
		}},
		{"AcceptStepNeverGoesBack", func(t *testing.T, e *env) {
			won := make([]bool, racers)
			race(racers, func(i int) error {
				ok, err := e.s.AcceptStep(e.ctx, "cam:A", 1, int64(i+1), 0)
				won[i] = ok
				return err
			})
			if !won[racers-1] {
				t.Fatal("the latest step lost")
			}
			if st, _, err := e.s.OTPState(e.ctx, "cam:A"); err != nil || st.LastStep != racers {
				t.Fatalf("state %+v %v: an earlier step overwrote a later one", st, err)
			}
		}},
		{"ReserveAttemptLimit", func(t *testing.T, e *env) {
			pair, acct := pairRule("otp:pair:alice"), acctRule("otp:acct:alice")
			res := make([]model.Reservation, racers)
			for i, err := range race(racers, func(i int) (err error) {
				res[i], err = e.s.ReserveAttempt(e.ctx, e.now(), pair, acct)
				return err
			}) {
				must(t, err, fmt.Sprintf("racer %d", i))
			}
			granted := 0
			for _, r := range res {
				if r.Granted {
					granted++
				} else if r.RetryAfter != model.InFlightRetry {
					t.Fatalf("refused with Retry-After %v while slots are in flight, want %v", r.RetryAfter, model.InFlightRetry)
				}
			}
			if granted != pair.Limit {
				t.Fatalf("%d of %d granted, want %d", granted, racers, pair.Limit)
			}
			// The refused reservations took nothing from the account.
			if c := e.counter(t, acct.Key); c.Attempts != pair.Limit {
				t.Fatalf("account attempts %d, want %d", c.Attempts, pair.Limit)
			}
			// The granted attempts fail together: one failure blocks.
			results := make([]model.FailureResult, pair.Limit)
			for i, err := range race(pair.Limit, func(i int) (err error) {
				results[i], err = e.s.RecordFailure(e.ctx, e.now(), pair, acct)
				return err
			}) {
				must(t, err, fmt.Sprintf("failure %d", i))
			}
			blocks := 0
			for _, r := range results {
				if r.Blocked[0] {
					blocks++
				}
				if r.Blocked[1] {
					t.Fatal("the account was blocked by 3 failures")
				}
			}
			c := e.counter(t, pair.Key)
			if blocks != 1 || c.Level != 1 || !c.BlockedUntil.Equal(T0.Add(10*time.Minute)) {
				t.Fatalf("%d failures reported the block; pair %+v", blocks, c)
			}
		}},
		{"ReserveAttemptSharedAccount", func(t *testing.T, e *env) {
			// Every racer comes from its own source: the account's limit
			// decides, and a refusal takes no slot from the source.
			acct := acctRule("otp:acct:alice")
			res := make([]model.Reservation, racers)
			for i, err := range race(racers, func(i int) (err error) {
				res[i], err = e.s.ReserveAttempt(e.ctx, e.now(), pairRule(fmt.Sprintf("otp:pair:alice/%d", i)), acct)
				return err
			}) {
				must(t, err, fmt.Sprintf("racer %d", i))
			}
			keys := make([]string, racers)
			for i := range keys {
				keys[i] = fmt.Sprintf("otp:pair:alice/%d", i)
			}
			pairs, err := e.s.GetThrottles(e.ctx, keys...)
			must(t, err, "pairs")
			granted, taken := 0, 0
			for i, r := range res {
				if r.Granted {
					granted++
				}
				want := 0
				if r.Granted {
					want = 1
				}
				if pairs[i].Attempts != want {
					t.Fatalf("racer %d (granted %v): its source counter holds %d attempts", i, r.Granted, pairs[i].Attempts)
				}
				taken += pairs[i].Attempts
			}
			if granted != acct.Limit || taken != acct.Limit || e.counter(t, acct.Key).Attempts != acct.Limit {
				t.Fatalf("%d granted, %d taken from sources, want %d", granted, taken, acct.Limit)
			}
		}},
		{"RecordFailureLosesNoUpdate", func(t *testing.T, e *env) {
			const n, rounds = smallRacers, 3
			burst := model.ThrottleRule{Key: "burst", Limit: n, Window: time.Hour, BlockBase: time.Minute, BlockMax: time.Hour}
			acct := model.ThrottleRule{Key: "acct", Limit: 1000, Window: 24 * time.Hour, BlockBase: time.Minute, BlockMax: time.Hour}
			for round := 1; round <= rounds; round++ {
				granted := make([]bool, n)
				for i, err := range race(n, func(i int) error {
					r, err := e.s.ReserveAttempt(e.ctx, e.now(), burst, acct)
					granted[i] = r.Granted
					return err
				}) {
					must(t, err, fmt.Sprintf("round %d: reservation %d", round, i))
				}
				if slices.Contains(granted, false) {
					t.Fatalf("round %d: reservations %v, want all %d granted", round, granted, n)
				}
				ths, err := e.s.GetThrottles(e.ctx, burst.Key, acct.Key)
				must(t, err, "read")
				if ths[0].Attempts != n || ths[1].Attempts != n*round {
					t.Fatalf("round %d: attempts %d and %d, want %d and %d", round, ths[0].Attempts, ths[1].Attempts, n, n*round)
				}
				results := make([]model.FailureResult, n)
				for i, err := range race(n, func(i int) (err error) {
					results[i], err = e.s.RecordFailure(e.ctx, e.now(), burst, acct)
					return err
				}) {
					must(t, err, fmt.Sprintf("round %d: failure %d", round, i))
				}
				blocks := 0
				for _, r := range results {
					if r.Blocked[0] {
						blocks++
					}
					if r.Blocked[1] {
						t.Fatalf("round %d: the account counter was blocked", round)
					}
				}
				block := time.Minute << (round - 1)
				c := e.counter(t, burst.Key)
				if blocks != 1 || c.Level != round || c.Attempts != 0 || !c.BlockedUntil.Equal(e.now().Add(block)) {
					t.Fatalf("round %d: %d failures blocked; counter %+v, want level %d blocked for %v", round, blocks, c, round, block)
				}
				e.clock.Advance(block)
			}
			if c := e.counter(t, acct.Key); c.Attempts != n*rounds || c.Level != 0 {
				t.Fatalf("account counter %+v, want %d attempts", c, n*rounds)
			}
		}},
		{"ExchangeTokenOnce", func(t *testing.T, e *env) {
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}
			sessions := make([]string, smallRacers)
			errs := race(smallRacers, func(i int) (err error) {
				sessions[i], err = e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, nil, entry, model.Settlement{})
				return err
			})
			w := oneWinner(t, errs, storage.ErrNotFound, fmt.Sprintf("%d exchanges of one token", smallRacers))
			if _, err := e.s.LookupToken(e.ctx, model.TokenSession, sessions[w]); err != nil {
				t.Fatalf("the winner's session: %v", err)
			}
			if kinds := e.tokenKinds(t, "alice"); len(kinds) != 1 {
				t.Fatalf("alice's tokens %v, want one session", kinds)
			}
			if acts := e.auditActions(t, "alice"); len(acts) != 1 {
				t.Fatalf("audit %v, want one entry", acts)
			}
		}},
		{"ExchangeTokenStepOneWinner", func(t *testing.T, e *env) {
			// One code typed into several sign-ins of one user at once
			// (each its own pending token): one session starts, every
			// other exchange is told the step was used.
			entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}
			use := &model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: 1000}
			pending := make([]string, smallRacers)
			for i := range pending {
				pending[i] = e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			}
			errs := race(smallRacers, func(i int) error {
				_, err := e.s.ExchangeToken(e.ctx, pending[i], model.TokenSession, "alice", "bodycam", "ip", time.Hour, use, entry, model.Settlement{})
				return err
			})
			w := oneWinner(t, errs, storage.ErrStepUsed, fmt.Sprintf("%d exchanges with one step", smallRacers))
			sessions := 0
			for _, k := range e.tokenKinds(t, "alice") {
				if k == model.TokenSession {
					sessions++
				}
			}
			if sessions != 1 {
				t.Fatalf("%d sessions, want 1", sessions)
			}
			for i, p := range pending {
				_, err := e.s.LookupToken(e.ctx, model.TokenPending, p)
				if (err == nil) == (i == w) {
					t.Fatalf("pending token %d (winner %d): lookup %v", i, w, err)
				}
			}
			if acts := e.auditActions(t, "alice"); len(acts) != 1 {
				t.Fatalf("audit %v, want one entry", acts)
			}
			// One code sent twice for one sign-in: the step decides first,
			// so the loser learns the code was used (a replay, which counts
			// as a failure), not only that the sign-in is over.
			one := e.createToken(t, model.TokenPending, "bob", 5*time.Minute)
			use = &model.StepUse{Subject: "cam:B", SeedVersion: 1, Step: 1000}
			errs = race(smallRacers, func(int) error {
				return e.s.ConsumeToken(e.ctx, one, use, model.AuditEntry{Actor: "bob", Action: "radius.mfa", Subject: "bob", Result: "ok"}, model.Settlement{})
			})
			oneWinner(t, errs, storage.ErrStepUsed, fmt.Sprintf("%d consumptions of one token with one step", smallRacers))
		}},
		{"ConsumeTokenOnce", func(t *testing.T, e *env) {
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			entry := model.AuditEntry{Actor: "alice", Action: "radius.mfa", Subject: "alice", Result: "ok"}
			errs := race(smallRacers, func(int) error { return e.s.ConsumeToken(e.ctx, pending, nil, entry, model.Settlement{}) })
			oneWinner(t, errs, storage.ErrNotFound, fmt.Sprintf("%d consumptions of one token", smallRacers))
			if acts := e.auditActions(t, "alice"); len(acts) != 1 {
				t.Fatalf("audit %v, want one entry", acts)
			}
		}},
		{"ConsumeOIDCCodeOnce", func(t *testing.T, e *env) {
			e.issueCode(t, "ar1", "code-1")
			got := make([]model.OIDCAuthRequest, smallRacers)
			errs := race(smallRacers, func(i int) (err error) {
				got[i], err = e.s.ConsumeOIDCCode(e.ctx, "code-1")
				return err
			})
			w := oneWinner(t, errs, storage.ErrReplayed, fmt.Sprintf("%d exchanges of one code", smallRacers))
			if got[w].ID != "ar1" || got[w].SignIn == nil {
				t.Fatalf("the winner's request %+v", got[w])
			}
		}},
		{"CompleteOIDCAuthRequestOnce", func(t *testing.T, e *env) {
			e.authRequest(t, "ar1", "records", 10*time.Minute)
			errs := race(smallRacers, func(i int) error {
				return e.s.CompleteOIDCAuthRequest(e.ctx, "ar1", fmt.Appendf(nil, `{"racer":%d}`, i))
			})
			w := oneWinner(t, errs, storage.ErrNotFound, fmt.Sprintf("%d sign-ins answering one request", smallRacers))
			if a, err := e.s.OIDCAuthRequest(e.ctx, "ar1"); err != nil || string(a.SignIn) != fmt.Sprintf(`{"racer":%d}`, w) {
				t.Fatalf("request %+v %v, want the winner's sign-in", a, err)
			}
		}},
		{"UseBackupCodeOnce", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			must(t, e.s.SetBackupCodes(e.ctx, "alice", []string{"ONEONE", "TWOTWO"}), "set")
			errs := race(smallRacers, func(int) error { return lostIfFalse(e.s.UseBackupCode(e.ctx, "alice", "ONEONE")) })
			oneWinner(t, errs, errLost, fmt.Sprintf("%d uses of one backup code", smallRacers))
			if n, err := e.s.BackupCodesLeft(e.ctx, "alice"); err != nil || n != 1 {
				t.Fatalf("%d codes left %v, want 1", n, err)
			}
		}},
		{"UseSentCodeOnce", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			must(t, e.s.PutSentCode(e.ctx, "alice", "sms", "123456", 5*time.Minute), "put")
			errs := race(smallRacers, func(int) error { return lostIfFalse(e.s.UseSentCode(e.ctx, "alice", "sms", "123456")) })
			oneWinner(t, errs, errLost, fmt.Sprintf("%d uses of one sent code", smallRacers))
		}},
		{"StartOpVersions", func(t *testing.T, e *env) {
			for _, c := range []struct {
				op    model.Op
				first uint64 // the version before the race
			}{{model.OpProvision, 0}, {model.OpRotate, 1}} {
				sn := "CAM-" + string(c.op)
				if c.first == 0 {
					e.addCamera(t, sn)
				} else {
					e.provision(t, sn, testSeed(0xee))
				}
				versions := make([]uint64, smallRacers)
				for i, err := range race(smallRacers, func(i int) (err error) {
					s := testSeed(byte(i))
					versions[i], err = e.s.StartOp(e.ctx, sn, c.op, &s, []byte("challenge"), command(sn, fmt.Sprint(i)))
					return err
				}) {
					must(t, err, fmt.Sprintf("%s racer %d", c.op, i))
				}
				sorted := slices.Sorted(slices.Values(versions))
				for i, v := range sorted {
					if v != c.first+uint64(i)+1 {
						t.Fatalf("%s: versions %v, want each of %d..%d once", c.op, sorted, c.first+1, c.first+smallRacers)
					}
				}
				// What is pending is the last operation, whole: its version,
				// its seed and its command.
				last := slices.Index(versions, c.first+smallRacers)
				p, err := e.s.Pending(e.ctx, sn)
				must(t, err, "pending")
				want := testSeed(byte(last))
				want.Version = c.first + smallRacers
				if p.Version != want.Version || p.Seed == nil || !bytes.Equal(p.Payload, payload(sn, fmt.Sprint(last), p.Version)) {
					t.Fatalf("%s: pending %+v, want racer %d's v%d", c.op, p, last, want.Version)
				}
				sameSeed(t, *p.Seed, want, string(c.op)+": pending seed")
			}
		}},
		{"CompleteOpOnce", func(t *testing.T, e *env) {
			e.provision(t, "CAM-1", testSeed(1))
			s := testSeed(2)
			v := e.startOp(t, "CAM-1", model.OpRotate, &s)
			ops := make([]model.Op, smallRacers)
			errs := race(smallRacers, func(i int) (err error) {
				ops[i], err = e.s.CompleteOp(e.ctx, "CAM-1", v)
				return err
			})
			w := oneWinner(t, errs, storage.ErrConflict, fmt.Sprintf("%d completions of one operation", smallRacers))
			if ops[w] != model.OpRotate {
				t.Fatalf("completed %q", ops[w])
			}
			active, err := e.s.ActiveSeed(e.ctx, "CAM-1")
			must(t, err, "active seed")
			s.Version = v
			sameSeed(t, active, s, "active seed")
		}},
		{"AssignOnce", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-A")
			e.addUser(t, "boss")
			for i := range smallRacers {
				e.addUser(t, fmt.Sprintf("user%d", i))
				e.addCamera(t, fmt.Sprintf("CAM-%d", i))
			}
			errs := race(smallRacers, func(i int) error { return e.s.Assign(e.ctx, "CAM-A", fmt.Sprintf("user%d", i)) })
			w := oneWinner(t, errs, storage.ErrConflict, "users racing for one camera")
			if c, err := e.s.CameraOf(e.ctx, fmt.Sprintf("user%d", w)); err != nil || c.Serial != "CAM-A" {
				t.Fatalf("the winner's camera %+v %v", c, err)
			}
			errs = race(smallRacers, func(i int) error { return e.s.Assign(e.ctx, fmt.Sprintf("CAM-%d", i), "boss") })
			w = oneWinner(t, errs, storage.ErrConflict, "cameras racing for one user")
			if c, err := e.s.CameraOf(e.ctx, "boss"); err != nil || c.Serial != fmt.Sprintf("CAM-%d", w) {
				t.Fatalf("boss's camera %+v %v, want CAM-%d", c, err, w)
			}
		}},
		{"ClaimResendsOnce", func(t *testing.T, e *env) {
			// Nodes sweeping at once share the pending commands out, each
			// to exactly one.
			const cams, nodes = 40, 8
			s := testSeed(1)
			for i := range cams {
				sn := fmt.Sprintf("CAM-%04d", i)
				e.addCamera(t, sn)
				e.startOp(t, sn, model.OpProvision, &s)
			}
			claimed := make([][]string, nodes)
			for i, err := range race(nodes, func(i int) (err error) {
				claimed[i], err = e.s.ClaimResends(e.ctx, T0, 30*time.Second, 10)
				return err
			}) {
				must(t, err, fmt.Sprintf("node %d", i))
			}
			seen := map[string]int{}
			for _, c := range claimed {
				if len(c) > 10 {
					t.Fatalf("a node claimed %d, over its limit of 10", len(c))
				}
				for _, sn := range c {
					seen[sn]++
				}
			}
			if len(seen) != cams {
				t.Fatalf("%d cameras claimed, want all %d", len(seen), cams)
			}
			for sn, n := range seen {
				if n != 1 {
					t.Fatalf("%s claimed %d times", sn, n)
				}
			}
		}},
		{"AddUserOnce", func(t *testing.T, e *env) {
			errs := race(smallRacers, func(i int) error {
				return e.s.AddUser(e.ctx, model.User{Username: "alice", Email: fmt.Sprintf("%d@pd.example", i)}, "h")
			})
			w := oneWinner(t, errs, storage.ErrExists, "users racing for one name")
			if u, _, err := e.s.User(e.ctx, "alice"); err != nil || u.Email != fmt.Sprintf("%d@pd.example", w) {
				t.Fatalf("alice %+v %v, want the winner's", u, err)
			}
		}},
		{"ReadYourWrites", func(t *testing.T, e *env) {
			// A write that returned is seen by the next read, whichever
			// connection serves it, while other writes commit around it.
			steps := int64(200)
			if testing.Short() {
				steps = 50
			}
			errs := race(10, func(g int) error {
				if g < 2 { // token exchanges: transactions among the statements
					tok, err := e.s.CreateToken(e.ctx, model.TokenPending, fmt.Sprintf("u%d", g), "bodycam", "", time.Hour)
					for range steps {
						if err != nil {
							return err
						}
						tok, err = e.s.ExchangeToken(e.ctx, tok, model.TokenPending, fmt.Sprintf("u%d", g), "bodycam", "", time.Hour,
							nil, model.AuditEntry{Action: "t"}, model.Settlement{})
					}
					return err
				}
				subject := fmt.Sprintf("cam:%d", g)
				for step := int64(1); step <= steps; step++ {
					won, err := e.s.AcceptStep(e.ctx, subject, 1, step, 0)
					if err != nil || !won {
						return fmt.Errorf("%s step %d: won %v err %v", subject, step, won, err)
					}
					st, found, err := e.s.OTPState(e.ctx, subject)
					if err != nil || !found || st.LastStep != step {
						return fmt.Errorf("%s: wrote step %d, read %+v found %v err %v", subject, step, st, found, err)
					}
					if won, err := e.s.AcceptStep(e.ctx, subject, 1, step, 0); err != nil || won {
						return fmt.Errorf("%s: step %d accepted twice (%v)", subject, step, err)
					}
				}
				return nil
			})
			for _, err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		}},
		{"UnreservedSuccessRacesFailures", func(t *testing.T, e *env) {
			// One right code passing without a slot taken before, racing
			// wrong ones that take theirs (reserve, then fail): the right one
			// passes only while a slot is free, and no more wrong ones are
			// counted than the limit on either side of the success.
			pair, acct := pairRule("otp:pair:alice"), acctRule("otp:acct:alice")
			for round := range 8 {
				e.clock.Advance(time.Hour) // a fresh window and no block
				pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
				use := &model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: int64(1000 + round)}
				entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}
				var passed error
				failed := 0
				var mu sync.Mutex
				errs := race(smallRacers, func(i int) error {
					if i == round%smallRacers {
						_, passed = e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, use, entry,
							model.Settlement{Rules: []model.ThrottleRule{pair, acct}, Unreserved: true, At: e.now()})
						return nil
					}
					res, err := e.s.ReserveAttempt(e.ctx, e.now(), pair, acct)
					if err != nil || !res.Granted {
						return err
					}
					mu.Lock()
					failed++
					mu.Unlock()
					_, err = e.s.RecordFailure(e.ctx, e.now(), pair, acct)
					return err
				})
				for i, err := range errs {
					must(t, err, fmt.Sprintf("round %d, racer %d", round, i))
				}
				var te *storage.ThrottledError
				switch {
				case passed == nil:
					// Cleared by the success: later ones counted afresh.
					if failed > 2*pair.Limit-1 {
						t.Fatalf("round %d: %d failures counted around one success", round, failed)
					}
				case errors.As(passed, &te):
					if failed != pair.Limit {
						t.Fatalf("round %d: the right code was refused after %d failures, want %d", round, failed, pair.Limit)
					}
					if st, _, _ := e.s.OTPState(e.ctx, "cam:A"); st.LastStep == use.Step {
						t.Fatalf("round %d: a refused success took its step", round)
					}
				default:
					t.Fatalf("round %d: the right code: %v", round, passed)
				}
			}
		}},
	}
}
