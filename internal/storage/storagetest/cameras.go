package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// camStep is one step of a camera's life: start an operation (op) or
// complete the one at version complete, and what the camera looks like
// after it.
type camStep struct {
	op       model.Op // start this operation
	complete uint64   // or complete the pending one at this version
	err      error    // the refusal expected (nothing changes then)
	version  uint64   // StartOp's answer, or the op CompleteOp returns is op's

	state   model.CameraState
	camVer  uint64   // Camera.Version: the version the camera proved
	pending model.Op // the operation in flight ("" none)
	active  uint64   // version of the active seed (0: none)
}

// lifecycle walks every transition of the camera state machine, the
// refused ones included: provision from registered, pending or wiped;
// rotate from provisioned; wipe from any state but wiped; completion only
// of the version in flight.
var lifecycle = []camStep{
	{op: model.OpProvision, version: 1, state: model.StatePending, pending: model.OpProvision},
	{op: model.OpRotate, err: storage.ErrConflict},
	{op: model.OpProvision, version: 2, state: model.StatePending, pending: model.OpProvision}, // resent under a new version
	{complete: 1, err: storage.ErrConflict},                                                    // superseded
	{complete: 2, op: model.OpProvision, state: model.StateProvisioned, camVer: 2, active: 2},
	{complete: 2, err: storage.ErrConflict}, // nothing in flight
	{op: model.OpProvision, err: storage.ErrConflict},
	// A rotation keeps the old seed active until the camera proves the new one.
	{op: model.OpRotate, version: 3, state: model.StateProvisioned, camVer: 2, pending: model.OpRotate, active: 2},
	{complete: 3, op: model.OpRotate, state: model.StateProvisioned, camVer: 3, active: 3},
	// A wipe drops the active seed at once, before the camera answers.
	{op: model.OpWipe, version: 4, state: model.StateWiping, camVer: 3, pending: model.OpWipe},
	{op: model.OpProvision, err: storage.ErrConflict},
	{op: model.OpRotate, err: storage.ErrConflict},
	{op: model.OpWipe, version: 5, state: model.StateWiping, camVer: 3, pending: model.OpWipe},
	{complete: 4, err: storage.ErrConflict},
	{complete: 5, op: model.OpWipe, state: model.StateWiped, camVer: 5},
	{op: model.OpWipe, err: storage.ErrConflict},
	{op: model.OpRotate, err: storage.ErrConflict},
	{op: model.OpProvision, version: 6, state: model.StatePending, camVer: 5, pending: model.OpProvision},
	{complete: 6, op: model.OpProvision, state: model.StateProvisioned, camVer: 6, active: 6},
}

