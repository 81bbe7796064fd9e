package model

import (
	"math"
	"time"
)

// ClockChallenge is the server's outstanding clock challenge to a camera:
// the nonce the camera's next clock report must sign and when the server
// sent it (one per camera; a newer replaces an older).
type ClockChallenge struct {
	Serial string
	// Nonce is unpredictable and single use; it need not be secret.
	Nonce []byte
	// Sent is when the server sent the challenge (its own clock).
	Sent time.Time
}

// ClockReport is one signed clock report of a camera (its status topic),
// verified and answering the server's outstanding challenge, as the
// server records it.
type ClockReport struct {
	Serial string
	// Seq is the camera's report counter: a report whose Seq is not above
	// the last recorded one is a replay and changes nothing.
	Seq uint64
	// Offset is the camera's clock minus the server's at the midpoint of
	// the round trip: camera time − (challenge sent + RTT/2).
	Offset time.Duration
	// RTT is the round trip the server measured: from sending the
	// challenge to receiving the report that answers it.
	RTT time.Duration
	// At is when the server received the report (its own clock).
	At time.Time
}

// CameraClock is what the server knows of a camera's clock from its
// signed reports.
type CameraClock struct {
	Serial string        `json:"serial"`
	Seq    uint64        `json:"seq"`
	Offset time.Duration `json:"offsetNs"`
	RTT    time.Duration `json:"rttNs"`
	At     time.Time     `json:"reportedAt"`
	// DriftingSince is when the reported offset went past the alert
	// threshold (nil: within it).
	DriftingSince *time.Time `json:"driftingSince,omitempty"`
	// MismatchSince is when a code accepted from the camera disagreed
	// with its reported clock by more than a step (nil: they agree, or no
	// code was checked yet): its reports are not used to centre the
	// verification window until they agree again.
	MismatchSince *time.Time `json:"mismatchSince,omitempty"`
}

// Drifting says the camera's reported offset is past the alert threshold.
func (c CameraClock) Drifting() bool { return c.DriftingSince != nil }

// Mismatch says the camera's reported clock disagrees with its codes.
func (c CameraClock) Mismatch() bool { return c.MismatchSince != nil }

// Steps is the clock offset in TOTP steps of period seconds at now: the
// step the camera shows minus the step of the server's clock, both at
// now. It is not a plain rounding of Offset/period: a camera 10 s fast
// shows the next step during the last 10 s of each step only.
func (c CameraClock) Steps(now time.Time, period int64) int64 {
	if period <= 0 {
		return 0
	}
	ms := now.UnixMilli()
	cam := ms + c.Offset.Milliseconds()
	return floorDivInt(cam, period*1000) - floorDivInt(ms, period*1000)
}

// Usable says the report may centre the verification window at now: not
// older than fresh, its round trip under one step (the offset is known to
// ±RTT/2), and not in disagreement with the camera's codes.
func (c CameraClock) Usable(now time.Time, fresh time.Duration, period int64) bool {
	age := now.Sub(c.At)
	return !c.Mismatch() && age >= -time.Minute && age <= fresh && c.RTT >= 0 &&
		c.RTT < time.Duration(period)*time.Second
}

// AbsOffsetSeconds is the magnitude of the offset in seconds (for the
// fleet's drift histogram).
func (c CameraClock) AbsOffsetSeconds() float64 { return math.Abs(c.Offset.Seconds()) }

func floorDivInt(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
