package model

import "time"

// OTPState is what the verifier remembers of one code source (a camera):
// the last accepted step (replay protection), the learnt clock drift in
// steps, and a pending resync candidate. It belongs to one seed version; a
// new seed starts fresh.
type OTPState struct {
	SeedVersion  uint64
	LastStep     int64
	Drift        int64
	ResyncOffset *int64
	ResyncStep   int64
}

// StepUse is a code step to record as used for a source, with the drift
// learnt: the replay record that the commit ending a sign-in step takes
// first (see storage.Tokens.ExchangeToken).
type StepUse struct {
	Subject     string
	SeedVersion uint64
	Step, Drift int64
	// Rotation, when not empty, is the serial of the camera whose pending
	// rotation to SeedVersion the code proves: the same commit completes
	// it (the old seed dies) and audits it.
	Rotation string
}

// PendingCheck is what the MFA step of a pending sign-in needs, read at
// once: the pending token and, when a camera is assigned to its user, what
// checking that camera's codes needs.
type PendingCheck struct {
	Token Token
	// Camera is nil when no camera is assigned to Token.Username.
	Camera *CameraCheck
}

// Token kinds.
const (
	TokenPending = "pending" // password passed, MFA pending (API and web)
	TokenSession = "session" // signed in
	TokenTrust   = "trust"   // trusted browser: skips MFA
)

// Token is a stored token (only its SHA-256 is kept).
type Token struct {
	Kind      string
	Username  string
	Method    string
	IP        string
	CreatedAt time.Time
	ExpiresAt time.Time
}