func cameraCases() []testCase {
	return []testCase{
		{"AddAndRead", func(t *testing.T, e *env) {
			must(t, e.s.AddCamera(e.ctx, "CAM-1", device.Body3, "pubkey"), "add")
			c, err := e.s.Camera(e.ctx, "CAM-1")
			must(t, err, "read")
			want := model.Camera{Serial: "CAM-1", Model: device.Body3, PublicKey: "pubkey", State: model.StateRegistered}
			if c.Serial != want.Serial || c.Model != want.Model || c.PublicKey != want.PublicKey || c.State != want.State ||
				c.Version != 0 || c.PendingOp != "" || c.PendingVersion != 0 || c.AssignedUser != "" || c.LastSeen != nil {
				t.Fatalf("read %+v, want %+v", c, want)
			}
			sameTime(t, c.CreatedAt, T0, "created")
		}},
		{"DuplicateIsErrExists", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-1")
			mustBe(t, e.s.AddCamera(e.ctx, "CAM-1", device.Body3, "other"), storage.ErrExists, "second CAM-1")
			if c, _ := e.s.Camera(e.ctx, "CAM-1"); c.PublicKey != "pub:CAM-1" {
				t.Fatalf("the refused duplicate changed the camera: %+v", c)
			}
		}},
		{"UnknownIsErrNotFound", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			s := testSeed(1)
			_, err := e.s.Camera(e.ctx, "NOPE")
			mustBe(t, err, storage.ErrNotFound, "Camera")
			_, err = e.s.StartOp(e.ctx, "NOPE", model.OpProvision, &s, nil, command("NOPE", ""))
			mustBe(t, err, storage.ErrNotFound, "StartOp")
			_, err = e.s.Pending(e.ctx, "NOPE")
			mustBe(t, err, storage.ErrNotFound, "Pending")
			_, err = e.s.CompleteOp(e.ctx, "NOPE", 1)
			mustBe(t, err, storage.ErrNotFound, "CompleteOp")
			_, err = e.s.ActiveSeed(e.ctx, "NOPE")
			mustBe(t, err, storage.ErrNotFound, "ActiveSeed")
			mustBe(t, e.s.Assign(e.ctx, "NOPE", "alice"), storage.ErrNotFound, "Assign")
			mustBe(t, e.s.Unassign(e.ctx, "NOPE"), storage.ErrNotFound, "Unassign")
			_, err = e.s.CameraOf(e.ctx, "alice")
			mustBe(t, err, storage.ErrNotFound, "CameraOf a user without camera")
			_, err = e.s.CameraOf(e.ctx, "nobody")
			mustBe(t, err, storage.ErrNotFound, "CameraOf an unknown user")
		}},
		{"ListBySerial", func(t *testing.T, e *env) {
			if cs, err := e.s.Cameras(e.ctx); err != nil || len(cs) != 0 {
				t.Fatalf("empty store: %+v %v", cs, err)
			}
			for _, sn := range []string{"CAM-3", "CAM-1", "CAM-2"} {
				e.addCamera(t, sn)
			}
			cs, err := e.s.Cameras(e.ctx)
			must(t, err, "list")
			var got []string
			for _, c := range cs {
				got = append(got, c.Serial)
			}
			if !slices.Equal(got, []string{"CAM-1", "CAM-2", "CAM-3"}) {
				t.Fatalf("cameras %v, want by serial", got)
			}
		}},
		{"Lifecycle", func(t *testing.T, e *env) {
			const sn = "CAM-1"
			e.addCamera(t, sn)
			seeds := map[uint64]device.Seed{} // by the version they were sent with
			want := camStep{state: model.StateRegistered}
			for i, st := range lifecycle {
				step := fmt.Sprintf("step %d (%s %d)", i, st.op, st.complete)
				e.clock.Advance(time.Second)
				switch {
				case st.complete != 0:
					op, err := e.s.CompleteOp(e.ctx, sn, st.complete)
					if st.err != nil {
						mustBe(t, err, st.err, step)
						break
					}
					must(t, err, step)
					if op != st.op {
						t.Fatalf("%s: completed %q, want %q", step, op, st.op)
					}
					want = st
				default:
					var s *device.Seed
					if st.op != model.OpWipe {
						sd := testSeed(byte(10 + i))
						s = &sd
					}
					v, err := e.s.StartOp(e.ctx, sn, st.op, s, fmt.Appendf(nil, "challenge %d", i), command(sn, "life"))
					if st.err != nil {
						mustBe(t, err, st.err, step)
						break
					}
					must(t, err, step)
					if v != st.version {
						t.Fatalf("%s: version %d, want %d", step, v, st.version)
					}
					if s != nil {
						sd := testSeed(byte(10 + i))
						sd.Version = v
						seeds[v] = sd
					}
					want = st
				}
				checkCamera(t, e, sn, want, seeds, step)
			}
		}},
		{"PendingHoldsWhatWasSent", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-1")
			s := testSeed(7)
			var built []uint64
			v, err := e.s.StartOp(e.ctx, "CAM-1", model.OpProvision, &s, []byte("nonce-1"), func(v uint64) ([]byte, error) {
				built = append(built, v)
				return payload("CAM-1", "sent", v), nil
			})
			must(t, err, "provision")
			if !slices.Equal(built, []uint64{v}) {
				t.Fatalf("build called with %v, want once with the version StartOp returned (%d)", built, v)
			}
			p, err := e.s.Pending(e.ctx, "CAM-1")
			must(t, err, "pending")
			want := testSeed(7)
			want.Version = v
			if p.Op != model.OpProvision || p.Version != v || p.Seed == nil || string(p.Challenge) != "nonce-1" ||
				!bytes.Equal(p.Payload, payload("CAM-1", "sent", v)) {
				t.Fatalf("pending %+v, want provision v%d with the challenge and payload sent", p, v)
			}
			sameSeed(t, *p.Seed, want, "pending seed (carries the operation's version)")
			if serials, err := e.s.PendingSerials(e.ctx); err != nil || !slices.Equal(serials, []string{"CAM-1"}) {
				t.Fatalf("pending serials %v %v", serials, err)
			}
			// A wipe carries no seed.
			_, err = e.s.CompleteOp(e.ctx, "CAM-1", v)
			must(t, err, "complete")
			w := e.startOp(t, "CAM-1", model.OpWipe, nil)
			if p, err := e.s.Pending(e.ctx, "CAM-1"); err != nil || p.Op != model.OpWipe || p.Version != w || p.Seed != nil {
				t.Fatalf("pending wipe %+v %v", p, err)
			}
		}},
		{"RefusalsChangeNothing", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-1")
			s := testSeed(1)
			_, err := e.s.StartOp(e.ctx, "CAM-1", model.OpRotate, &s, nil, command("CAM-1", ""))
			mustBe(t, err, storage.ErrConflict, "rotate a registered camera")
			if _, err := e.s.StartOp(e.ctx, "CAM-1", model.Op("explode"), &s, nil, command("CAM-1", "")); err == nil {
				t.Fatal("an unknown operation was started")
			}
			boom := errors.New("cannot seal")
			_, err = e.s.StartOp(e.ctx, "CAM-1", model.OpProvision, &s, nil, func(uint64) ([]byte, error) { return nil, boom })
			mustBe(t, err, boom, "provision whose command cannot be built")
			checkCamera(t, e, "CAM-1", camStep{state: model.StateRegistered}, nil, "after the refusals")
			e.startOp(t, "CAM-1", model.OpProvision, &s)
		}},
		{"Touch", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-1")
			seen := T0.Add(90 * time.Minute)
			must(t, e.s.Touch(e.ctx, "CAM-1", seen), "touch")
			c, err := e.s.Camera(e.ctx, "CAM-1")
			must(t, err, "read")
			if c.LastSeen == nil {
				t.Fatal("last seen not recorded")
			}
			sameTime(t, *c.LastSeen, seen, "last seen")
		}},
		{"AssignRules", func(t *testing.T, e *env) {
			e.addCamera(t, "CAM-A")
			e.addCamera(t, "CAM-B")
			e.addUser(t, "alice")
			e.addUser(t, "bob")
			steps := []struct {
				serial, user string // user "": unassign
				err          error
			}{
				{"CAM-A", "alice", nil},
				{"CAM-A", "alice", nil},                  // idempotent
				{"CAM-B", "alice", storage.ErrConflict},  // one camera per user
				{"CAM-A", "bob", storage.ErrConflict},    // camera already taken
				{"CAM-A", "nobody", storage.ErrNotFound}, // unknown user
				{"CAM-A", "", nil},
				{"CAM-A", "", nil}, // unassigning a free camera is no error
				{"CAM-A", "bob", nil},
				{"CAM-B", "alice", nil},
			}
			for i, s := range steps {
				var err error
				if s.user == "" {
					err = e.s.Unassign(e.ctx, s.serial)
				} else {
					err = e.s.Assign(e.ctx, s.serial, s.user)
				}
				if !errors.Is(err, s.err) {
					t.Fatalf("step %d (%s → %q): %v, want %v", i, s.serial, s.user, err, s.err)
				}
			}
			for user, serial := range map[string]string{"bob": "CAM-A", "alice": "CAM-B"} {
				c, err := e.s.CameraOf(e.ctx, user)
				if err != nil || c.Serial != serial || c.AssignedUser != user {
					t.Fatalf("CameraOf(%s): %+v %v, want %s", user, c, err, serial)
				}
				if c, _ := e.s.Camera(e.ctx, serial); c.AssignedUser != user {
					t.Fatalf("Camera(%s).AssignedUser %q, want %s", serial, c.AssignedUser, user)
				}
			}
			must(t, e.s.Unassign(e.ctx, "CAM-A"), "unassign")
			_, err := e.s.CameraOf(e.ctx, "bob")
			mustBe(t, err, storage.ErrNotFound, "CameraOf after unassign")
		}},
		{"AssignmentOutlivesOperations", func(t *testing.T, e *env) {
			e.addUser(t, "alice")
			e.provision(t, "CAM-1", testSeed(1))
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			s := testSeed(2)
			v := e.startOp(t, "CAM-1", model.OpRotate, &s)
			_, err := e.s.CompleteOp(e.ctx, "CAM-1", v)
			must(t, err, "complete rotate")
			c, err := e.s.CameraOf(e.ctx, "alice")
			if err != nil || c.Serial != "CAM-1" || c.Version != v || c.State != model.StateProvisioned {
				t.Fatalf("camera of alice after rotation: %+v %v", c, err)
			}
		}},
		{"PendingCheckOfTheCamera", func(t *testing.T, e *env) {
			// What PendingCheck reads of the camera of the token's user,
			// through its life.
			e.addUser(t, "alice")
			pending := e.createToken(t, model.TokenPending, "alice", time.Hour)
			camera := func(what string) *model.CameraCheck {
				t.Helper()
				pc, err := e.s.PendingCheck(e.ctx, pending)
				must(t, err, "PendingCheck: "+what)
				return pc.Camera
			}
			if cc := camera("no camera"); cc != nil {
				t.Fatalf("user without camera: %+v", cc)
			}
			e.addCamera(t, "CAM-1")
			must(t, e.s.Assign(e.ctx, "CAM-1", "alice"), "assign")
			cc := camera("registered")
			if cc == nil || cc.Camera.Serial != "CAM-1" || cc.Camera.State != model.StateRegistered || cc.Camera.AssignedUser != "alice" ||
				cc.Camera.Model != device.Body4 || cc.Camera.PublicKey != "pub:CAM-1" || cc.Seed != nil || cc.OTPFound {
				t.Fatalf("registered camera: %+v", cc)
			}
			v := e.startOp(t, "CAM-1", model.OpProvision, ptr(testSeed(1)))
			if cc = camera("provision in flight"); cc.Seed != nil || cc.Camera.PendingOp != model.OpProvision || cc.Camera.PendingVersion != v {
				t.Fatalf("camera with a provision in flight: %+v, want no seed yet", cc)
			}
			_, err := e.s.CompleteOp(e.ctx, "CAM-1", v)
			must(t, err, "complete provision")
			// Another source's record is not this camera's.
			if _, err := e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-10"), v, 500, 0); err != nil {
				t.Fatal(err)
			}
			cc = camera("provisioned")
			want := testSeed(1)
			want.Version = v
			if cc.Seed == nil || cc.OTPFound || cc.Camera.State != model.StateProvisioned || cc.Camera.Version != v {
				t.Fatalf("provisioned camera: %+v", cc)
			}
			sameSeed(t, *cc.Seed, want, "seed")
			active, err := e.s.ActiveSeed(e.ctx, "CAM-1")
			must(t, err, "active seed")
			sameSeed(t, *cc.Seed, active, "the check's seed against ActiveSeed")
			c, err := e.s.Camera(e.ctx, "CAM-1")
			must(t, err, "camera")
			if c.CreatedAt != cc.Camera.CreatedAt || (c.LastSeen == nil) != (cc.Camera.LastSeen == nil) || c.Online != cc.Camera.Online {
				t.Fatalf("the check's camera %+v, Camera %+v", cc.Camera, c)
			}
			if _, err := e.s.AcceptStep(e.ctx, model.CameraSubject("CAM-1"), v, 100, -1); err != nil {
				t.Fatal(err)
			}
			must(t, e.s.SetResync(e.ctx, model.CameraSubject("CAM-1"), v, 7, 110), "set resync")
			cc = camera("with a replay record")
			rec, found, err := e.s.OTPState(e.ctx, model.CameraSubject("CAM-1"))
			must(t, err, "OTPState")
			if !cc.OTPFound || !found || cc.OTP.SeedVersion != v || cc.OTP.LastStep != 100 || cc.OTP.Drift != -1 ||
				cc.OTP.ResyncOffset == nil || *cc.OTP.ResyncOffset != 7 || cc.OTP.ResyncStep != 110 ||
				rec.LastStep != cc.OTP.LastStep || rec.ResyncStep != cc.OTP.ResyncStep {
				t.Fatalf("replay record %+v (found %v), OTPState %+v", cc.OTP, cc.OTPFound, rec)
			}
			// A wipe drops the seed at once.
			e.startOp(t, "CAM-1", model.OpWipe, nil)
			if cc = camera("being wiped"); cc.Seed != nil {
				t.Fatalf("camera being wiped: %+v, want no seed", cc)
			}
			must(t, e.s.Unassign(e.ctx, "CAM-1"), "unassign")
			if cc = camera("unassigned"); cc != nil {
				t.Fatalf("after unassign: %+v", cc)
			}
		}},
		{"CameraStates", func(t *testing.T, e *env) {
			if st, err := e.s.CameraStates(e.ctx); err != nil || len(st) != 0 {
				t.Fatalf("empty store: %v %v", st, err)
			}
			e.addCamera(t, "REG-1")
			e.addCamera(t, "REG-2")
			e.provision(t, "PROV-1", testSeed(1))
			e.provision(t, "ROT-1", testSeed(2))
			s := testSeed(3)
			e.startOp(t, "ROT-1", model.OpRotate, &s)
			e.addCamera(t, "PEND-1")
			e.startOp(t, "PEND-1", model.OpProvision, &s)
			e.provision(t, "WIPE-1", testSeed(4))
			e.startOp(t, "WIPE-1", model.OpWipe, nil)
			e.provision(t, "GONE-1", testSeed(5))
			v := e.startOp(t, "GONE-1", model.OpWipe, nil)
			_, err := e.s.CompleteOp(e.ctx, "GONE-1", v)
			must(t, err, "complete wipe")
			got, err := e.s.CameraStates(e.ctx)
			must(t, err, "states")
			want := map[string]int{"registered": 2, "provisioned": 1, "pending:rotate": 1, "pending:provision": 1,
				"pending:wipe": 1, "wiped": 1}
			if !maps.Equal(got, want) {
				t.Fatalf("states %v, want %v", got, want)
			}
			serials, err := e.s.PendingSerials(e.ctx)
			if err != nil || !slices.Equal(serials, []string{"PEND-1", "ROT-1", "WIPE-1"}) {
				t.Fatalf("pending serials %v %v, want by serial", serials, err)
			}
		}},
	}
}

