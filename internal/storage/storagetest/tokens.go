package storagetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// createToken makes a token at the store's now.
func (e *env) createToken(t *testing.T, kind, user string, ttl time.Duration) string {
	t.Helper()
	raw, err := e.s.CreateToken(e.ctx, kind, user, "bodycam", "192.0.2.1", ttl)
	must(t, err, "create "+kind+" token")
	if raw == "" {
		t.Fatal("empty token")
	}
	return raw
}

// tokenKinds lists the kinds of username's live tokens, newest first.
func (e *env) tokenKinds(t *testing.T, username string) []string {
	t.Helper()
	ts, err := e.s.UserTokens(e.ctx, username)
	must(t, err, "tokens of "+username)
	var kinds []string
	for _, tk := range ts {
		if tk.Username != username {
			t.Fatalf("UserTokens(%s) lists a token of %s", username, tk.Username)
		}
		kinds = append(kinds, tk.Kind)
	}
	return kinds
}

// auditActions lists the actions of subject's audit entries, newest first.
func (e *env) auditActions(t *testing.T, subject string) []string {
	t.Helper()
	log, err := e.s.AuditLog(e.ctx, subject, 100)
	must(t, err, "audit log")
	var out []string
	for _, a := range log {
		out = append(out, a.Action)
	}
	return out
}

