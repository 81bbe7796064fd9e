package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/storage"
)

// Clocks are the cameras' clock reports as the camera pages read them
// (storage.Clocks).
type Clocks interface {
	CameraClock(ctx context.Context, serial string) (model.CameraClock, error)
	CameraClocksOf(ctx context.Context, serials []string) ([]model.CameraClock, error)
}

// clockView is a camera's last clock report as the pages show it.
type clockView struct {
	// Offset is the reported offset ("+100.2 s"), Reported how long ago
	// the report came, RTT its round trip.
	Offset, Reported, ReportedAt, RTT string
	// Drifting and Mismatch are the flags, with when they were raised.
	Drifting, Mismatch           bool
	DriftingSince, MismatchSince string
}

// viewClock is k as the pages show it at now.
func viewClock(k model.CameraClock, now time.Time) *clockView {
	v := &clockView{Offset: fmt.Sprintf("%+.1f s", k.Offset.Seconds()), Reported: ago(now, &k.At), ReportedAt: stamp(&k.At),
		RTT: k.RTT.String(), Drifting: k.Drifting(), Mismatch: k.Mismatch()}
	v.DriftingSince, v.MismatchSince = stamp(k.DriftingSince), stamp(k.MismatchSince)
	return v
}

// addClocks gives each row its camera's clock report (one query for the
// page). The listing shows without them when they cannot be read
// (logged).
func (wb *Web) addClocks(ctx context.Context, rows []cameraView, now time.Time) {
	if wb.Clocks == nil || len(rows) == 0 {
		return
	}
	serials := make([]string, len(rows))
	for i, r := range rows {
		serials[i] = r.Serial
	}
	all, err := wb.Clocks.CameraClocksOf(ctx, serials)
	if err != nil {
		wb.log.Warn("camera clocks for the listing", "err", err)
		return
	}
	by := make(map[string]model.CameraClock, len(all))
	for _, k := range all {
		by[k.Serial] = k
	}
	for i := range rows {
		if k, ok := by[rows[i].Serial]; ok {
			rows[i].Clock = viewClock(k, now)
		}
	}
}

// addClock gives the camera's page its clock report.
func (wb *Web) addClock(ctx context.Context, v *cameraView, now time.Time) {
	if wb.Clocks == nil {
		return
	}
	k, err := wb.Clocks.CameraClock(ctx, v.Serial)
	if errors.Is(err, storage.ErrNotFound) {
		return
	}
	if err != nil {
		wb.log.Warn("camera clock for its page", "serial", v.Serial, "err", err)
		return
	}
	v.Clock = viewClock(k, now)
}
