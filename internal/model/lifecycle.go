package model

import (
	"errors"
	"fmt"
)

// ErrUnknownOp is an operation that is none of OpProvision, OpRotate,
// OpWipe.
var ErrUnknownOp = errors.New("unknown operation")

// TransitionError is an operation the camera's state does not allow.
type TransitionError struct {
	State CameraState
	Op    Op
}

// Error says why, to be prefixed with the camera ("camera X " + Error()).
func (e *TransitionError) Error() string {
	switch e.Op {
	case OpProvision:
		return fmt.Sprintf("is %s: use rotate to replace its seed, or wait for the wipe", e.State)
	case OpRotate:
		return fmt.Sprintf("is %s: only a provisioned camera can be rotated (use provision)", e.State)
	case OpWipe:
		return "is already wiped"
	}
	return fmt.Sprintf("is %s: %s is not allowed", e.State, e.Op)
}

// NextState is the camera lifecycle: the state a camera in current enters
// when op starts. Provision is allowed from registered, pending or wiped
// (not over a live seed nor during a wipe) and makes the camera pending;
// rotate only from provisioned, which it stays (the old seed verifies
// codes until the camera proves the new one); wipe from any state but
// wiped, and makes it wiping. Anything else is a *TransitionError, or
// ErrUnknownOp.
func NextState(current CameraState, op Op) (CameraState, error) {
	switch op {
	case OpProvision:
		if current == StateProvisioned || current == StateWiping {
			return "", &TransitionError{State: current, Op: op}
		}
		return StatePending, nil
	case OpRotate:
		if current != StateProvisioned {
			return "", &TransitionError{State: current, Op: op}
		}
		return StateProvisioned, nil
	case OpWipe:
		if current == StateWiped {
			return "", &TransitionError{State: current, Op: op}
		}
		return StateWiping, nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownOp, op)
}

// CompletedState is the state a camera enters when it proves op done: a
// wipe leaves it wiped, a provision or rotate provisioned with the new
// seed active.
func CompletedState(op Op) CameraState {
	if op == OpWipe {
		return StateWiped
	}
	return StateProvisioned
}

// DropsSeed says op ends the active seed when it starts (a wipe: the
// camera stops verifying codes before it acknowledges), not when it
// completes.
func DropsSeed(op Op) bool { return op == OpWipe }