func tokenCases() []testCase {
	return []testCase{
		{"CreateAndLookup", func(t *testing.T, e *env) {
			raw := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			tk, err := e.s.LookupToken(e.ctx, model.TokenPending, raw)
			must(t, err, "lookup")
			if tk.Kind != model.TokenPending || tk.Username != "alice" || tk.Method != "bodycam" || tk.IP != "192.0.2.1" {
				t.Fatalf("token %+v", tk)
			}
			sameTime(t, tk.CreatedAt, T0, "created")
			sameTime(t, tk.ExpiresAt, T0.Add(5*time.Minute), "expires")
			for name, look := range map[string]struct{ kind, raw string }{
				"another kind":   {model.TokenSession, raw},
				"an unknown one": {model.TokenPending, "bm90LWEtdG9rZW4"},
				"empty":          {model.TokenPending, ""},
				"a huge one":     {model.TokenPending, strings.Repeat("A", 4096)},
			} {
				_, err := e.s.LookupToken(e.ctx, look.kind, look.raw)
				mustBe(t, err, storage.ErrNotFound, "lookup "+name)
			}
			if other := e.createToken(t, model.TokenPending, "alice", 5*time.Minute); other == raw {
				t.Fatal("two tokens are the same")
			}
		}},
		{"Expiry", func(t *testing.T, e *env) {
			raw := e.createToken(t, model.TokenSession, "alice", 5*time.Minute)
			e.clock.Advance(5*time.Minute - time.Second)
			if _, err := e.s.LookupToken(e.ctx, model.TokenSession, raw); err != nil {
				t.Fatalf("just before its end: %v", err)
			}
			e.clock.Advance(time.Second)
			_, err := e.s.LookupToken(e.ctx, model.TokenSession, raw)
			mustBe(t, err, storage.ErrNotFound, "at its end")
			if kinds := e.tokenKinds(t, "alice"); len(kinds) != 0 {
				t.Fatalf("UserTokens lists expired tokens: %v", kinds)
			}
		}},
		{"Delete", func(t *testing.T, e *env) {
			raw := e.createToken(t, model.TokenSession, "alice", time.Hour)
			keep := e.createToken(t, model.TokenSession, "alice", time.Hour)
			must(t, e.s.DeleteToken(e.ctx, raw), "delete")
			_, err := e.s.LookupToken(e.ctx, model.TokenSession, raw)
			mustBe(t, err, storage.ErrNotFound, "deleted token")
			must(t, e.s.DeleteToken(e.ctx, raw), "delete again")
			must(t, e.s.DeleteToken(e.ctx, "bm90LWEtdG9rZW4"), "delete unknown")
			if _, err := e.s.LookupToken(e.ctx, model.TokenSession, keep); err != nil {
				t.Fatalf("the other token: %v", err)
			}
		}},
		{"DeleteTokensByKind", func(t *testing.T, e *env) {
			for _, k := range []string{model.TokenSession, model.TokenSession, model.TokenTrust, model.TokenPending} {
				e.createToken(t, k, "alice", time.Hour)
			}
			bob := e.createToken(t, model.TokenSession, "bob", time.Hour)
			must(t, e.s.DeleteTokens(e.ctx, "alice", model.TokenSession), "delete alice's sessions")
			kinds := e.tokenKinds(t, "alice")
			if len(kinds) != 2 || strings.Contains(strings.Join(kinds, ","), model.TokenSession) {
				t.Fatalf("alice's tokens after deleting her sessions: %v", kinds)
			}
			must(t, e.s.DeleteTokens(e.ctx, "alice", ""), "delete all of alice's")
			if kinds := e.tokenKinds(t, "alice"); len(kinds) != 0 {
				t.Fatalf("alice's tokens after deleting all: %v", kinds)
			}
			if _, err := e.s.LookupToken(e.ctx, model.TokenSession, bob); err != nil {
				t.Fatalf("bob's session: %v", err)
			}
		}},
		{"UserTokensNewestFirst", func(t *testing.T, e *env) {
			e.createToken(t, model.TokenSession, "alice", time.Hour)
			e.clock.Advance(time.Second)
			e.createToken(t, model.TokenTrust, "alice", time.Minute) // expires first
			e.clock.Advance(time.Second)
			e.createToken(t, model.TokenPending, "alice", time.Hour)
			e.createToken(t, model.TokenSession, "bob", time.Hour)
			e.clock.Advance(2 * time.Minute)
			ts, err := e.s.UserTokens(e.ctx, "alice")
			must(t, err, "list")
			if len(ts) != 2 || ts[0].Kind != model.TokenPending || ts[1].Kind != model.TokenSession {
				t.Fatalf("tokens %+v, want the pending one, then the session", ts)
			}
			sameTime(t, ts[0].CreatedAt, T0.Add(2*time.Second), "created")
			sameTime(t, ts[1].ExpiresAt, T0.Add(time.Hour), "expires")
			if ts[0].Method != "bodycam" || ts[0].IP != "192.0.2.1" {
				t.Fatalf("token %+v", ts[0])
			}
		}},
		{"PurgeExpired", func(t *testing.T, e *env) {
			short := e.createToken(t, model.TokenSession, "alice", time.Minute)
			long := e.createToken(t, model.TokenSession, "alice", time.Hour)
			e.clock.Advance(2 * time.Minute)
			must(t, e.s.PurgeExpired(e.ctx), "purge")
			// Back in time, a token that was only hidden would come back.
			e.clock.Advance(-2 * time.Minute)
			_, err := e.s.LookupToken(e.ctx, model.TokenSession, short)
			mustBe(t, err, storage.ErrNotFound, "purged token")
			if _, err := e.s.LookupToken(e.ctx, model.TokenSession, long); err != nil {
				t.Fatalf("live token purged: %v", err)
			}
		}},
		{"PendingCheck", func(t *testing.T, e *env) {
			for name, raw := range map[string]string{"unknown": "bm90LWEtdG9rZW4", "empty": "", "huge": strings.Repeat("A", 4096),
				"a session": e.createToken(t, model.TokenSession, "alice", time.Hour)} {
				_, err := e.s.PendingCheck(e.ctx, raw)
				mustBe(t, err, storage.ErrNotFound, "PendingCheck of "+name)
			}
			e.addUser(t, "alice")
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			pc, err := e.s.PendingCheck(e.ctx, pending)
			must(t, err, "PendingCheck of a user without camera")
			if pc.Token.Kind != model.TokenPending || pc.Token.Username != "alice" || pc.Token.Method != "bodycam" ||
				pc.Token.IP != "192.0.2.1" || pc.Camera != nil {
				t.Fatalf("pending check %+v (camera %+v), want alice's token and no camera", pc.Token, pc.Camera)
			}
			sameTime(t, pc.Token.ExpiresAt, T0.Add(5*time.Minute), "expires")
			v := e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			if _, err := e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-1"), v, 100, 1); err != nil {
				t.Fatal(err)
			}
			pc, err = e.s.PendingCheck(e.ctx, pending)
			must(t, err, "PendingCheck of a user with a camera")
			if pc.Camera == nil || pc.Camera.Camera.Serial != "CAM-1" || pc.Camera.Camera.State != model.StateProvisioned ||
				pc.Camera.Camera.Version != v || !pc.Camera.OTPFound || pc.Camera.OTP.LastStep != 100 ||
				pc.Camera.OTP.Drift != 1 || pc.Camera.Seed == nil {
				t.Fatalf("pending check's camera %+v", pc.Camera)
			}
			want := testSeed(1)
			want.Version = v
			sameSeed(t, *pc.Camera.Seed, want, "seed")
			e.clock.Advance(5 * time.Minute)
			_, err = e.s.PendingCheck(e.ctx, pending)
			mustBe(t, err, storage.ErrNotFound, "PendingCheck of an expired token")
		}},
		{"ExchangeToken", func(t *testing.T, e *env) {
			pair, acct := pairRule("otp:pair:alice"), acctRule("otp:acct:alice")
			e.reserve(t, pair, acct)
			e.fail(t, pair, acct)
			e.reserve(t, pair, acct)
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			e.clock.Advance(time.Second)
			entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok", SourceIP: "192.0.2.1", Detail: "bodycam"}
			session, err := e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "192.0.2.1", time.Hour, nil, entry, model.Clear(pair, acct))
			must(t, err, "exchange")
			_, err = e.s.LookupToken(e.ctx, model.TokenPending, pending)
			mustBe(t, err, storage.ErrNotFound, "pending token after the exchange")
			tk, err := e.s.LookupToken(e.ctx, model.TokenSession, session)
			must(t, err, "session")
			if tk.Username != "alice" || tk.Method != "bodycam" || tk.IP != "192.0.2.1" {
				t.Fatalf("session %+v", tk)
			}
			sameTime(t, tk.ExpiresAt, e.now().Add(time.Hour), "session expiry")
			log, err := e.s.AuditLog(e.ctx, "alice", 10)
			must(t, err, "audit")
			if len(log) != 1 || log[0].Action != entry.Action || log[0].Result != "ok" || log[0].Detail != "bodycam" {
				t.Fatalf("audit %+v, want the exchange's entry", log)
			}
			sameTime(t, log[0].At, e.now(), "audit time (zero At is now)")
			ths, err := e.s.GetThrottles(e.ctx, pair.Key, acct.Key)
			must(t, err, "counters")
			if ths[0] != (model.Throttle{}) || ths[1].Attempts != 0 || ths[1].Level != 0 {
				t.Fatalf("counters after the exchange: %+v, want cleared", ths)
			}
		}},
		{"ExchangeTokenUnreserved", func(t *testing.T, e *env) {
			// An attempt evaluated without a slot passes in one commit when
			// its counters would have given it one, and clears them.
			pair, acct := pairRule("otp:pair:alice"), acctRule("otp:acct:alice")
			for range 2 {
				e.reserve(t, pair, acct)
				e.fail(t, pair, acct)
			}
			entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}
			unreserved := func() model.Settlement {
				return model.Settlement{Rules: []model.ThrottleRule{pair, acct}, Unreserved: true, At: e.now()}
			}
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			use := &model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: 100}
			_, err := e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, use, entry, unreserved())
			must(t, err, "unreserved exchange with a slot left")
			if c := e.counter(t, pair.Key); c != (model.Throttle{}) || e.counter(t, acct.Key).Attempts != 0 {
				t.Fatalf("counters after the exchange: %+v, %+v", c, e.counter(t, acct.Key))
			}
			// Blocked, or every slot in flight: refused, and nothing at all
			// happens — the token stays pending, the step unused, no audit.
			for _, tc := range []struct {
				name  string
				setUp func()
				retry time.Duration
			}{
				{"blocked", func() {
					for range 3 {
						e.reserve(t, pair, acct)
						e.fail(t, pair, acct)
					}
					e.clock.Advance(time.Minute)
				}, 9 * time.Minute},
				{"slots in flight", func() {
					e.clock.Advance(10 * time.Minute)
					for range 3 {
						e.reserve(t, pair, acct)
					}
				}, model.InFlightRetry},
			} {
				tc.setUp()
				pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
				before := e.counter(t, pair.Key)
				acts := len(e.auditActions(t, "alice"))
				_, err := e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour,
					&model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: 200}, entry, unreserved())
				throttledFor(t, err, tc.retry, tc.name)
				err = e.s.ConsumeToken(e.ctx, pending, &model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: 200}, entry, unreserved())
				throttledFor(t, err, tc.retry, tc.name+", consume")
				if _, err := e.s.LookupToken(e.ctx, model.TokenPending, pending); err != nil {
					t.Fatalf("%s: the pending token: %v", tc.name, err)
				}
				if st, _, err := e.s.OTPState(e.ctx, "cam:A"); err != nil || st.LastStep != 100 {
					t.Fatalf("%s: replay record %+v, %v: the refused step was taken", tc.name, st, err)
				}
				if c := e.counter(t, pair.Key); c != before {
					t.Fatalf("%s: counter %+v, was %+v", tc.name, c, before)
				}
				if n := len(e.auditActions(t, "alice")); n != acts {
					t.Fatalf("%s: %d audit rows, was %d", tc.name, n, acts)
				}
			}
		}},
		{"ExchangeTokenOnce", func(t *testing.T, e *env) {
			pair := pairRule("otp:pair:alice")
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}
			_, err := e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, nil, entry, model.Clear(pair))
			must(t, err, "exchange")
			e.reserve(t, pair)
			// The token is gone: a second exchange does nothing at all.
			_, err = e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, nil, entry, model.Clear(pair))
			mustBe(t, err, storage.ErrNotFound, "second exchange")
			if kinds := e.tokenKinds(t, "alice"); len(kinds) != 1 {
				t.Fatalf("alice's tokens after a second exchange: %v, want one session", kinds)
			}
			if acts := e.auditActions(t, "alice"); len(acts) != 1 {
				t.Fatalf("audit after a second exchange: %v, want one entry", acts)
			}
			if c := e.counter(t, pair.Key); c.Attempts != 1 {
				t.Fatalf("a refused exchange cleared the counter: %+v", c)
			}
			_, err = e.s.ExchangeToken(e.ctx, "bm90LWEtdG9rZW4", model.TokenSession, "alice", "bodycam", "ip", time.Hour, nil, entry, model.Settlement{})
			mustBe(t, err, storage.ErrNotFound, "exchange of an unknown token")
		}},
		{"ExchangeExpiredToken", func(t *testing.T, e *env) {
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			e.clock.Advance(5 * time.Minute)
			entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}
			_, err := e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, nil, entry, model.Settlement{})
			mustBe(t, err, storage.ErrNotFound, "exchange of an expired token")
			if kinds := e.tokenKinds(t, "alice"); len(kinds) != 0 {
				t.Fatalf("an expired pending token became %v", kinds)
			}
		}},
		{"ExchangeTokenTakesTheStep", func(t *testing.T, e *env) {
			pair := pairRule("otp:pair:alice")
			if won, err := e.s.AcceptStep(e.ctx, "cam:A", 1, 100, 0); err != nil || !won {
				t.Fatalf("accept step 100: %v %v", won, err)
			}
			e.reserve(t, pair)
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}
			// A used step: nothing happens, the sign-in is still pending.
			for _, step := range []int64{100, 99} {
				_, err := e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour,
					&model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: step}, entry, model.Clear(pair))
				mustBe(t, err, storage.ErrStepUsed, fmt.Sprintf("exchange with used step %d", step))
			}
			if _, err := e.s.LookupToken(e.ctx, model.TokenPending, pending); err != nil {
				t.Fatalf("pending token after a refused exchange: %v", err)
			}
			if kinds := e.tokenKinds(t, "alice"); len(kinds) != 1 || kinds[0] != model.TokenPending {
				t.Fatalf("alice's tokens after a refused exchange: %v, want the pending one", kinds)
			}
			if acts := e.auditActions(t, "alice"); len(acts) != 0 {
				t.Fatalf("audit after a refused exchange: %v", acts)
			}
			if c := e.counter(t, pair.Key); c.Attempts != 1 {
				t.Fatalf("a refused exchange cleared the counter: %+v", c)
			}
			// A token that is not live: the step is not used up either.
			_, err := e.s.ExchangeToken(e.ctx, "bm90LWEtdG9rZW4", model.TokenSession, "alice", "bodycam", "ip", time.Hour,
				&model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: 101, Drift: 1}, entry, model.Settlement{})
			mustBe(t, err, storage.ErrNotFound, "exchange of an unknown token")
			if st, _, err := e.s.OTPState(e.ctx, "cam:A"); err != nil || st.LastStep != 100 {
				t.Fatalf("state %+v %v after an exchange of an unknown token, want step 100", st, err)
			}
			// A new step: used up with the exchange, in one commit.
			session, err := e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour,
				&model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: 101, Drift: 1}, entry, model.Clear(pair))
			must(t, err, "exchange with a new step")
			if _, err := e.s.LookupToken(e.ctx, model.TokenSession, session); err != nil {
				t.Fatalf("session: %v", err)
			}
			st, _, err := e.s.OTPState(e.ctx, "cam:A")
			if err != nil || st.SeedVersion != 1 || st.LastStep != 101 || st.Drift != 1 {
				t.Fatalf("state %+v %v, want step 101, drift 1", st, err)
			}
			if c := e.counter(t, pair.Key); c != (model.Throttle{}) {
				t.Fatalf("counter after the exchange: %+v, want cleared", c)
			}
			// The step is used: AcceptStep says so too.
			if won, err := e.s.AcceptStep(e.ctx, "cam:A", 1, 101, 0); err != nil || won {
				t.Fatalf("step 101 accepted again: %v %v", won, err)
			}
			// A new seed starts fresh.
			pending = e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			_, err = e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour,
				&model.StepUse{Subject: "cam:A", SeedVersion: 2, Step: 5}, entry, model.Settlement{})
			must(t, err, "exchange with the first step of a new seed")
		}},
		{"ConsumeTokenTakesTheStep", func(t *testing.T, e *env) {
			if won, err := e.s.AcceptStep(e.ctx, "cam:A", 1, 100, 0); err != nil || !won {
				t.Fatalf("accept step 100: %v %v", won, err)
			}
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			entry := model.AuditEntry{Actor: "alice", Action: "radius.mfa", Subject: "alice", Result: "ok"}
			err := e.s.ConsumeToken(e.ctx, pending, &model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: 100}, entry, model.Settlement{})
			mustBe(t, err, storage.ErrStepUsed, "consume with a used step")
			if _, err := e.s.LookupToken(e.ctx, model.TokenPending, pending); err != nil {
				t.Fatalf("pending token after a refused consume: %v", err)
			}
			if acts := e.auditActions(t, "alice"); len(acts) != 0 {
				t.Fatalf("audit after a refused consume: %v", acts)
			}
			must(t, e.s.ConsumeToken(e.ctx, pending, &model.StepUse{Subject: "cam:A", SeedVersion: 1, Step: 102, Drift: 2}, entry, model.Settlement{}),
				"consume with a new step")
			if st, _, err := e.s.OTPState(e.ctx, "cam:A"); err != nil || st.LastStep != 102 || st.Drift != 2 {
				t.Fatalf("state %+v %v, want step 102, drift 2", st, err)
			}
			if kinds := e.tokenKinds(t, "alice"); len(kinds) != 0 {
				t.Fatalf("alice's tokens after the consume: %v", kinds)
			}
		}},
		{"ConsumeToken", func(t *testing.T, e *env) {
			pair := pairRule("otp:pair:alice")
			e.reserve(t, pair)
			e.fail(t, pair)
			pending := e.createToken(t, model.TokenPending, "alice", 5*time.Minute)
			entry := model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok", SourceIP: "ip"}
			must(t, e.s.ConsumeToken(e.ctx, pending, nil, entry, model.Clear(pair)), "consume")
			_, err := e.s.LookupToken(e.ctx, model.TokenPending, pending)
			mustBe(t, err, storage.ErrNotFound, "pending token after ConsumeToken")
			if kinds := e.tokenKinds(t, "alice"); len(kinds) != 0 {
				t.Fatalf("ConsumeToken left tokens %v, want none (no session)", kinds)
			}
			if acts := e.auditActions(t, "alice"); len(acts) != 1 || acts[0] != "login.mfa" {
				t.Fatalf("audit %v", acts)
			}
			res := e.reserve(t, pair)
			if res.Counters[0].Attempts != 1 {
				t.Fatalf("counter after ConsumeToken: %+v, want cleared (this attempt the first)", res.Counters[0])
			}
			// Once only: a second consume does nothing.
			mustBe(t, e.s.ConsumeToken(e.ctx, pending, nil, entry, model.Clear(pair)), storage.ErrNotFound, "second consume")
			if acts := e.auditActions(t, "alice"); len(acts) != 1 {
				t.Fatalf("audit after a second consume: %v", acts)
			}
			if c := e.counter(t, pair.Key); c.Attempts != 1 {
				t.Fatalf("a refused consume cleared the counter: %+v", c)
			}
		}},
	}
}

