package storagetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// report reports serial lost by actor and returns what it did.
func (e *env) report(t *testing.T, serial, actor, reason string) model.LostOutcome {
	t.Helper()
	o, err := e.s.ReportLost(e.ctx, serial, model.LostReport{Actor: actor, SourceIP: "192.0.2.7", Reason: reason},
		[]byte("lost-challenge"), command(serial, "lost"))
	must(t, err, "report "+serial+" lost")
	return o
}

// found is the audit row of a found.
func found(serial string) model.AuditEntry {
	return model.AuditEntry{Actor: "boss", Action: "camera.found", Subject: serial, Result: "ok", SourceIP: "192.0.2.8"}
}

// mustFoundRefused fails t unless err is a found refused with
// ErrConflict and a *model.FoundError (notLost: the camera is not lost).
func mustFoundRefused(t *testing.T, err error, notLost bool, what string) {
	t.Helper()
	mustBe(t, err, storage.ErrConflict, what)
	var fe *model.FoundError
	if !errors.As(err, &fe) || fe.NotLost != notLost {
		t.Fatalf("%s: %v, want a FoundError (not lost: %v)", what, err, notLost)
	}
}

// lostCases are the reports of lost or stolen cameras.
func lostCases() []testCase {
	return []testCase{
		{"ReportKillsCodesQueuesWipeUnassigns", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			v := e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			ok, err := e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-1"), v, 1000, 1)
			if err != nil || !ok {
				t.Fatalf("a code before the report: %v %v", ok, err)
			}
			e.clock.Advance(time.Minute)
			o := e.report(t, "CAM-1", "fleet-ann", "stolen from car 12")
			if o.Already || o.Officer != "alice" || o.Wipe != v+1 || !o.WipePending {
				t.Fatalf("outcome %+v, want alice unassigned and wipe v%d", o, v+1)
			}
			c, err := e.s.Camera(e.ctx, "CAM-1")
			must(t, err, "read")
			want := model.Lost{At: T0.Add(time.Minute), By: "fleet-ann", Reason: "stolen from car 12", Version: v + 1}
			if c.Lost == nil || !c.Lost.At.Equal(want.At) || c.Lost.By != want.By || c.Lost.Reason != want.Reason || c.Lost.Version != want.Version {
				t.Fatalf("lost %+v, want %+v", c.Lost, want)
			}
			if c.State != model.StateWiping || c.PendingOp != model.OpWipe || c.PendingVersion != v+1 || c.AssignedUser != "" || c.Version != v {
				t.Fatalf("camera after the report: %+v", c)
			}
			if o.Camera.Lost == nil || o.Camera.State != model.StateWiping || o.Camera.AssignedUser != "" {
				t.Fatalf("the outcome's camera: %+v", o.Camera)
			}
			_, err = e.s.ActiveSeed(e.ctx, "CAM-1")
			mustBe(t, err, storage.ErrNotFound, "active seed of a lost camera")
			_, err = e.s.CameraOf(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "camera of alice")
			p, err := e.s.Pending(e.ctx, "CAM-1")
			must(t, err, "pending")
			if p.Op != model.OpWipe || p.Version != v+1 || string(p.Challenge) != "lost-challenge" ||
				string(p.Payload) != string(payload("CAM-1", "lost", v+1)) || p.Seed != nil {
				t.Fatalf("pending %+v, want the wipe the report built", p)
			}
			if sns, _ := e.s.PendingSerials(e.ctx); len(sns) != 1 || sns[0] != "CAM-1" {
				t.Fatalf("pending serials %v: the wipe is resent like any other", sns)
			}
			// The op completes as any wipe: the flag stays.
			op, err := e.s.CompleteOp(e.ctx, "CAM-1", v+1)
			if err != nil || op != model.OpWipe {
				t.Fatalf("complete the wipe: %v %v", op, err)
			}
			if c, _ := e.s.Camera(e.ctx, "CAM-1"); c.State != model.StateWiped || c.Lost == nil {
				t.Fatalf("after the wipe proof: %+v", c)
			}
			log, err := e.s.AuditLog(e.ctx, "CAM-1", 10)
			must(t, err, "audit")
			if len(log) != 1 || log[0].Action != "camera.report-lost" || log[0].Actor != "fleet-ann" || log[0].Result != "ok" ||
				log[0].SourceIP != "192.0.2.7" || log[0].Detail != fmt.Sprintf("officer alice unassigned; wipe version %d queued; reason: stolen from car 12", v+1) {
				t.Fatalf("audit %+v", log)
			}
			if n, err := e.s.LostCount(e.ctx); err != nil || n != 1 {
				t.Fatalf("lost count %d %v, want 1", n, err)
			}
		}},
		{"SignInInFlightFailsAfterReport", func(t *testing.T, e *env) {
			// A sign-in read the camera and its seed, then the report
			// committed: its commit finds the code's step used.
			e.addUser(t, "alice")
			v := e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			pending := e.createToken(t, model.TokenPending, "alice", time.Hour)
			pc, err := e.s.PendingCheck(e.ctx, pending)
			must(t, err, "pending check")
			if pc.Camera == nil || pc.Camera.Seed == nil || pc.Camera.Seed.Version != v {
				t.Fatalf("check before the report: %+v", pc.Camera)
			}
			e.report(t, "CAM-1", "sec-bo", "")
			use := &model.StepUse{Subject: model.CameraSubject("CAM-1"), SeedVersion: v, Step: 1000}
			_, err = e.s.ExchangeToken(e.ctx, pending, model.TokenSession, "alice", "bodycam", "ip", time.Hour, use,
				model.AuditEntry{Actor: "alice", Action: "login.mfa", Subject: "alice", Result: "ok"}, model.Settlement{})
			mustBe(t, err, storage.ErrStepUsed, "the sign-in in flight")
			if _, err := e.s.LookupToken(e.ctx, model.TokenPending, pending); err != nil {
				t.Fatalf("the refused exchange ended the pending token: %v", err)
			}
			if pc, err := e.s.PendingCheck(e.ctx, e.createToken(t, model.TokenPending, "alice", time.Hour)); err != nil || pc.Camera != nil {
				t.Fatalf("a new sign-in of alice sees camera %+v (%v)", pc.Camera, err)
			}
			ok, err := e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-1"), v, 5000, 0)
			if err != nil || ok {
				t.Fatalf("a later step of the old seed: accepted %v %v", ok, err)
			}
			must(t, e.s.SetResync(e.ctx, model.CameraSubject("CAM-1"), v, 3, 5000), "resync of the old seed")
			ok, err = e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-1"), v, 5001, 3)
			if err != nil || ok {
				t.Fatalf("a resync of the old seed brought it back: %v %v", ok, err)
			}
			if row, err := e.s.CameraRow(e.ctx, "CAM-1"); err != nil || row.Offset != nil {
				t.Fatalf("console row after the report: %+v %v, want no learnt offset", row, err)
			}
		}},
		{"PendingSeedDiesToo", func(t *testing.T, e *env) {
			v := e.provision(t, "CAM-1", testSeed(1))
			rv := e.startOp(t, "CAM-1", model.OpRotate, ptr(testSeed(2)))
			o := e.report(t, "CAM-1", "fleet-ann", "")
			if o.Wipe != rv+1 || o.Camera.Lost.Version != rv+1 {
				t.Fatalf("outcome %+v, want the wipe after the pending rotation (v%d)", o, rv+1)
			}
			for _, sv := range []uint64{v, rv} {
				if ok, err := e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-1"), sv, 9000, 0); err != nil || ok {
					t.Fatalf("seed v%d after the report: accepted %v %v", sv, ok, err)
				}
			}
			if _, err := e.s.CompleteOp(e.ctx, "CAM-1", rv); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("the rotation's proof after the report: %v, want ErrConflict (the wipe replaced it)", err)
			}
		}},
		{"ReportTwiceChangesNothing", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			first := e.report(t, "CAM-1", "fleet-ann", "dropped in river")
			e.clock.Advance(time.Hour)
			again := e.report(t, "CAM-1", "sec-bo", "other words")
			if !again.Already || again.Officer != "" || again.Wipe != 0 || !again.WipePending {
				t.Fatalf("second report %+v", again)
			}
			c, _ := e.s.Camera(e.ctx, "CAM-1")
			if !c.Lost.At.Equal(first.Camera.Lost.At) || c.Lost.By != "fleet-ann" || c.Lost.Reason != "dropped in river" ||
				c.PendingVersion != first.Wipe || c.Lost.Version != first.Wipe {
				t.Fatalf("the second report changed the first: %+v %+v", c, c.Lost)
			}
			log, _ := e.s.AuditLog(e.ctx, "CAM-1", 10)
			if len(log) != 2 || log[0].Result != "ok: reported lost already" || log[0].Actor != "sec-bo" || log[0].Detail != "first reported by fleet-ann" {
				t.Fatalf("audit %+v", log)
			}
			if n, _ := e.s.LostCount(e.ctx); n != 1 {
				t.Fatalf("lost count %d, want 1", n)
			}
		}},
		{"UnknownIsErrNotFound", func(t *testing.T, e *env) {
			_, err := e.s.ReportLost(e.ctx, "NOPE", model.LostReport{Actor: "a"}, []byte("c"), command("NOPE", ""))
			mustBe(t, err, storage.ErrNotFound, "report NOPE")
			_, err = e.s.FoundCamera(e.ctx, "NOPE", found("NOPE"))
			mustBe(t, err, storage.ErrNotFound, "found NOPE")
			_, err = e.s.ReportLost(e.ctx, "N\x00\xff", model.LostReport{Actor: "a"}, []byte("c"), command("N", ""))
			mustBe(t, err, storage.ErrNotFound, "report a serial no camera can have")
			if log, _ := e.s.AuditLog(e.ctx, "NOPE", 10); len(log) != 0 {
				t.Fatalf("the store audited a refusal: %+v (the caller does)", log)
			}
		}},
		{"WipedOrWipingCameraNeedsNoNewWipe", func(t *testing.T, e *env) {
			v := e.provision(t, "CAM-1", testSeed(1))
			w := e.startOp(t, "CAM-1", model.OpWipe, nil)
			o := e.report(t, "CAM-1", "fleet-ann", "")
			if o.Wipe != 0 || !o.WipePending || o.Camera.PendingVersion != w || o.Camera.Lost.Version != w {
				t.Fatalf("wiping camera: %+v, want the pending wipe v%d kept", o, w)
			}
			if ok, _ := e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-1"), v, 9000, 0); ok {
				t.Fatal("old seed accepted")
			}
			e.provision(t, "CAM-2", testSeed(2))
			w2 := e.startOp(t, "CAM-2", model.OpWipe, nil)
			_, err := e.s.CompleteOp(e.ctx, "CAM-2", w2)
			must(t, err, "complete wipe")
			o = e.report(t, "CAM-2", "fleet-ann", "")
			if o.Wipe != 0 || o.WipePending || o.Camera.State != model.StateWiped || o.Camera.PendingOp != "" || o.Camera.Lost.Version != w2 {
				t.Fatalf("wiped camera: %+v", o)
			}
			e.addCamera(t, "CAM-3") // registered: a wipe is queued all the same
			o = e.report(t, "CAM-3", "fleet-ann", "")
			if o.Wipe != 1 || o.Camera.State != model.StateWiping {
				t.Fatalf("registered camera: %+v", o)
			}
			if n, _ := e.s.LostCount(e.ctx); n != 3 {
				t.Fatalf("lost count %d, want 3", n)
			}
		}},
		{"FoundOnlyAfterAFreshProvision", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.provision(t, "CAM-1", testSeed(1))
			_, err := e.s.FoundCamera(e.ctx, "CAM-1", found("CAM-1"))
			mustFoundRefused(t, err, true, "found of a camera never lost")
			o := e.report(t, "CAM-1", "fleet-ann", "")
			_, err = e.s.FoundCamera(e.ctx, "CAM-1", found("CAM-1"))
			mustFoundRefused(t, err, false, "found while wiping")
			_, err = e.s.CompleteOp(e.ctx, "CAM-1", o.Wipe)
			must(t, err, "wipe proof")
			_, err = e.s.FoundCamera(e.ctx, "CAM-1", found("CAM-1"))
			mustFoundRefused(t, err, false, "found when wiped")
			pv := e.startOp(t, "CAM-1", model.OpProvision, ptr(testSeed(3)))
			_, err = e.s.FoundCamera(e.ctx, "CAM-1", found("CAM-1"))
			mustFoundRefused(t, err, false, "found with the provision in flight")
			mustBe(t, e.s.Assign(e.ctx, "CAM-1", "alice"), storage.ErrConflict, "assign while lost")
			_, err = e.s.CompleteOp(e.ctx, "CAM-1", pv)
			must(t, err, "provision proof")
			c, err := e.s.FoundCamera(e.ctx, "CAM-1", found("CAM-1"))
			must(t, err, "found after a fresh provision")
			if c.Lost != nil || c.State != model.StateProvisioned || c.Version != pv {
				t.Fatalf("found camera %+v", c)
			}
			if c, _ := e.s.Camera(e.ctx, "CAM-1"); c.Lost != nil {
				t.Fatalf("still lost: %+v", c.Lost)
			}
			ok, err := e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-1"), pv, 1000, 0)
			if err != nil || !ok {
				t.Fatalf("a code of the fresh seed: %v %v", ok, err)
			}
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign once found")
			_, err = e.s.FoundCamera(e.ctx, "CAM-1", found("CAM-1"))
			mustFoundRefused(t, err, true, "found twice")
			if acts := e.auditActions(t, "CAM-1"); len(acts) != 2 || acts[0] != "camera.found" || acts[1] != "camera.report-lost" {
				t.Fatalf("audit %v", acts)
			}
			if n, _ := e.s.LostCount(e.ctx); n != 0 {
				t.Fatalf("lost count %d, want 0", n)
			}
		}},
		{"LostCannotBeAssigned", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.addUser(t, "bob")
			e.provision(t, "CAM-1", testSeed(1))
			e.provision(t, "CAM-2", testSeed(2))
			e.report(t, "CAM-1", "fleet-ann", "")
			err := e.s.Assign(e.ctx, "CAM-1", "alice")
			mustBe(t, err, storage.ErrConflict, "assign a lost camera")
			if !strings.Contains(err.Error(), "CAM-1 is reported lost") {
				t.Fatalf("message %q", err)
			}
			err = e.s.AssignAll(e.ctx, []model.Assignment{{Serial: "CAM-2", Username: "bob"}, {Serial: "CAM-1", Username: "alice"}})
			var ae *model.AssignmentError
			if !errors.As(err, &ae) || ae.Index != 1 || !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("bulk assignment with a lost camera: %v", err)
			}
			if c, _ := e.s.Camera(e.ctx, "CAM-2"); c.AssignedUser != "" {
				t.Fatal("the refused bulk assignment assigned CAM-2")
			}
		}},
		{"ConsoleShowsAndFiltersLost", func(t *testing.T, e *env) {
			for _, sn := range []string{"CAM-1", "CAM-2", "CAM-3"} {
				e.addCamera(t, sn)
			}
			e.report(t, "CAM-2", "fleet-ann", "gone")
			for _, c := range []struct {
				lost model.Tri
				want []string
			}{{model.Any, []string{"CAM-1", "CAM-2", "CAM-3"}}, {model.Yes, []string{"CAM-2"}}, {model.No, []string{"CAM-1", "CAM-3"}}} {
				p, err := e.s.CameraPage(e.ctx, model.CameraQuery{Lost: c.lost})
				must(t, err, "page")
				var got []string
				for _, r := range p.Cameras {
					got = append(got, r.Serial)
					if (r.Lost != nil) != (r.Serial == "CAM-2") {
						t.Fatalf("row %s lost %+v", r.Serial, r.Lost)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(c.want) || p.Total != len(c.want) {
					t.Fatalf("lost filter %d: %v (total %d), want %v", c.lost, got, p.Total, c.want)
				}
			}
			r, err := e.s.CameraRow(e.ctx, "CAM-2")
			if err != nil || r.Lost == nil || r.Lost.Reason != "gone" || r.Lost.By != "fleet-ann" {
				t.Fatalf("row %+v %v", r, err)
			}
			cs, _ := e.s.Cameras(e.ctx)
			if len(cs) != 3 || cs[1].Lost == nil || cs[0].Lost != nil {
				t.Fatalf("Cameras %+v", cs)
			}
		}},
		{"RacingReportFoundAssignEndConsistent", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.addUser(t, "bob")
			v := e.provision(t, "CAM-1", testSeed(1))
			// Phase 1: reports, founds and assignments of a provisioned
			// camera at once. Found can never pass (no fresh provision).
			n := smallRacers
			outs := make([]model.LostOutcome, n)
			errs := race(n, func(i int) error {
				var err error
				switch i % 4 {
				case 0:
					outs[i], err = e.s.ReportLost(e.ctx, "CAM-1", model.LostReport{Actor: fmt.Sprint("r", i)}, []byte("c"), command("CAM-1", fmt.Sprint(i)))
				case 1:
					_, err = e.s.FoundCamera(e.ctx, "CAM-1", found("CAM-1"))
				case 2:
					err = e.s.Assign(e.ctx, "CAM-1", "alice")
				case 3:
					err = e.s.Assign(e.ctx, "CAM-1", "bob")
				}
				return err
			})
			changed, assigned := 0, map[string]bool{}
			for i, err := range errs {
				switch i % 4 {
				case 0:
					must(t, err, "report")
					if !outs[i].Already {
						changed++
						if outs[i].Officer != "" && outs[i].Officer != "alice" && outs[i].Officer != "bob" {
							t.Fatalf("report took the camera from %q", outs[i].Officer)
						}
					}
				case 1: // before the report: not lost; after: no fresh provision
					mustBe(t, err, storage.ErrConflict, "found racing")
					if !errors.As(err, new(*model.FoundError)) {
						t.Fatalf("found racing: %v, want a FoundError", err)
					}
				default:
					if err == nil {
						assigned[[]string{"alice", "bob"}[i%4-2]] = true
					} else {
						mustBe(t, err, storage.ErrConflict, "assign racing")
					}
				}
			}
			if changed != 1 || len(assigned) > 1 {
				t.Fatalf("%d reports changed the camera, assigned to %v", changed, assigned)
			}
			var officer string
			for i := 0; i < n; i += 4 {
				if !outs[i].Already {
					officer = outs[i].Officer
				}
			}
			if (officer != "") != (len(assigned) == 1) || (officer != "" && !assigned[officer]) {
				t.Fatalf("the report unassigned %q; assignments that passed: %v", officer, assigned)
			}
			c, _ := e.s.Camera(e.ctx, "CAM-1")
			if c.Lost == nil || c.AssignedUser != "" || c.State != model.StateWiping || c.PendingVersion != v+1 || c.Lost.Version != v+1 {
				t.Fatalf("after phase 1: %+v %+v", c, c.Lost)
			}
			// Phase 2: the camera was wiped and provisioned afresh; founds
			// race reports and assignments. At most one found passes; a
			// report after it starts a new loss.
			_, err := e.s.CompleteOp(e.ctx, "CAM-1", v+1)
			must(t, err, "wipe proof")
			pv := e.startOp(t, "CAM-1", model.OpProvision, ptr(testSeed(9)))
			_, err = e.s.CompleteOp(e.ctx, "CAM-1", pv)
			must(t, err, "provision proof")
			errs = race(n, func(i int) error {
				var err error
				switch i % 4 {
				case 0:
					outs[i], err = e.s.ReportLost(e.ctx, "CAM-1", model.LostReport{Actor: "r"}, []byte("c"), command("CAM-1", fmt.Sprint(i)))
				case 1, 3:
					_, err = e.s.FoundCamera(e.ctx, "CAM-1", found("CAM-1"))
				case 2:
					err = e.s.Assign(e.ctx, "CAM-1", "alice")
				}
				return err
			})
			founds, changed := 0, 0
			for i, err := range errs {
				switch i % 4 {
				case 0:
					must(t, err, "report")
					if !outs[i].Already {
						changed++
					}
				case 1, 3:
					if err == nil {
						founds++
					} else {
						mustBe(t, err, storage.ErrConflict, "found racing")
					}
				default:
					if err != nil {
						mustBe(t, err, storage.ErrConflict, "assign racing")
					}
				}
			}
			c, _ = e.s.Camera(e.ctx, "CAM-1")
			switch {
			case founds > 1 || changed > founds:
				t.Fatalf("%d founds passed, %d reports changed the camera", founds, changed)
			case (c.Lost == nil) != (founds == 1 && changed == 0):
				t.Fatalf("lost %+v after %d founds and %d new reports", c.Lost, founds, changed)
			case c.Lost != nil && c.AssignedUser != "":
				t.Fatalf("a lost camera is assigned to %s", c.AssignedUser)
			case c.Lost != nil && changed == 1 && (c.State != model.StateWiping || c.Lost.Version != pv+1):
				t.Fatalf("lost again: %+v %+v", c, c.Lost)
			}
			if n, _ := e.s.LostCount(e.ctx); (n == 1) != (c.Lost != nil) {
				t.Fatalf("lost count %d with lost %+v", n, c.Lost)
			}
		}},
	}
}
