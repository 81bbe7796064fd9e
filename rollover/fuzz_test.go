package rollover

import (
	"testing"
	"time"
)

// FuzzParsePolicy: whatever the admin sends, parsing answers a valid
// schedule or an error, never panics, and a valid period is within bounds
// and reads back from its own formatting.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range [][3]string{{"90d", "02:00-05:00", "Europe/Paris"}, {"1d12h", "22:00-02:00", ""}, {"36h", "", "UTC"},
		{"0d", "24:00-00:00", "../x"}, {"1d1d", "02:00-02:00", "Local"}, {"9999999h", "-", ""}, {"", "", ""}} {
		f.Add(s[0], s[1], s[2], 10)
	}
	f.Fuzz(func(t *testing.T, every, window, tz string, pct int) {
		sch, err := Policy{Every: every, Window: window, TZ: tz, MaxPerHour: pct}.Parse()
		if err != nil {
			return
		}
		if sch.Every < MinEvery || sch.Every > MaxEvery || sch.MaxPerHour < 1 || sch.MaxPerHour > 100 {
			t.Fatalf("out of bounds: %+v", sch)
		}
		if back, err := ParseEvery(FormatEvery(sch.Every)); err != nil || back != sch.Every {
			t.Fatalf("period %v does not read back: %v", sch.Every, err)
		}
		now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
		start, end, in := sch.Window(now)
		if !end.After(start) || in != (!now.Before(start) && now.Before(end)) {
			t.Fatalf("window %v-%v in=%v at %v", start, end, in, now)
		}
		if sch.LastEnd(now).After(now) {
			t.Fatalf("last end %v after %v", sch.LastEnd(now), now)
		}
	})
}
