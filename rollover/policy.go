// Package rollover rotates camera seeds on a schedule: a policy (rotate
// every N days, inside a daily window, at most a share of the fleet per
// hour) and a Scheduler that, driven by an injected clock, claims due,
// online cameras in the shared store and starts the ordinary rotate
// operation on them (provisioning.Service.Start), spread over the window.
package rollover

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // --tz works on hosts without a zoneinfo database
)

// SettingKey is the organisation setting the policy is kept under (JSON).
const SettingKey = "rotation.policy"

// Bounds of a policy.
const (
	MinEvery          = time.Hour
	MaxEvery          = 3650 * 24 * time.Hour
	DefaultMaxPerHour = 10 // percent of the fleet
	maxInput          = 64 // bytes of any one field
)

// Policy is the rollover policy as the admin API and the setting carry it.
// The zero Policy (no Every) is "off".
type Policy struct {
	// Every is how old an active seed may get: days and hours, "90d",
	// "36h", "1d12h". Empty: rotation off.
	Every string `json:"every,omitempty"`
	// Window is the daily time span rotations start in, "HH:MM-HH:MM"
	// (it may cross midnight). Empty: any time.
	Window string `json:"window,omitempty"`
	// TZ is the IANA zone of Window ("Europe/Paris"). Empty: UTC.
	TZ string `json:"tz,omitempty"`
	// MaxPerHour is the share of the fleet, in percent (1 to 100), that
	// may start a rotation in one hour. 0: DefaultMaxPerHour.
	MaxPerHour int `json:"maxPerHour,omitempty"`
}

// Schedule is a Policy parsed.
type Schedule struct {
	Every time.Duration
	// HasWindow says Start and End (time of day) bound when rotations
	// start; End before Start crosses midnight.
	HasWindow  bool
	Start, End time.Duration
	Loc        *time.Location
	MaxPerHour int
}

// Off says the policy rotates nothing.
func (p Policy) Off() bool { return p.Every == "" }

// Parse checks p and returns its schedule; an error says what is wrong
// with which field.
func (p Policy) Parse() (Schedule, error) {
	every, err := ParseEvery(p.Every)
	if err != nil {
		return Schedule{}, err
	}
	s := Schedule{Every: every, Loc: time.UTC, MaxPerHour: p.MaxPerHour}
	if s.MaxPerHour == 0 {
		s.MaxPerHour = DefaultMaxPerHour
	}
	if s.MaxPerHour < 1 || s.MaxPerHour > 100 {
		return Schedule{}, fmt.Errorf("max per hour %d%%: want 1%% to 100%% of the fleet", p.MaxPerHour)
	}
	if p.Window != "" {
		if s.Start, s.End, err = ParseWindow(p.Window); err != nil {
			return Schedule{}, err
		}
		s.HasWindow = true
	}
	if p.TZ != "" {
		if len(p.TZ) > maxInput || strings.HasPrefix(p.TZ, "/") || strings.Contains(p.TZ, "..") {
			return Schedule{}, fmt.Errorf("time zone %q: want an IANA name such as Europe/Paris", p.TZ)
		}
		if s.Loc, err = time.LoadLocation(p.TZ); err != nil {
			return Schedule{}, fmt.Errorf("time zone %q: want an IANA name such as Europe/Paris: %w", p.TZ, err)
		}
	}
	return s, nil
}

// Validate reports whether p is off or a valid policy.
func (p Policy) Validate() error {
	if p.Off() {
		if p.Window != "" || p.TZ != "" || p.MaxPerHour != 0 {
			return errors.New("rotation policy without --every: set the period, or turn it off")
		}
		return nil
	}
	_, err := p.Parse()
	return err
}

// Encode is the policy as the setting keeps it.
func (p Policy) Encode() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// Decode reads the setting's value ("" or absent: off).
func Decode(v string) (Policy, error) {
	var p Policy
	if v == "" {
		return p, nil
	}
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return Policy{}, fmt.Errorf("rotation policy setting: %w", err)
	}
	return p, p.Validate()
}

// String is the policy in the words of the CLI.
func (p Policy) String() string {
	if p.Off() {
		return "off"
	}
	s := "every " + p.Every
	if p.Window != "" {
		s += ", window " + p.Window
	} else {
		s += ", any time of day"
	}
	tz := p.TZ
	if tz == "" {
		tz = "UTC"
	}
	s += " " + tz
	n := p.MaxPerHour
	if n == 0 {
		n = DefaultMaxPerHour
	}
	return s + fmt.Sprintf(", at most %d%% of the fleet per hour", n)
}

