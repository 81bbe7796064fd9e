package storage

import (
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("conflict")
	// ErrClosed is returned for writes after Close.
	ErrClosed = errors.New("store closed")
	// ErrReplayed is an authorization code used a second time.
	ErrReplayed = errors.New("authorization code already used")
	// ErrStepUsed is a one-time code whose step (or a later one) was
	// already accepted for its source: a replay, or a concurrent use of
	// the same code that lost.
	ErrStepUsed = errors.New("one-time code already used")
)

// ThrottledError says an attempt that took no slot before it was
// evaluated (model.Settlement.Unreserved) was refused one when it tried to
// pass: a counter is blocked or its slots are held. Nothing changed.
type ThrottledError struct {
	// RetryAfter is how long the caller should wait (model.RetryAfter).
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string { return "attempt refused by its throttle counters" }

// BuildCommand makes the sealed MQTT command for an operation once its
// version is fixed.
type BuildCommand func(version uint64) ([]byte, error)

// UnavailableError says the database cannot take writes now — the disk is
// full, the file system is read-only, or I/O fails — and the caller should
// try again later: servers answer 503 with the reason.
type UnavailableError struct {
	// Reason is fit to show a client: "disk full", "read-only", "I/O error".
	Reason string
	Err    error
}

func (e *UnavailableError) Error() string { return "storage unavailable: " + e.Reason }

// Unwrap returns the database's error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// RetryAfter is how long a client should wait before trying again.
func (e *UnavailableError) RetryAfter() time.Duration { return 30 * time.Second }
