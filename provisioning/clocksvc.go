package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	recorded, replayed, unchallenged, late, forged, malformed atomic.Uint64
	// told is when a refused report of each camera and kind was last
	// logged and audited (refusedKey → time.Time): a broker that floods
	// them fills neither the log nor the audit log, and every one is
	// counted.
	told sync.Map
}

// refusedKey names a camera's refused reports of one kind (forged,
// unchallenged, late) for clockTelemetry.told.
type refusedKey struct{ serial, kind string }

// refusedEvery is how often a camera's refused clock reports of one kind
// are logged and audited at most.
const refusedEvery = time.Minute

// tell says whether a refused report of serial of kind received at now is
// to be logged and audited: the first in refusedEvery.
func (c *clockTelemetry) tell(serial, kind string, now time.Time) bool {
	key := refusedKey{serial, kind}
	for {
		prev, loaded := c.told.LoadOrStore(key, now)
		if !loaded {
			return true
		}
		if now.Sub(prev.(time.Time)) < refusedEvery {
			return false
		}
		if c.told.CompareAndSwap(key, prev, now) {
			return true
		}
	}
}

// ClockReportCounts are the clock reports the service handled, by what
// became of them.
type ClockReportCounts struct {
	// Recorded reports verified and kept.
	Recorded uint64
	// Replayed reports that answered the camera's challenge but whose
	// counter is not above the last kept (two crossing): nothing changed.
	Replayed uint64
	// Unchallenged reports that answer no outstanding challenge of the
	// camera: a copy of one already recorded, one answering an older or
	// another camera's challenge, or one of a camera from before clock
	// challenges. Nothing changed.
	Unchallenged uint64
	// Late reports that answered the camera's challenge more than
	// MaxClockDelay after the server sent it (a broker holding it, or a
	// link too slow to measure the clock on): nothing changed.
	Late uint64
	// Forged reports whose signature is not the camera's: nothing changed.
	Forged uint64
	// Malformed reports (oversized, not the format, out of range).
	Malformed uint64
}

