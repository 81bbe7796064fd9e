package signin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testclock"
)

// With a camera's clock report, a check before the throttle slot does the
// same work for every code: both windows, the report's and the learnt
// drift's, every step of each, whatever the code.
func TestNearWindowSameWorkForEveryCode(t *testing.T) {
	st := newStore(t, t.TempDir(), func() time.Time { return base })
	steps := 0
	c := &Checker{Store: st, computed: func(int64) { steps++ }}
	seed := testSeed
	used := model.OTPState{SeedVersion: seed.Version, LastStep: base.Unix()/30 - 1}
	near := int64(4)
	for _, tc := range []struct {
		name   string
		code   string
		want   Outcome
		offset int64
	}{
		{"at the report's offset", codeAt(t, seed, 4), Accepted, 4},
		{"a step past the report's", codeAt(t, seed, 5), Accepted, 5},
		{"a step before the report's", codeAt(t, seed, 3), Accepted, 3},
		{"at the learnt drift (the report lies)", codeAt(t, seed, 0), Accepted, 0},
		{"a used step", codeAt(t, seed, -1), Replayed, -1},
		{"beyond both windows", codeAt(t, seed, 8), Invalid, 0},
		{"wrong", wrongCode(t, seed, base), Invalid, 0},
	} {
		steps = 0
		res, err := c.MatchWindowRecordNear("cam:SN1", seed, used, true, &near, tc.code, base)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != tc.want || steps != 6 || (tc.want != Invalid && res.Offset != tc.offset) {
			t.Errorf("%s: %v offset %d after %d steps computed, want %v offset %d after 6 (two windows)", tc.name, res.Outcome, res.Offset, steps, tc.want, tc.offset)
		}
	}
	// Without a report: one window, as before.
	steps = 0
	if res, _ := c.MatchWindowRecordNear("cam:SN1", seed, used, true, nil, codeAt(t, seed, 4), base); res.Outcome != Invalid || steps != 3 {
		t.Fatalf("no report: %v after %d steps, want invalid after 3", res.Outcome, steps)
	}
	// The whole check then looks from -10 steps up to the code's +8,
	// skipping the 6 steps both windows tried.
	steps = 0
	if res, _ := c.MatchRecordNear("cam:SN1", seed, used, true, &near, codeAt(t, seed, 8), base); res.Outcome != ClockOff || res.Offset != 8 || steps != 6+19-6 {
		t.Fatalf("clock-off code with a report: %v offset %d after %d steps", res.Outcome, res.Offset, steps)
	}
}

// A camera's fresh clock report centres the window: a camera 3 steps off
// since its last code passes at the first try. A report that lies about
// the camera's clock does not lock it out (the learnt window still
// passes its code), flags the camera once (audited), and stops centring
// the window until a code agrees with a report again.
func TestClockReportCentresTheWindow(t *testing.T) {
	ctx, ip := context.Background(), "192.0.2.7"
	clock := testclock.NewManual(base)
	st, svc, seed := cameraFixture(t, clock.Now)
	seq := uint64(0)
	report := func(steps int64) {
		t.Helper()
		seq++
		if _, ok, err := st.RecordClock(ctx, model.ClockReport{Serial: "SN1", Seq: seq, Offset: time.Duration(steps) * 30 * time.Second,
			RTT: 20 * time.Millisecond, At: clock.Now()}, time.Hour); err != nil || !ok {
			t.Fatalf("record report: %v %v", ok, err)
		}
	}
	try := func(steps int64) error {
		t.Helper()
		clock.Advance(5 * time.Minute) // a fresh step each try
		pending, err := st.CreateToken(ctx, model.TokenPending, "alice", MethodBodycam, ip, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		code, err := seed.Code(clock.Now().Add(time.Duration(steps) * 30 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Verify(ctx, pending, code, ip)
		return err
	}
	clockOff := func(err error) bool {
		var ce *CodeError
		return errors.As(err, &ce) && ce.ClockOff
	}
	mismatch := func() bool {
		k, err := st.CameraClock(ctx, "SN1")
		if err != nil {
			t.Fatal(err)
		}
		return k.Mismatch()
	}
	// Control: without a report, a camera 3 steps fast is told its
	// clock is off.
	if err := try(3); !clockOff(err) {
		t.Fatalf("3 steps off, no report: %v, want clock-off", err)
	}
	report(-3)
	if err := try(-3); err != nil {
		t.Fatalf("3 steps slow, reported: %v, want signed in at the first try", err)
	}
	if mismatch() {
		t.Fatal("an agreeing code flagged the camera")
	}
	// The camera's codes now run at -3 (learnt); its report says +2.
	report(2)
	if err := try(-3); err != nil {
		t.Fatalf("a lying report locked the camera out: %v", err)
	}
	if !mismatch() {
		t.Fatal("a code 5 steps from the report did not flag the camera")
	}
	// Flagged: the report no longer centres the window.
	report(2)
	if err := try(2); !clockOff(err) {
		t.Fatalf("code at the flagged report's offset: %v, want clock-off (the window did not move)", err)
	}
	if !mismatch() {
		t.Fatal("flag lost")
	}
	// A report that agrees with the codes again clears it at the next code.
	report(-3)
	if err := try(-3); err != nil {
		t.Fatal(err)
	}
	if mismatch() {
		t.Fatal("an agreeing code did not clear the flag")
	}
	// Audited once each way.
	rows, err := st.AuditLog(ctx, "SN1", 50)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range rows {
		if e.Action == "camera.clock-mismatch" {
			got[e.Result]++
		}
	}
	if got["flagged"] != 1 || got["cleared"] != 1 {
		t.Fatalf("mismatch audit rows %v, want one flagged, one cleared", got)
	}
	// A stale report centres nothing.
	report(4)
	clock.Advance(DefaultClockFresh)
	if err := try(4); !clockOff(err) {
		t.Fatalf("a report older than %v centred the window: %v", DefaultClockFresh, err)
	}
}
