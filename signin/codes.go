// Package signin is camotp's sign-in service: password, then the MFA
// challenge in which the officer types the code read off the body camera
// assigned to them (or uses another method the organisation enabled). It
// checks the code against that camera's seed only, with replay protection,
// clock-drift learning and resync, and throttling, and writes the audit
// log. It knows no transport: the web pages (package web), the JSON API
// (package api), the OpenID Connect provider (package oidc) and the RADIUS
// server (package radius) are front doors over it.
package signin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
)

// CodeStore keeps the durable per-source state of code checking.
type CodeStore interface {
	OTPState(ctx context.Context, subject string) (model.OTPState, bool, error)
	AcceptStep(ctx context.Context, subject string, seedVersion uint64, step, drift int64) (bool, error)
	SetResync(ctx context.Context, subject string, seedVersion uint64, offset, step int64) error
}

// Outcome is the result of checking one code.
type Outcome int

// Code check outcomes.
const (
	// Invalid: the code matches no step in reach.
	Invalid Outcome = iota
	// Accepted: the code is valid and now used up.
	Accepted
	// Replayed: the code (or one of a later step) was already accepted.
	Replayed
	// ClockOff: the code matches a step far outside the window; not
	// accepted, but remembered: a later code confirming the same offset
	// resyncs the camera and is accepted.
	ClockOff
)

// String names the outcome for the audit log.
func (o Outcome) String() string {
	return [...]string{"invalid", "accepted", "replayed", "clock-off"}[o]
}

// Checker applies the RFC 6238 checking rules.
type Checker struct {
	Store CodeStore
	// Window is how many steps either side of the expected one are accepted (default 1).
	Window int64
	// ResyncRange is how far (in steps from the verifier's clock) a code is
	// looked for to detect a camera whose clock is off (default 10).
	ResyncRange int64

	// computed, when set, is told each step whose code a check computes
	// (tests count the work).
	computed func(step int64)
}

// CheckResult details a check.
type CheckResult struct {
	Outcome Outcome
	// Offset is the camera's clock offset in steps seen by this check.
	Offset int64
	// Resynced is set when this code confirmed a pending resync.
	Resynced bool
	// Use is the replay record an Accepted code of Match still needs:
	// the commit that acts on the code takes it (storage's ExchangeToken),
	// and a code whose step was used meanwhile is Replayed. Nil when
	// nothing is left to record.
	Use *model.StepUse
	// Resync is the candidate of a ClockOff code of Match (Step, and the
	// offset in Drift) that the caller records with SetResync once the
	// attempt is allowed to have an effect (Check records it itself).
	Resync *model.StepUse
}

// Record takes the write a Match result still owes other than its replay
// record: a ClockOff code's resync candidate.
func (c *Checker) Record(ctx context.Context, res CheckResult) error {
	if r := res.Resync; res.Outcome == ClockOff && r != nil {
		return c.Store.SetResync(ctx, r.Subject, r.SeedVersion, r.Drift, r.Step)
	}
	return nil
}

// Check verifies code for the source subject (e.g. "cam:SN") holding seed,
// at time now. Accepted codes are recorded durably before Check returns.
func (c *Checker) Check(ctx context.Context, subject string, seed device.Seed, code string, now time.Time) (CheckResult, error) {
	res, err := c.Match(ctx, subject, seed, code, now)
	if err == nil {
		err = c.Record(ctx, res)
	}
	if err != nil || res.Use == nil {
		return res, err
	}
	u := res.Use
	won, err := c.Store.AcceptStep(ctx, u.Subject, u.SeedVersion, u.Step, u.Drift)
	if err != nil {
		return CheckResult{}, err
	}
	if !won { // a concurrent use of the same code won
		return CheckResult{Outcome: Replayed, Offset: res.Offset}, nil
	}
	res.Use = nil
	return res, nil
}

// Match is Check writing nothing: it returns the replay record of an
// accepted code in the result's Use, for the caller to take in the commit
// that acts on the code (one write where Check and that commit are two),
// and a ClockOff code's resync candidate in Resync (Record). Until it is
// taken, the code is not used up.
func (c *Checker) Match(ctx context.Context, subject string, seed device.Seed, code string, now time.Time) (CheckResult, error) {
	st, found, err := c.record(ctx, subject, seed, code)
	if err != nil {
		return CheckResult{}, err
	}
	return c.MatchRecord(ctx, subject, seed, st, found, code, now)
}

// MatchWindow is Match within the window only (MatchWindowRecord).
func (c *Checker) MatchWindow(ctx context.Context, subject string, seed device.Seed, code string, now time.Time) (CheckResult, error) {
	st, found, err := c.record(ctx, subject, seed, code)
	if err != nil {
		return CheckResult{}, err
	}
	return c.MatchWindowRecord(subject, seed, st, found, code, now)
}

// record reads subject's replay record for a well-formed code (none is
// needed for another).
func (c *Checker) record(ctx context.Context, subject string, seed device.Seed, code string) (model.OTPState, bool, error) {
	if !wellFormed(seed, code) {
		return model.OTPState{}, false, nil
	}
	return c.Store.OTPState(ctx, subject)
}

// MatchRecord is Match with the replay record of subject read already
// (found false when there is none), e.g. in the read that found the seed.
func (c *Checker) MatchRecord(ctx context.Context, subject string, seed device.Seed, st model.OTPState, found bool, code string, now time.Time) (CheckResult, error) {
	return c.match(subject, seed, st, found, code, now, true, nil)
}

