package model

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Lost says that a camera was reported lost or stolen: a flag kept apart
// from the provisioning state, which a camera keeps until it is declared
// found, and found only after a fresh provision.
type Lost struct {
	At time.Time `json:"at"`
	// By is who reported it (a console user, or "admin" for the admin
	// API's token).
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Version is the highest provisioning version the camera had when it
	// was reported (its queued wipe's, when one was queued): no seed of
	// it or below verifies a code any more, and found needs the camera
	// proven with a seed of a later version.
	Version uint64 `json:"version"`
}

// MaxLostReason bounds the reason given for a report, in bytes.
const MaxLostReason = 500

// Errors of a report's reason.
var (
	ErrLostReasonTooLong = fmt.Errorf("reason: at most %d bytes", MaxLostReason)
	ErrLostReasonText    = errors.New("reason: printable text on one line (no control characters, valid UTF-8)")
)

// CleanLostReason checks a reason for a report and returns it trimmed of
// blanks around it: valid UTF-8, no control characters (so it stays one
// line in logs, CSV and syslog), at most MaxLostReason bytes.
func CleanLostReason(s string) (string, error) {
	if len(s) > MaxLostReason*2 {
		return "", ErrLostReasonTooLong // not worth trimming
	}
	if !utf8.ValidString(s) {
		return "", ErrLostReasonText
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "", ErrLostReasonText
		}
	}
	s = trimBlanks(s)
	if len(s) > MaxLostReason {
		return "", ErrLostReasonTooLong
	}
	return s, nil
}

// trimBlanks trims Unicode white space around s.
func trimBlanks(s string) string {
	start, end := 0, len(s)
	for start < end {
		r, n := utf8.DecodeRuneInString(s[start:])
		if !unicode.IsSpace(r) {
			break
		}
		start += n
	}
	for end > start {
		r, n := utf8.DecodeLastRuneInString(s[start:end])
		if !unicode.IsSpace(r) {
			break
		}
		end -= n
	}
	return s[start:end]
}

// LostReport is a report that a camera is lost or stolen, as the store
// records it: who, from where, why.
type LostReport struct {
	Actor, SourceIP string
	// Reason is CleanLostReason's; "" when none was given.
	Reason string
}

// LostOutcome is what a report did.
type LostOutcome struct {
	// Camera is the camera after the report.
	Camera Camera
	// Already says the camera was reported lost before: nothing changed
	// (Camera.Lost is the first report).
	Already bool
	// Officer is the officer the camera was taken from ("" none).
	Officer string
	// Wipe is the version of the wipe queued (0: none was needed, the
	// camera being wiped, or one already queued: WipePending).
	Wipe uint64
	// WipePending says a wipe is waiting for the camera's proof (queued
	// now or before).
	WipePending bool
}

// Audit actions of reports and founds.
const (
	AuditReportLost = "camera.report-lost"
	AuditFound      = "camera.found"
)

// AuditDetail is the audit row's detail of a report that changed the
// camera: the officer taken off, the wipe, the reason (no secret).
func (o LostOutcome) AuditDetail(reason string) string {
	d := "no officer"
	if o.Officer != "" {
		d = "officer " + o.Officer + " unassigned"
	}
	switch {
	case o.Wipe > 0:
		d += fmt.Sprintf("; wipe version %d queued", o.Wipe)
	case o.WipePending:
		d += "; wipe already pending"
	default:
		d += "; camera already wiped"
	}
	if reason != "" {
		d += "; reason: " + reason
	}
	return d
}

// FoundError is a found the camera's state does not allow yet, with what
// to do first.
type FoundError struct {
	Serial string
	State  CameraState
	// NotLost says the camera is not reported lost at all.
	NotLost bool
}

// Error says why and what to do.
func (e *FoundError) Error() string {
	switch {
	case e.NotLost:
		return fmt.Sprintf("camera %s is not reported lost: nothing to reverse", e.Serial)
	case e.State == StateWiping:
		return fmt.Sprintf("camera %s is reported lost and its wipe is not proven yet: it is wiped when it next connects; "+
			"then provision it with a new seed (camotp admin camera provision %s) and say found again", e.Serial, e.Serial)
	}
	return fmt.Sprintf("camera %s is reported lost: found needs a fresh provision first, so that the old seed is dead: "+
		"provision it (camotp admin camera provision %s --wait 30s), then say found again", e.Serial, e.Serial)
}

// CanBeFound says whether a lost camera c may be declared found: it is
// provisioned with a seed newer than any it had when it was reported
// (the copy a thief may hold is dead). Otherwise a *FoundError says what
// to do first.
func CanBeFound(c Camera) error {
	if c.Lost == nil {
		return &FoundError{Serial: c.Serial, State: c.State, NotLost: true}
	}
	if c.State != StateProvisioned || c.Version <= c.Lost.Version {
		return &FoundError{Serial: c.Serial, State: c.State}
	}
	return nil
}

// LostAssignError refuses to assign a camera that is reported lost.
func LostAssignError(serial string) error {
	return fmt.Errorf("camera %s is reported lost: it cannot be assigned until it is found (after a fresh provision)", serial)
}
