package storage

import (
	"time"

	"github.com/camotp/camotp/internal/model"
)

// ClockCols are the columns of a camera_clock row k, as both backends
// keep it (times and durations in ms).
const ClockCols = `k.serial, k.seq, k.offset_ms, k.rtt_ms, k.reported_at, k.drifting_since, k.mismatch_since`

// ReturnedClockCols are ClockCols as an upsert of camera_clock returns
// them.
const ReturnedClockCols = `serial, seq, offset_ms, rtt_ms, reported_at, drifting_since, mismatch_since`

// ClockScan receives ClockCols (NULL throughout after a LEFT JOIN that
// found no row): both database/sql and pgx scan NULL into a nil pointer.
type ClockScan struct {
	serial                       *string
	seq, offset, rtt, at         *int64
	driftingSince, mismatchSince *int64
}

// Dest is what to scan ClockCols into.
func (k *ClockScan) Dest() []any {
	return []any{&k.serial, &k.seq, &k.offset, &k.rtt, &k.at, &k.driftingSince, &k.mismatchSince}
}

// Clock is the record scanned; nil when there was none.
func (k *ClockScan) Clock() *model.CameraClock {
	if k.serial == nil || k.seq == nil || k.offset == nil || k.rtt == nil || k.at == nil {
		return nil
	}
	ms := func(v int64) time.Time { return time.UnixMilli(v).UTC() }
	c := &model.CameraClock{Serial: *k.serial, Seq: uint64(*k.seq),
		Offset: time.Duration(*k.offset) * time.Millisecond, RTT: time.Duration(*k.rtt) * time.Millisecond,
		At: ms(*k.at)}
	if k.driftingSince != nil {
		t := ms(*k.driftingSince)
		c.DriftingSince = &t
	}
	if k.mismatchSince != nil {
		t := ms(*k.mismatchSince)
		c.MismatchSince = &t
	}
	return c
}