// MatchRecordNear is MatchRecord that also tries the window centred on
// near, an offset in steps the source's own signed clock report gives
// (nil: none, MatchRecord): a camera that drifted since its last
// accepted code passes at the first try. The window of the learnt drift
// is tried too, so a report that lies cannot lock the camera out; with a
// near offset every code computes both windows (the same work for every
// code).
func (c *Checker) MatchRecordNear(subject string, seed device.Seed, st model.OTPState, found bool, near *int64, code string, now time.Time) (CheckResult, error) {
	return c.match(subject, seed, st, found, code, now, true, near)
}

// MatchWindowRecordNear is MatchWindowRecord with the window centred on
// near tried too (MatchRecordNear).
func (c *Checker) MatchWindowRecordNear(subject string, seed device.Seed, st model.OTPState, found bool, near *int64, code string, now time.Time) (CheckResult, error) {
	return c.match(subject, seed, st, found, code, now, false, near)
}

// MatchWindowRecord is MatchRecord within the window only: Accepted,
// Replayed, or Invalid for a code in no step of the window (which may
// still be a clock-off code: MatchRecord looks further). It does the same
// work for every well-formed code — every step of the window is computed
// and compared — so an attempt evaluated before it holds a throttle slot
// tells nothing by its time; looking further, whose work depends on the
// code, waits for the slot.
func (c *Checker) MatchWindowRecord(subject string, seed device.Seed, st model.OTPState, found bool, code string, now time.Time) (CheckResult, error) {
	return c.match(subject, seed, st, found, code, now, false, nil)
}

// match checks code in the window (and in the one centred on near, when
// given) and, when outside, beyond them.
func (c *Checker) match(subject string, seed device.Seed, st model.OTPState, found bool, code string, now time.Time, outside bool, near *int64) (CheckResult, error) {
	opts, err := seed.Opts()
	if err != nil {
		return CheckResult{}, err
	}
	if !wellFormed(seed, code) {
		return CheckResult{Outcome: Invalid}, nil
	}
	if !found || st.SeedVersion != seed.Version {
		st = model.OTPState{SeedVersion: seed.Version, LastStep: -1}
	}
	window, reach := c.Window, c.ResyncRange
	if window <= 0 {
		window = 1
	}
	if reach < window {
		reach = 10
	}
	period := int64(opts.Period)
	cur := floorDiv(now.Unix(), period)
	b32 := seed.Base32()
	matches := func(step int64) (bool, error) {
		if c.computed != nil {
			c.computed(step)
		}
		want, err := totpAt(b32, step, period, opts)
		if err != nil {
			return false, err
		}
		return subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1, nil
	}
	center := cur + st.Drift
	// The windows: the one centred on the source's reported clock first
	// (when given), then the one centred on the learnt drift.
	centers := []int64{center}
	if near != nil {
		centers = []int64{cur + *near, center}
	}
	inWindows := func(step int64) bool {
		for _, ce := range centers {
			if step >= ce-window && step <= ce+window {
				return true
			}
		}
		return false
	}
	// Expected step first, then outwards; every step of every window is
	// tried whatever matched (the same work for every code). Two steps of
	// one seed can show the same code (one pair in a million): a match on
	// a used step gives way to another step of the window that matches.
	var accept *model.StepUse
	replayed, replayOffset := false, int64(0)
	for n := int64(0); n < int64(len(centers))*(2*window+1); n++ {
		ce, i := centers[n/(2*window+1)], n%(2*window+1)
		step := ce + (i+1)/2
		if i%2 == 1 {
			step = ce - (i+1)/2
		}
		ok, err := matches(step)
		if err != nil {
			return CheckResult{}, err
		}
		switch {
		case !ok:
		case step <= st.LastStep:
			if !replayed {
				replayed, replayOffset = true, step-cur
			}
		case accept == nil:
			accept = &model.StepUse{Subject: subject, SeedVersion: seed.Version, Step: step, Drift: step - cur}
		}
	}
	if accept != nil {
		return CheckResult{Outcome: Accepted, Offset: accept.Drift, Use: accept}, nil
	}
	if replayed {
		return CheckResult{Outcome: Replayed, Offset: replayOffset}, nil
	}
	if !outside {
		return CheckResult{Outcome: Invalid}, nil
	}
	// Outside the window: is the camera's clock off?
	for o := -reach; o <= reach; o++ {
		step := cur + o
		if inWindows(step) {
			continue // already tried
		}
		ok, err := matches(step)
		if err != nil {
			return CheckResult{}, err
		}
		if !ok {
			continue
		}
		if step <= st.LastStep {
			if !replayed {
				replayed, replayOffset = true, o
			}
			continue
		}
		if st.ResyncOffset != nil && *st.ResyncOffset == o && step > st.ResyncStep {
			use := &model.StepUse{Subject: subject, SeedVersion: seed.Version, Step: step, Drift: o}
			return CheckResult{Outcome: Accepted, Offset: o, Resynced: true, Use: use}, nil
		}
		return CheckResult{Outcome: ClockOff, Offset: o, Resync: &model.StepUse{Subject: subject, SeedVersion: seed.Version, Step: step, Drift: o}}, nil
	}
	if replayed {
		return CheckResult{Outcome: Replayed, Offset: replayOffset}, nil
	}
	return CheckResult{Outcome: Invalid}, nil
}

// wellFormed tells whether code has the seed's number of digits and
// nothing else.
func wellFormed(seed device.Seed, code string) bool {
	return len(code) == seed.Digits && allDigits(code)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// totpAt is the code of one step (pquerna/otp does the HMAC and truncation).
func totpAt(b32 string, step, period int64, opts totp.ValidateOpts) (string, error) {
	code, err := totp.GenerateCodeCustom(b32, time.Unix(step*period, 0), opts)
	if err != nil {
		return "", fmt.Errorf("generate code: %w", err)
	}
	return code, nil
}