// checkCamera fails t unless camera sn is as want says: state, proven
// version, operation in flight (with the seed, challenge and payload it was
// sent with) and active seed. seeds holds the seeds sent, by version.
func checkCamera(t *testing.T, e *env, sn string, want camStep, seeds map[uint64]device.Seed, step string) {
	t.Helper()
	c, err := e.s.Camera(e.ctx, sn)
	must(t, err, step+": read")
	if c.State != want.state || c.Version != want.camVer || c.PendingOp != want.pending {
		t.Fatalf("%s: camera %s v%d pending %q, want %s v%d pending %q", step, c.State, c.Version, c.PendingOp,
			want.state, want.camVer, want.pending)
	}
	p, err := e.s.Pending(e.ctx, sn)
	if want.pending == "" {
		mustBe(t, err, storage.ErrNotFound, step+": Pending with nothing in flight")
		if c.PendingVersion != 0 {
			t.Fatalf("%s: PendingVersion %d with nothing in flight", step, c.PendingVersion)
		}
	} else {
		must(t, err, step+": Pending")
		if p.Op != want.pending || p.Version != want.version || c.PendingVersion != want.version ||
			!bytes.Equal(p.Payload, payload(sn, "life", want.version)) {
			t.Fatalf("%s: pending %+v (camera says v%d), want %s v%d", step, p, c.PendingVersion, want.pending, want.version)
		}
		if (p.Seed == nil) != (want.pending == model.OpWipe) {
			t.Fatalf("%s: pending %s with seed %v", step, p.Op, p.Seed)
		}
		if p.Seed != nil {
			sameSeed(t, *p.Seed, seeds[want.version], step+": pending seed")
		}
	}
	active, err := e.s.ActiveSeed(e.ctx, sn)
	if want.active == 0 {
		mustBe(t, err, storage.ErrNotFound, step+": ActiveSeed")
		return
	}
	must(t, err, step+": ActiveSeed")
	sameSeed(t, active, seeds[want.active], step+": active seed")
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
