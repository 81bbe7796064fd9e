package provisioning

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
)

// DefaultClockDriftAlert is the clock offset past which a camera is
// flagged as drifting.
const DefaultClockDriftAlert = 20 * time.Second

// clockTelemetry is the service's side of the cameras' clock reports.
type clockTelemetry struct {
	alert atomic.Int64 // ns; 0: DefaultClockDriftAlert
	// Reports by what became of them.
	recorded, replayed, forged, malformed atomic.Uint64
	// forgedTold is when a forged report of each camera was last logged
	// and audited (serial → time.Time): a broker that floods them fills
	// neither the log nor the audit log, and every one is counted.
	forgedTold sync.Map
}

// forgedEvery is how often a camera's forged clock reports are logged and
// audited at most.
const forgedEvery = time.Minute

// tellForged says whether a forged report of serial received at now is
// to be logged and audited: the first in forgedEvery.
func (c *clockTelemetry) tellForged(serial string, now time.Time) bool {
	for {
		prev, loaded := c.forgedTold.LoadOrStore(serial, now)
		if !loaded {
			return true
		}
		if now.Sub(prev.(time.Time)) < forgedEvery {
			return false
		}
		if c.forgedTold.CompareAndSwap(serial, prev, now) {
			return true
		}
	}
}

// ClockReportCounts are the clock reports the service handled, by what
// became of them.
type ClockReportCounts struct {
	// Recorded reports verified and kept.
	Recorded uint64
	// Replayed reports verified but not newer than the last kept (a
	// broker resending an old one, or two crossing): nothing changed.
	Replayed uint64
	// Forged reports whose signature is not the camera's: nothing changed.
	Forged uint64
	// Malformed reports (oversized, not the format, out of range).
	Malformed uint64
}

// ClockReports counts the clock reports handled since the service started.
func (s *Service) ClockReports() ClockReportCounts {
	c := &s.clocks
	return ClockReportCounts{Recorded: c.recorded.Load(), Replayed: c.replayed.Load(), Forged: c.forged.Load(), Malformed: c.malformed.Load()}
}

// SetClockDriftAlert sets the offset past which a camera's clock is
// flagged as drifting (d ≤ 0: DefaultClockDriftAlert).
func (s *Service) SetClockDriftAlert(d time.Duration) { s.clocks.alert.Store(int64(d)) }

// ClockDriftAlert is the offset past which a camera's clock is flagged as
// drifting.
func (s *Service) ClockDriftAlert() time.Duration {
	if d := time.Duration(s.clocks.alert.Load()); d > 0 {
		return d
	}
	return DefaultClockDriftAlert
}

// isClockReport tells a clock report from the plain statuses.
func isClockReport(payload []byte) bool {
	return len(payload) > 0 && payload[0] == '{'
}

// handleClock verifies a camera's clock report against its registered key
// and records the offset it gives. A forged, malformed or replayed report
// changes nothing; a drifting episode is logged and audited once.
func (s *Service) handleClock(ctx context.Context, cam model.Camera, payload []byte) {
	received := s.now()
	serial := cam.Serial
	r, err := ParseClockReport(payload, serial)
	if err != nil {
		s.clocks.malformed.Add(1)
		s.log.Warn("clock report dropped", "serial", serial, "err", err)
		return
	}
	pub, err := camkey.ParsePublicKey(cam.PublicKey)
	if err != nil || !VerifyClockReport(r, pub) {
		s.clocks.forged.Add(1)
		if s.clocks.tellForged(serial, received) {
			s.log.Warn("clock report with a signature not the camera's dropped (more in the next minute are counted only)", "serial", serial, "seq", r.Seq)
			s.audit(ctx, "camera:"+serial, "camera.clock", serial, "error: signature does not verify", "", fmt.Sprintf("seq %d", r.Seq))
		}
		return
	}
	// Seen now; presence stays the plain statuses' (a report in flight
	// when the camera said "offline" may arrive after it).
	if err := s.reg.Touch(ctx, serial, received); err != nil {
		s.log.Warn("record last seen", "serial", serial, "err", err)
	}
	alert := s.ClockDriftAlert()
	rep := model.ClockReport{Serial: serial, Seq: r.Seq, Offset: r.Offset(received), RTT: r.RTTDuration(), At: received}
	rec, ok, err := s.reg.RecordClock(ctx, rep, alert)
	if err != nil {
		s.log.Warn("record clock report", "serial", serial, "err", err)
		return
	}
	if !ok {
		s.clocks.replayed.Add(1)
		s.log.Debug("clock report not newer than the last one dropped", "serial", serial, "seq", r.Seq)
		return
	}
	s.clocks.recorded.Add(1)
	s.log.Debug("camera clock", "serial", serial, "offset", rep.Offset, "rtt", rep.RTT, "seq", r.Seq)
	if rec.DriftingSince != nil && rec.DriftingSince.UnixMilli() == received.UnixMilli() {
		s.log.Warn("camera clock drifting", "serial", serial, "offset", rep.Offset.Round(time.Millisecond), "alert", alert)
		s.audit(ctx, "camera:"+serial, "camera.clock-drift", serial, "drifting",
			"", fmt.Sprintf("offset %s past %s", rep.Offset.Round(time.Millisecond), alert))
	}
}

// listClocks answers GET /api/v1/admin/clocks: every camera's clock
// record, by serial; ?flagged=1 keeps the cameras flagged drifting or
// mismatch.
func (a *AdminAPI) listClocks(w http.ResponseWriter, r *http.Request) {
	flagged := false
	switch v := r.URL.Query().Get("flagged"); v {
	case "", "0", "false":
	case "1", "true":
		flagged = true
	default:
		httpx.WriteError(w, http.StatusBadRequest, "flagged: want 1 or 0")
		return
	}
	all, err := a.store.CameraClocks(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []model.CameraClock{}
	for _, k := range all {
		if !flagged || k.Drifting() || k.Mismatch() {
			out = append(out, k)
		}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
