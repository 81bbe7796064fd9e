package signin

import (
	"time"

	"testing"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
)

// TestMatchRotating: while a rotation is in flight a code of either seed
// passes, a code of the new seed names the camera whose rotation it
// proves, replays stay refused per seed version, and every code costs the
// two windows whatever it is.
func TestMatchRotating(t *testing.T) {
	next := device.Seed{Secret: []byte("abcdefghijabcdefghij"), Algorithm: "SHA1", Digits: 6, Period: 30, Version: 2}
	oldCode, newCode := codeAt(t, testSeed, 0), codeAt(t, next, 0)
	if oldCode == newCode {
		t.Fatal("test seeds show the same code")
	}
	wrong := "000000"
	if wrong == oldCode || wrong == newCode {
		wrong = "111111"
	}
	usedOld := model.OTPState{SeedVersion: 1, LastStep: floorDiv(base.Unix(), 30), Drift: 0}
	usedNew := model.OTPState{SeedVersion: 2, LastStep: floorDiv(base.Unix(), 30), Drift: 0}
	driftOld := model.OTPState{SeedVersion: 1, LastStep: 0, Drift: 3} // a camera 3 steps ahead, learnt on the old seed
	tests := []struct {
		name       string
		code       string
		st         model.OTPState
		found      bool
		at         int64 // verifier's step offset from base
		want       Outcome
		wantRotate bool
		wantVer    uint64
	}{
		{"old seed", oldCode, model.OTPState{}, false, 0, Accepted, false, 1},
		{"new seed", newCode, model.OTPState{}, false, 0, Accepted, true, 2},
		{"new seed, old step used", newCode, usedOld, true, 0, Accepted, true, 2},
		{"old seed replayed", oldCode, usedOld, true, 0, Replayed, false, 0},
		{"new seed replayed", newCode, usedNew, true, 0, Replayed, false, 0},
		{"wrong", wrong, model.OTPState{}, false, 0, Invalid, false, 0},
		{"new seed, drift of the old one", codeAt(t, next, 3), driftOld, true, 0, Accepted, true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			steps := 0
			c := &Checker{Window: 1, computed: func(int64) { steps++ }}
			now := base.Add(time30(tc.at))
			res, err := c.MatchRotating("cam:A", "A", testSeed, next, tc.st, tc.found, nil, tc.code, now, false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.want {
				t.Fatalf("outcome %v, want %v", res.Outcome, tc.want)
			}
			if steps != 6 {
				t.Errorf("%d steps computed, want 6 (both windows) for every code", steps)
			}
			if tc.want != Accepted {
				return
			}
			if res.Use == nil || res.Use.SeedVersion != tc.wantVer || (res.Use.Rotation == "A") != tc.wantRotate {
				t.Fatalf("use %+v, want version %d rotation %v", res.Use, tc.wantVer, tc.wantRotate)
			}
		})
	}
}

// TestMatchRotatingNearAClockReport: a rotating camera whose fresh clock
// report says it runs 4 steps fast shows new-seed codes 4 steps ahead;
// they pass at the first try, and every code costs both seeds' two
// windows (12 steps), whatever it is.
func TestMatchRotatingNearAClockReport(t *testing.T) {
	next := device.Seed{Secret: []byte("abcdefghijabcdefghij"), Algorithm: "SHA1", Digits: 6, Period: 30, Version: 2}
	near := int64(4)
	for _, tc := range []struct {
		name   string
		code   string
		want   Outcome
		rotate bool
	}{
		{"new seed at the report's offset", codeAt(t, next, 4), Accepted, true},
		{"old seed at the report's offset", codeAt(t, testSeed, 4), Accepted, false},
		{"new seed beyond both windows", codeAt(t, next, 8), Invalid, false},
		{"wrong", wrongCode(t, next, base), Invalid, false},
	} {
		steps := 0
		c := &Checker{Window: 1, computed: func(int64) { steps++ }}
		res, err := c.MatchRotating("cam:A", "A", testSeed, next, model.OTPState{}, false, &near, tc.code, base, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != tc.want || steps != 12 || (res.Use != nil && res.Use.Rotation == "A") != tc.rotate {
			t.Errorf("%s: %v (use %+v) after %d steps, want %v rotation %v after 12", tc.name, res.Outcome, res.Use, steps, tc.want, tc.rotate)
		}
	}
}

func time30(steps int64) time.Duration { return time.Duration(steps) * 30 * time.Second }

// TestMatchPrevious: just after a rotation is proven, a code of the
// replaced seed read off the camera before it switched still passes; one
// of a later step, or after a code of the new seed was used, does not;
// every code costs both windows.
func TestMatchPrevious(t *testing.T) {
	active := device.Seed{Secret: []byte("abcdefghijabcdefghij"), Algorithm: "SHA1", Digits: 6, Period: 30, Version: 2}
	previous := testSeed // version 1
	proven := base.Add(10 * time.Second)
	tests := []struct {
		name    string
		code    string
		st      model.OTPState
		found   bool
		at      int64 // verifier's step offset from base
		want    Outcome
		wantVer uint64
	}{
		{"old code of the proof's step, submitted a step later", codeAt(t, previous, 0), model.OTPState{}, false, 1, Accepted, 1},
		{"old code of the step before", codeAt(t, previous, -1), model.OTPState{SeedVersion: 1, LastStep: 0}, true, 0, Accepted, 1},
		{"old code of a later step", codeAt(t, previous, 1), model.OTPState{}, false, 1, Invalid, 0},
		{"new code", codeAt(t, active, 1), model.OTPState{}, false, 1, Accepted, 2},
		{"old code after a new one was used", codeAt(t, previous, 0), model.OTPState{SeedVersion: 2, LastStep: 0}, true, 0, Invalid, 0},
		{"old code used already", codeAt(t, previous, 0), model.OTPState{SeedVersion: 1, LastStep: floorDiv(base.Unix(), 30)}, true, 0, Replayed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			steps := 0
			c := &Checker{Window: 1, computed: func(int64) { steps++ }}
			if tc.st.SeedVersion == 1 && tc.st.LastStep == 0 {
				tc.st.LastStep = floorDiv(base.Unix(), 30) - 2
			}
			if tc.st.SeedVersion == 2 && tc.st.LastStep == 0 {
				tc.st.LastStep = floorDiv(base.Unix(), 30) - 5
			}
			res, err := c.MatchPrevious("cam:A", active, previous, proven, tc.st, tc.found, nil, tc.code, base.Add(time30(tc.at)), false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.want {
				t.Fatalf("outcome %v, want %v", res.Outcome, tc.want)
			}
			if steps != 6 {
				t.Errorf("%d steps computed, want 6 (both windows) for every code", steps)
			}
			if tc.want == Accepted && (res.Use == nil || res.Use.SeedVersion != tc.wantVer || res.Use.Rotation != "") {
				t.Fatalf("use %+v, want version %d", res.Use, tc.wantVer)
			}
		})
	}
}