// ParseEvery reads a period of days and hours: "90d", "36h", "1d12h"
// (each unit once, days first), within MinEvery and MaxEvery.
func ParseEvery(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("period %q: %s (want days and hours, such as 90d, 36h or 1d12h)", trunc(s), why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > maxInput {
		return bad("too long")
	}
	var total time.Duration
	rest, units := s, "dh"
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return bad("a number must be followed by d or h")
		}
		if i > 6 {
			return bad("number too large")
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil {
			return bad("not a number")
		}
		u := strings.IndexByte(units, rest[i])
		if u < 0 {
			return bad(fmt.Sprintf("unit %q", rest[i]))
		}
		unit := time.Hour
		if units[u] == 'd' {
			unit = 24 * time.Hour
		}
		total += time.Duration(n) * unit
		units, rest = units[u+1:], rest[i+1:]
	}
	if total < MinEvery || total > MaxEvery {
		return bad(fmt.Sprintf("must be between %s and %dd", MinEvery, MaxEvery/(24*time.Hour)))
	}
	return total, nil
}

// FormatEvery writes d as ParseEvery reads it.
func FormatEvery(d time.Duration) string {
	days, hours := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour
	switch {
	case days == 0:
		return fmt.Sprintf("%dh", hours)
	case hours == 0:
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, hours)
}

// ParseWindow reads "HH:MM-HH:MM" (24-hour clock) into the times of day it
// starts and ends; the two differ, and the end may be before the start
// (the window crosses midnight).
func ParseWindow(s string) (start, end time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok || len(s) > maxInput {
		return 0, 0, fmt.Errorf("window %q: want HH:MM-HH:MM, such as 02:00-05:00", trunc(s))
	}
	if start, err = parseClock(a); err == nil {
		end, err = parseClock(b)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("window %q: %w", trunc(s), err)
	}
	if start == end {
		return 0, 0, fmt.Errorf("window %q: starts when it ends (leave --window out for any time of day)", trunc(s))
	}
	return start, end, nil
}

// parseClock reads HH:MM.
func parseClock(s string) (time.Duration, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || s[0] == '+' || s[0] == '-' || s[3] == '+' || s[3] == '-' || h > 23 || m > 59 || h < 0 || m < 0 {
		return 0, fmt.Errorf("time %q: want HH:MM from 00:00 to 23:59", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// trunc bounds what an error message repeats of the input.
func trunc(s string) string {
	if len(s) > maxInput {
		return s[:maxInput] + "…"
	}
	return s
}

// Window returns the window that holds t, or, when none does, the next one:
// [start, end) and whether t is in it. Without a window every hour is one
// (rotations are spread over the hour).
func (s Schedule) Window(t time.Time) (start, end time.Time, in bool) {
	if !s.HasWindow {
		start = t.Truncate(time.Hour)
		return start, start.Add(time.Hour), true
	}
	local := t.In(s.Loc)
	y, m, d := local.Date()
	for day := -1; day <= 1; day++ {
		ws, we := s.on(y, m, d+day)
		if !t.Before(ws) && t.Before(we) {
			return ws, we, true
		}
		if t.Before(ws) {
			return ws, we, false
		}
	}
	ws, we := s.on(y, m, d+2)
	return ws, we, false
}

// LastEnd is when the last window before t closed (t itself when t is in
// no window). Without a window: a day before t.
func (s Schedule) LastEnd(t time.Time) time.Time {
	if !s.HasWindow {
		return t.Add(-24 * time.Hour)
	}
	local := t.In(s.Loc)
	y, m, d := local.Date()
	for day := 0; day >= -2; day-- {
		if _, we := s.on(y, m, d+day); !we.After(t) {
			return we
		}
	}
	return t.Add(-48 * time.Hour)
}

// on is the window that starts on the local day y-m-d.
func (s Schedule) on(y int, m time.Month, d int) (time.Time, time.Time) {
	clock := func(day int, off time.Duration) time.Time {
		return time.Date(y, m, day, int(off/time.Hour), int(off%time.Hour/time.Minute), 0, 0, s.Loc)
	}
	ws := clock(d, s.Start)
	if s.End > s.Start {
		return ws, clock(d, s.End)
	}
	return ws, clock(d+1, s.End)
}
