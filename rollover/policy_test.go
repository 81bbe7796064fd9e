package rollover

import (
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
)

func TestParseEvery(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90d", 90 * day, ""},
		{"36h", 36 * time.Hour, ""},
		{"1d12h", day + 12*time.Hour, ""},
		{"1h", time.Hour, ""},
		{"3650d", 3650 * day, ""},
		{"", 0, "empty"},
		{"0h", 0, "between"},
		{"3651d", 0, "between"},
		{"90", 0, "followed by d or h"},
		{"d", 0, "followed by d or h"},
		{"12h1d", 0, "unit"},
		{"1d1d", 0, "unit"},
		{"90m", 0, "unit"},
		{"-1d", 0, "followed by d or h"},
		{"9999999d", 0, "too large"},
		{"90 d", 0, "unit"},
		{strings.Repeat("1", 100) + "d", 0, "too long"},
	}
	for _, tc := range tests {
		got, err := ParseEvery(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseEvery(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseEvery(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := ParseEvery(FormatEvery(got)); err != nil || back != got {
			t.Errorf("FormatEvery(%v) = %q does not read back: %v %v", got, FormatEvery(got), back, err)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p   Policy
		err string
	}{
		{Policy{}, ""},
		{Policy{Every: "90d", Window: "02:00-05:00", TZ: "Europe/Paris", MaxPerHour: 25}, ""},
		{Policy{Every: "90d", Window: "22:00-02:00"}, ""},
		{Policy{Window: "02:00-05:00"}, "without --every"},
		{Policy{Every: "90d", Window: "02:00-02:00"}, "starts when it ends"},
		{Policy{Every: "90d", Window: "2:00-05:00"}, "HH:MM"},
		{Policy{Every: "90d", Window: "24:00-05:00"}, "00:00 to 23:59"},
		{Policy{Every: "90d", Window: "02:60-05:00"}, "00:00 to 23:59"},
		{Policy{Every: "90d", Window: "02:00"}, "HH:MM-HH:MM"},
		{Policy{Every: "90d", TZ: "Mars/Olympus"}, "IANA"},
		{Policy{Every: "90d", TZ: "../../etc/passwd"}, "IANA"},
		{Policy{Every: "90d", MaxPerHour: 101}, "1% to 100%"},
		{Policy{Every: "90d", MaxPerHour: -1}, "1% to 100%"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: %v, want %q", tc.p, err, tc.err)
		}
	}
}

func TestWindow(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	night := Schedule{HasWindow: true, Start: 22 * time.Hour, End: 2 * time.Hour, Loc: paris}
	early := Schedule{HasWindow: true, Start: 2 * time.Hour, End: 5 * time.Hour, Loc: paris}
	tests := []struct {
		name       string
		s          Schedule
		t          string
		start, end string
		in         bool
		lastEnd    string
	}{
		{"inside", early, "2026-11-26 03:10", "2026-11-26 02:00", "2026-11-26 05:00", true, "2026-11-25 05:00"},
		{"at its start", early, "2026-11-26 02:00", "2026-11-26 02:00", "2026-11-26 05:00", true, "2026-11-25 05:00"},
		{"at its end", early, "2026-11-26 05:00", "2026-11-27 02:00", "2026-11-27 05:00", false, "2026-11-26 05:00"},
		{"before", early, "2026-11-26 01:00", "2026-11-26 02:00", "2026-11-26 05:00", false, "2026-11-25 05:00"},
		{"across midnight, evening", night, "2026-11-26 23:00", "2026-11-26 22:00", "2026-11-27 02:00", true, "2026-11-26 02:00"},
		{"across midnight, morning", night, "2026-11-27 01:00", "2026-11-26 22:00", "2026-11-27 02:00", true, "2026-11-26 02:00"},
		{"across midnight, day", night, "2026-11-27 12:00", "2026-11-27 22:00", "2026-11-28 02:00", false, "2026-11-27 02:00"},
		// 2026-03-29: Paris skips 02:00-03:00; the window is 2 hours that day.
		{"spring forward", early, "2026-03-29 03:30", "2026-03-29 03:00", "2026-03-29 05:00", true, "2026-03-28 05:00"},
	}
	for _, tc := range tests {
		start, end, in := tc.s.Window(at(tc.t))
		if !start.Equal(at(tc.start)) || !end.Equal(at(tc.end)) || in != tc.in {
			t.Errorf("%s: window %v-%v in=%v, want %s-%s in=%v", tc.name, start, end, in, tc.start, tc.end, tc.in)
		}
		if le := tc.s.LastEnd(at(tc.t)); !le.Equal(at(tc.lastEnd)) {
			t.Errorf("%s: last end %v, want %s", tc.name, le, tc.lastEnd)
		}
	}
}

// TestAllowedPaces: the due cameras are spread over the hours left, capped
// by the hourly share, and paced through the hour.
func TestAllowedPaces(t *testing.T) {
	h := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	ws, we := h, h.Add(3*time.Hour)
	n := model.RotationCounts{Fleet: 200, Due: 200}
	tests := []struct {
		name string
		n    model.RotationCounts
		pct  int
		now  time.Time
		hour time.Time
		want int
	}{
		{"first minute", n, 40, h, h, 2},                           // 67 over 60 ticks
		{"half hour", n, 40, h.Add(29 * time.Minute), h, 34},       // ceil(67*30/60)
		{"end of the hour", n, 40, h.Add(59 * time.Minute), h, 67}, // 200 over 3 hours
		{"share caps", n, 10, h.Add(59 * time.Minute), h, 20},      // 10% of 200
		{"last hour takes the rest", model.RotationCounts{Fleet: 200, Due: 70}, 40, h.Add(2*time.Hour + 59*time.Minute), h.Add(2 * time.Hour), 70},
		{"small fleet", model.RotationCounts{Fleet: 3, Due: 3}, 10, h.Add(59 * time.Minute), h, 1},
	}
	for _, tc := range tests {
		if got := allowed(tc.n, tc.pct, tc.now, tc.hour, ws, we, time.Minute); got != tc.want {
			t.Errorf("%s: allowed %d, want %d", tc.name, got, tc.want)
		}
	}
}
