package storagetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// rotationCases are the scheduled seed rollover: which cameras a node may
// claim, the hourly share every node counts against, and a sign-in code
// of a rotating camera's new seed completing its rotation.
func rotationCases() []testCase {
	return []testCase{
		{"ClaimRotationsRules", func(t *testing.T, e *env) {
			for _, sn := range []string{"OLD-1", "OLD-2", "OLD-3", "OFF-1", "BUSY-1"} {
				e.provision(t, sn, testSeed(1))
			}
			e.addCamera(t, "REG-1")
			e.clock.Advance(time.Hour)
			e.provision(t, "NEW-1", testSeed(2)) // seed proven an hour later: not due
			for _, sn := range []string{"OLD-1", "OLD-2", "OLD-3", "BUSY-1", "NEW-1", "REG-1"} {
				must(t, e.s.SetPresence(e.ctx, sn, true, e.now()), "online")
			}
			e.startOp(t, "BUSY-1", model.OpRotate, ptr(testSeed(3))) // in flight: not claimed
			hour := T0.Add(time.Hour)
			claim := func(allowed int, lease time.Time) []string {
				t.Helper()
				got, err := e.s.ClaimRotations(e.ctx, model.RotationClaim{Now: e.now(), DueBefore: T0, LeaseBefore: lease, Hour: hour, Allowed: allowed})
				must(t, err, "claim")
				return slices.Sorted(slices.Values(got))
			}
			counts := func(what string, want model.RotationCounts) {
				t.Helper()
				got, err := e.s.RotationCounts(e.ctx, T0, T0.Add(-time.Minute), hour)
				must(t, err, "counts")
				if got != want {
					t.Fatalf("%s: counts %+v, want %+v", what, got, want)
				}
			}
			counts("before", model.RotationCounts{Fleet: 6, Due: 4, Rotating: 1})
			first := claim(2, e.now())
			if len(first) != 2 {
				t.Fatalf("claimed %v, want 2 of the hour's 2", first)
			}
			if got := claim(2, e.now()); len(got) != 0 {
				t.Fatalf("claimed %v past the hour's share", got)
			}
			counts("after 2", model.RotationCounts{Fleet: 6, Due: 4, Rotating: 1, Started: 2})
			// The claimed cameras are leased: a larger share gives the rest.
			rest := claim(10, e.now().Add(-time.Minute))
			all := slices.Sorted(slices.Values(append(slices.Clone(first), rest...)))
			if !slices.Equal(all, []string{"OLD-1", "OLD-2", "OLD-3"}) {
				t.Fatalf("claimed %v then %v, want OLD-1..3 each once (not offline, in flight, registered, nor fresh)", first, rest)
			}
			// OFF-1 comes back: claimed next, once its lease is not an obstacle.
			must(t, e.s.SetPresence(e.ctx, "OFF-1", true, e.now()), "online")
			if got := claim(10, e.now().Add(-time.Minute)); !slices.Equal(got, []string{"OFF-1"}) {
				t.Fatalf("claimed %v when OFF-1 came back, want OFF-1", got)
			}
			// A lease that ran out (its node died before starting) is claimed again.
			e.clock.Advance(time.Minute)
			if got := claim(100, e.now()); len(got) != 4 {
				t.Fatalf("claimed %v after the leases ran out, want the 4 due cameras", got)
			}
			counts("after all", model.RotationCounts{Fleet: 6, Due: 4, Rotating: 1, Started: 8})
		}},
		{"ClaimRotationsShareRace", func(t *testing.T, e *env) {
			for i := range 40 {
				sn := "CAM-" + string(rune('A'+i/26)) + string(rune('a'+i%26))
				e.provision(t, sn, testSeed(1))
				must(t, e.s.SetPresence(e.ctx, sn, true, e.now()), "online")
			}
			e.clock.Advance(time.Hour)
			got := make([][]string, racers)
			errs := race(racers, func(i int) error {
				var err error
				got[i], err = e.s.ClaimRotations(e.ctx, model.RotationClaim{Now: e.now(), DueBefore: T0, LeaseBefore: T0,
					Hour: e.now().Truncate(time.Hour), Allowed: 7})
				return err
			})
			seen := map[string]bool{}
			for i, err := range errs {
				must(t, err, "claim")
				for _, sn := range got[i] {
					if seen[sn] {
						t.Fatalf("%s claimed twice", sn)
					}
					seen[sn] = true
				}
			}
			if len(seen) != 7 {
				t.Fatalf("%d cameras claimed by %d racing nodes, want the hour's share of 7", len(seen), racers)
			}
		}},
		{"RotationKeepsTheReplacedSeedAWhile", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			old := e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			check := func(what string) *model.CameraCheck {
				t.Helper()
				pc, err := e.s.PendingCheck(e.ctx, e.createToken(t, model.TokenPending, "alice", time.Hour))
				must(t, err, "pending check: "+what)
				return pc.Camera
			}
			if cc := check("provisioned"); cc.Previous != nil {
				t.Fatalf("a provisioned camera has a replaced seed: %+v", cc.Previous)
			}
			// Proven by its ack: the old seed is kept for the grace.
			v := e.startOp(t, "CAM-1", model.OpRotate, ptr(testSeed(2)))
			e.clock.Advance(time.Second)
			_, err := e.s.CompleteOp(e.ctx, "CAM-1", v)
			must(t, err, "complete rotate")
			cc := check("rotated")
			want := testSeed(1)
			want.Version = old
			if cc.Previous == nil || cc.Seed == nil || cc.Seed.Version != v {
				t.Fatalf("rotated camera: %+v, want v%d active and v%d kept", cc, v, old)
			}
			sameSeed(t, *cc.Previous, want, "replaced seed")
			sameTime(t, cc.PreviousUntil, e.now().Add(model.RotationGrace), "replaced seed kept until")
			// Proven by a sign-in code: the same.
			v3 := e.startOp(t, "CAM-1", model.OpRotate, ptr(testSeed(3)))
			use := &model.StepUse{Subject: model.CameraSubject("CAM-1"), SeedVersion: v3, Step: 100, Rotation: "CAM-1"}
			_, err = e.s.ExchangeToken(e.ctx, e.createToken(t, model.TokenPending, "alice", time.Hour), model.TokenSession, "alice", "bodycam", "ip",
				time.Hour, use, model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}, model.Settlement{})
			must(t, err, "exchange with a code of the new seed")
			if cc = check("rotated by a code"); cc.Previous == nil || cc.Previous.Version != v || cc.Seed.Version != v3 {
				t.Fatalf("camera rotated by a code: %+v, want v%d active and v%d kept", cc, v3, v)
			}
			// A wipe drops it with the active seed, and a new provision
			// has none.
			w := e.startOp(t, "CAM-1", model.OpWipe, nil)
			if cc = check("wiping"); cc.Previous != nil || cc.Seed != nil {
				t.Fatalf("wiping camera keeps a seed: %+v", cc)
			}
			_, err = e.s.CompleteOp(e.ctx, "CAM-1", w)
			must(t, err, "complete wipe")
			p := e.startOp(t, "CAM-1", model.OpProvision, ptr(testSeed(4)))
			_, err = e.s.CompleteOp(e.ctx, "CAM-1", p)
			must(t, err, "complete provision")
			if cc = check("provisioned again"); cc.Previous != nil || cc.Seed == nil || cc.Seed.Version != p {
				t.Fatalf("camera provisioned again: %+v, want v%d and no replaced seed", cc, p)
			}
		}},
		{"SignInCodeProvesRotation", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			old := e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			v := e.startOp(t, "CAM-1", model.OpRotate, ptr(testSeed(2)))
			pending := e.createToken(t, model.TokenPending, "alice", time.Hour)
			pc, err := e.s.PendingCheck(e.ctx, pending)
			must(t, err, "pending check")
			if cc := pc.Camera; cc == nil || cc.Seed == nil || cc.Seed.Version != old || cc.Rotating == nil || cc.Rotating.Version != v {
				t.Fatalf("pending check during a rotation: %+v, want the active seed v%d and the rotating one v%d", cc, old, v)
			}
			want := testSeed(2)
			want.Version = v
			sameSeed(t, *pc.Camera.Rotating, want, "rotating seed")
			e.clock.Advance(time.Minute)
			use := &model.StepUse{Subject: model.CameraSubject("CAM-1"), SeedVersion: v, Step: 100, Rotation: "CAM-1"}
			_, err = e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, use,
				model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}, model.Settlement{})
			must(t, err, "exchange with a code of the new seed")
			c, err := e.s.Camera(e.ctx, "CAM-1")
			must(t, err, "camera")
			if c.Version != v || c.PendingOp != "" || c.State != model.StateProvisioned {
				t.Fatalf("camera after the code of the new seed: %+v, want v%d active, nothing pending", c, v)
			}
			active, err := e.s.ActiveSeed(e.ctx, "CAM-1")
			must(t, err, "active seed")
			if active.Version != v || active.Secret[0] != 2 {
				t.Fatalf("active seed %+v, want the new one", active)
			}
			log, err := e.s.AuditLog(e.ctx, "CAM-1", 10)
			must(t, err, "audit")
			if len(log) == 0 || log[0].Action != "rotate.proof" || log[0].Result != "ok" || !strings.Contains(log[0].Detail, "sign-in code") {
				t.Fatalf("audit of CAM-1: %+v, want rotate.proof by a sign-in code", log)
			}
			// The camera's ack, arriving after, finds nothing pending.
			_, err = e.s.CompleteOp(e.ctx, "CAM-1", v)
			mustBe(t, err, storage.ErrConflict, "ack after the code proved it")
			// A code of a seed proven by its ack first still passes.
			v3 := e.startOp(t, "CAM-1", model.OpRotate, ptr(testSeed(3)))
			_, err = e.s.CompleteOp(e.ctx, "CAM-1", v3)
			must(t, err, "ack first")
			p2 := e.createToken(t, model.TokenPending, "alice", time.Hour)
			use = &model.StepUse{Subject: model.CameraSubject("CAM-1"), SeedVersion: v3, Step: 101, Rotation: "CAM-1"}
			_, err = e.s.ExchangeToken(e.ctx, p2, model.TokenSession, "alice", "bodycam", "ip", time.Hour, use,
				model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}, model.Settlement{})
			must(t, err, "exchange after the ack proved it")
			// A seed replaced by a newer rotation proves nothing: refused,
			// nothing changed.
			v4 := e.startOp(t, "CAM-1", model.OpRotate, ptr(testSeed(4)))
			e.startOp(t, "CAM-1", model.OpRotate, ptr(testSeed(5)))
			p3 := e.createToken(t, model.TokenPending, "alice", time.Hour)
			use = &model.StepUse{Subject: model.CameraSubject("CAM-1"), SeedVersion: v4, Step: 102, Rotation: "CAM-1"}
			_, err = e.s.ExchangeToken(e.ctx, p3, model.TokenSession, "alice", "bodycam", "ip", time.Hour, use,
				model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}, model.Settlement{})
			mustBe(t, err, storage.ErrStepUsed, "code of a replaced seed")
			if _, err := e.s.PendingCheck(e.ctx, p3); err != nil {
				t.Fatalf("the refused exchange ended the token: %v", err)
			}
			if c, _ := e.s.Camera(e.ctx, "CAM-1"); c.Version != v3 {
				t.Fatalf("active version %d after a refused code, want %d", c.Version, v3)
			}
		}},
	}
}