func otpCases() []testCase {
	return []testCase{
		{"AcceptStep", func(t *testing.T, e *env) {
			if _, found, err := e.s.OTPState(e.ctx, "cam:A"); err != nil || found {
				t.Fatalf("state of a new subject: found %v %v", found, err)
			}
			steps := []struct {
				version     uint64
				step, drift int64
				won         bool
				last        model.OTPState // state after
			}{
				{1, 100, 0, true, model.OTPState{SeedVersion: 1, LastStep: 100}},
				{1, 100, 0, false, model.OTPState{SeedVersion: 1, LastStep: 100}}, // replay
				{1, 99, 0, false, model.OTPState{SeedVersion: 1, LastStep: 100}},  // older code
				{1, 101, 1, true, model.OTPState{SeedVersion: 1, LastStep: 101, Drift: 1}},
				{2, 50, 0, true, model.OTPState{SeedVersion: 2, LastStep: 50}},   // a new seed starts fresh
				{1, 200, 0, false, model.OTPState{SeedVersion: 2, LastStep: 50}}, // the old seed is dead
				{2, 50, 0, false, model.OTPState{SeedVersion: 2, LastStep: 50}},
				{2, 51, -1, true, model.OTPState{SeedVersion: 2, LastStep: 51, Drift: -1}},
			}
			for i, s := range steps {
				won, err := e.s.AcceptStep(e.ctx, "cam:A", s.version, s.step, s.drift)
				must(t, err, "accept")
				if won != s.won {
					t.Fatalf("step %d (v%d step %d): won %v, want %v", i, s.version, s.step, won, s.won)
				}
				st, found, err := e.s.OTPState(e.ctx, "cam:A")
				if err != nil || !found || st.SeedVersion != s.last.SeedVersion || st.LastStep != s.last.LastStep ||
					st.Drift != s.last.Drift || st.ResyncOffset != nil {
					t.Fatalf("step %d: state %+v found %v %v, want %+v", i, st, found, err, s.last)
				}
			}
			// Another subject has its own record.
			if won, err := e.s.AcceptStep(e.ctx, "cam:B", 1, 100, 0); err != nil || !won {
				t.Fatalf("another subject: %v %v", won, err)
			}
		}},
		{"Resync", func(t *testing.T, e *env) {
			if _, err := e.s.AcceptStep(e.ctx, "cam:A", 1, 100, 1); err != nil {
				t.Fatal(err)
			}
			must(t, e.s.SetResync(e.ctx, "cam:A", 1, 7, 110), "set resync")
			must(t, e.s.SetResync(e.ctx, "cam:A", 1, 8, 111), "replace resync")
			st, _, err := e.s.OTPState(e.ctx, "cam:A")
			must(t, err, "state")
			if st.SeedVersion != 1 || st.LastStep != 100 || st.Drift != 1 || st.ResyncOffset == nil || *st.ResyncOffset != 8 || st.ResyncStep != 111 {
				t.Fatalf("state %+v, want the accepted step and drift kept, the latest candidate", st)
			}
			// Accepting a step ends the candidate.
			if won, err := e.s.AcceptStep(e.ctx, "cam:A", 1, 112, 8); err != nil || !won {
				t.Fatalf("confirming step: %v %v", won, err)
			}
			st, _, _ = e.s.OTPState(e.ctx, "cam:A")
			if st.LastStep != 112 || st.Drift != 8 || st.ResyncOffset != nil {
				t.Fatalf("state after confirmation %+v", st)
			}
		}},
		{"ResyncOfANewSubjectOrSeed", func(t *testing.T, e *env) {
			must(t, e.s.SetResync(e.ctx, "cam:new", 1, -6, 94), "resync of a new subject")
			st, found, err := e.s.OTPState(e.ctx, "cam:new")
			if err != nil || !found || st.SeedVersion != 1 || st.LastStep >= 0 || st.Drift != 0 || st.ResyncOffset == nil ||
				*st.ResyncOffset != -6 || st.ResyncStep != 94 {
				t.Fatalf("state %+v found %v %v, want the candidate and no step accepted", st, found, err)
			}
			if _, err := e.s.AcceptStep(e.ctx, "cam:A", 1, 100, 3); err != nil {
				t.Fatal(err)
			}
			must(t, e.s.SetResync(e.ctx, "cam:A", 2, 5, 60), "resync under a new seed")
			st, _, _ = e.s.OTPState(e.ctx, "cam:A")
			if st.SeedVersion != 2 || st.LastStep >= 0 || st.Drift != 0 || st.ResyncOffset == nil || *st.ResyncOffset != 5 {
				t.Fatalf("state %+v, want the new seed's: nothing accepted, no drift, the candidate", st)
			}
			if won, err := e.s.AcceptStep(e.ctx, "cam:A", 2, 61, 5); err != nil || !won {
				t.Fatalf("first step of the new seed: %v %v", won, err)
			}
		}},
		{"ResyncOfAnOldSeedChangesNothing", func(t *testing.T, e *env) {
			// A check that read the seed before a rotation finished may
			// report a resync candidate under the old version after a code
			// of the new seed was accepted: it must not bring the old
			// version back, or the accepted step could be used again.
			if won, err := e.s.AcceptStep(e.ctx, "cam:A", 2, 50, 0); err != nil || !won {
				t.Fatalf("accept: %v %v", won, err)
			}
			must(t, e.s.SetResync(e.ctx, "cam:A", 1, 5, 300), "late resync of the old seed")
			st, _, err := e.s.OTPState(e.ctx, "cam:A")
			must(t, err, "state")
			if st.SeedVersion != 2 || st.LastStep != 50 {
				t.Fatalf("state %+v, want seed 2 at step 50", st)
			}
			if won, err := e.s.AcceptStep(e.ctx, "cam:A", 2, 50, 0); err != nil || won {
				t.Fatalf("step 50 of seed 2 accepted again (%v %v)", won, err)
			}
		}},
	}
}
