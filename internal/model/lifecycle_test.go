package model

import (
	"errors"
	"testing"
)

// TestNextState is the whole lifecycle table: every state × every op.
func TestNextState(t *testing.T) {
	const refused = CameraState("refused")
	states := []CameraState{StateRegistered, StatePending, StateProvisioned, StateWiping, StateWiped}
	want := map[Op][]CameraState{ // in the order of states
		OpProvision: {StatePending, StatePending, refused, refused, StatePending},
		OpRotate:    {refused, refused, StateProvisioned, refused, refused},
		OpWipe:      {StateWiping, StateWiping, StateWiping, StateWiping, refused},
	}
	for op, row := range want {
		for i, from := range states {
			got, err := NextState(from, op)
			if row[i] == refused {
				var te *TransitionError
				if !errors.As(err, &te) || te.State != from || te.Op != op || got != "" {
					t.Errorf("%s from %s: %q %v, want a TransitionError", op, from, got, err)
				}
				continue
			}
			if err != nil || got != row[i] {
				t.Errorf("%s from %s: %q %v, want %q", op, from, got, err, row[i])
			}
		}
	}
	if _, err := NextState(StateRegistered, Op("melt")); !errors.Is(err, ErrUnknownOp) {
		t.Errorf("unknown op: %v", err)
	}
	for op, st := range map[Op]CameraState{OpProvision: StateProvisioned, OpRotate: StateProvisioned, OpWipe: StateWiped} {
		if got := CompletedState(op); got != st {
			t.Errorf("CompletedState(%s) = %s, want %s", op, got, st)
		}
	}
	if !DropsSeed(OpWipe) || DropsSeed(OpRotate) || DropsSeed(OpProvision) {
		t.Error("only a wipe drops the active seed at start")
	}
	// The messages name what to do instead (the admin API shows them).
	_, err := NextState(StateRegistered, OpRotate)
	if err.Error() != "is registered: only a provisioned camera can be rotated (use provision)" {
		t.Errorf("message %q", err)
	}
}
