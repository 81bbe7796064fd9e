package metrics

import (
	"testing"
	"time"

	"github.com/camotp/camotp/internal/model"
)

// The fleet histogram counts each camera once by its absolute offset,
// cumulatively, a value on a bound in that bucket; the flags are counted.
func TestClockHistogram(t *testing.T) {
	at := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	clocks := []model.CameraClock{
		{Serial: "A", Offset: 300 * time.Millisecond},
		{Serial: "B", Offset: -20 * time.Second},
		{Serial: "C", Offset: 95 * time.Second, DriftingSince: &at},
		{Serial: "D", Offset: -2 * time.Hour, DriftingSince: &at, MismatchSince: &at},
	}
	h, drifting, mismatch := ClockHistogram(clocks)
	if h.Count != 4 || drifting != 2 || mismatch != 1 || h.Sum != 0.3+20+95+7200 {
		t.Fatalf("count %d sum %v drifting %d mismatch %d", h.Count, h.Sum, drifting, mismatch)
	}
	for le, want := range map[float64]uint64{0.5: 1, 1: 1, 15: 1, 20: 2, 60: 2, 120: 3, 600: 3} {
		if h.Buckets[le] != want {
			t.Errorf("bucket ≤%v: %d, want %d", le, h.Buckets[le], want)
		}
	}
	if h, d, m := ClockHistogram(nil); h.Count != 0 || len(h.Buckets) != len(ClockDriftBuckets) || d != 0 || m != 0 {
		t.Fatalf("empty fleet: %+v %d %d", h, d, m)
	}
}