// ClockReports counts the clock reports handled since the service started.
func (s *Service) ClockReports() ClockReportCounts {
	c := &s.clocks
	return ClockReportCounts{Recorded: c.recorded.Load(), Replayed: c.replayed.Load(), Unchallenged: c.unchallenged.Load(),
		Late: c.late.Load(), Forged: c.forged.Load(), Malformed: c.malformed.Load()}
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

// isClockReport tells a clock report or request from the plain statuses.
func isClockReport(payload []byte) bool {
	return len(payload) > 0 && payload[0] == '{'
}

// ChallengeClock sends the camera a fresh clock challenge on its prov
// topic, recorded first as its outstanding one (replacing an older, on
// every node: the answer may reach another), and returns it. The server
// sends one when a camera says "online" and when it asks for one.
func (s *Service) ChallengeClock(ctx context.Context, serial string) (model.ClockChallenge, error) {
	ch, err := NewClockChallenge(serial)
	if err != nil {
		return model.ClockChallenge{}, err
	}
	data, err := json.Marshal(ch)
	if err != nil {
		return model.ClockChallenge{}, fmt.Errorf("encode clock challenge: %w", err)
	}
	pub := s.pub.Load()
	if pub == nil {
		return model.ClockChallenge{}, errors.New("no MQTT link yet")
	}
	// Recorded before it is published: the answer can come back at once.
	rec := model.ClockChallenge{Serial: serial, Nonce: ch.Nonce, Sent: s.now().Truncate(time.Millisecond)} // as stored
	if err := s.reg.ChallengeClock(ctx, rec); err != nil {
		return model.ClockChallenge{}, err
	}
	if err := (*pub).Publish(ctx, provTopic(serial), data); err != nil {
		return model.ClockChallenge{}, fmt.Errorf("publish clock challenge: %w", err)
	}
	return rec, nil
}

// challengeClock is ChallengeClock for a camera that said "online" or
// asked: a camera with no identity key registered could not sign an
// answer and is not challenged; a failure is logged.
func (s *Service) challengeClock(ctx context.Context, cam model.Camera) {
	if cam.PublicKey == "" {
		return
	}
	if _, err := s.ChallengeClock(ctx, cam.Serial); err != nil {
		s.log.Warn("clock challenge not sent", "serial", cam.Serial, "err", err)
	}
}

// handleClock handles a camera's clock message on its status topic: a
// request for a challenge is answered with one; a report is verified
// against the camera's registered key and must answer the camera's
// outstanding challenge (consumed, once) within MaxClockDelay of its
// sending; then the offset it gives, over the round trip the server
// measured, is recorded. A forged, malformed, replayed, unchallenged or
// late report changes nothing; a drifting episode is logged and audited
// once.
func (s *Service) handleClock(ctx context.Context, cam model.Camera, payload []byte) {
	received := s.now().Truncate(time.Millisecond) // the store keeps ms, as of the challenge's sending
	serial := cam.Serial
	if bytes.Equal(payload, ClockRequest(serial)) {
		s.challengeClock(ctx, cam)
		return
	}
	r, err := ParseClockReport(payload, serial)
	if errors.Is(err, ErrUnchallengedReport) {
		s.clocks.unchallenged.Add(1)
		s.log.Debug("clock report of a camera from before clock challenges not recorded", "serial", serial)
		return
	}
	if err != nil {
		s.clocks.malformed.Add(1)
		s.log.Warn("clock report dropped", "serial", serial, "err", err)
		return
	}
	pub, err := camkey.ParsePublicKey(cam.PublicKey)
	if err != nil || !VerifyClockReport(r, pub) {
		s.clocks.forged.Add(1)
		if s.clocks.tell(serial, "forged", received) {
			s.log.Warn("clock report with a signature not the camera's dropped (more in the next minute are counted only)", "serial", serial, "seq", r.Seq)
			s.audit(ctx, "camera:"+serial, "camera.clock", serial, "error: signature does not verify", "", fmt.Sprintf("seq %d", r.Seq))
		}
		return
	}
	// Only a genuine answer consumes the challenge (a forger could
	// otherwise spend it before the camera's answer arrives).
	sent, elapsed, ok, err := s.reg.AnswerClock(ctx, serial, r.Nonce)
	if err != nil {
		s.log.Warn("answer clock challenge", "serial", serial, "err", err)
		return
	}
	if !ok {
		s.clocks.unchallenged.Add(1)
		if s.clocks.tell(serial, "unchallenged", received) {
			s.log.Warn("clock report answering no outstanding challenge dropped (more in the next minute are counted only)", "serial", serial, "seq", r.Seq)
			s.audit(ctx, "camera:"+serial, "camera.clock", serial, "error: answers no outstanding challenge", "", fmt.Sprintf("seq %d", r.Seq))
		}
		return
	}
	// The round trip by this node's clock against the sending node's, and
	// by the database's own clock at both ends: both must be within the
	// bound. The database's bounds how long a broker held the answer
	// however the nodes' clocks disagree; a node's round trip that comes
	// out negative, or past the bound, means the nodes disagree by more
	// than the bound allows, and the offset (against the nodes' clocks)
	// cannot be trusted.
	rtt := received.Sub(sent)
	if rtt > MaxClockDelay || rtt < 0 || elapsed > MaxClockDelay || elapsed < 0 {
		s.clocks.late.Add(1)
		if s.clocks.tell(serial, "late", received) {
			s.log.Warn("clock report answering its challenge too late, or with the nodes' clocks apart, dropped (more in the next minute are counted only)",
				"serial", serial, "seq", r.Seq, "round_trip", rtt.Round(time.Millisecond), "database_round_trip", elapsed, "bound", MaxClockDelay)
			s.audit(ctx, "camera:"+serial, "camera.clock", serial, "error: answered too late", "",
				fmt.Sprintf("seq %d, %s after the challenge (database clock %s), bound %s", r.Seq, rtt.Round(time.Millisecond), elapsed, MaxClockDelay))
		}
		return
	}
	// Seen now; presence stays the plain statuses' (a report in flight
	// when the camera said "offline" may arrive after it).
	if err := s.reg.Touch(ctx, serial, received); err != nil {
		s.log.Warn("record last seen", "serial", serial, "err", err)
	}
	alert := s.ClockDriftAlert()
	rep := model.ClockReport{Serial: serial, Seq: r.Seq, Offset: r.Offset(sent, received), RTT: rtt, At: received}
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
