package provisioning

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/camotp/camotp/internal/camkey"
)

// Clock telemetry limits.
const (
	// MaxClockReport bounds a clock report; larger payloads are dropped
	// unread.
	MaxClockReport = 512
	// MaxReportRTT is the largest round trip a report may carry.
	MaxReportRTT = time.Minute
	// DefaultClockReportEvery is how often a camera reports its clock
	// besides on each connect.
	DefaultClockReportEvery = 10 * time.Minute
	// StatusClock is the status of a clock report.
	StatusClock = "clock"
)

// clockLabel starts the message a clock report's signature covers.
const clockLabel = "camotp-clock"

// ClockReport is a camera's signed clock report on cams/SN/status (the
// plain "online" and "offline" stay as they were): its clock when it
// published the report, the round trip it last measured to the broker,
// and its report counter, signed with its Ed25519 key so a broker can
// neither forge nor alter one, and a replayed one (a counter not above
// the last recorded) changes nothing.
type ClockReport struct {
	V      int    `json:"v"`
	Serial string `json:"serial"`
	Status string `json:"status"`
	// Seq is the camera's report counter, rising across restarts.
	Seq uint64 `json:"seq"`
	// Time is the camera's clock, Unix milliseconds.
	Time int64 `json:"time"`
	// RTT is the round trip, ms: the PUBACK of the camera's previous
	// QoS 1 publish on this connection (its "online" for the first
	// report).
	RTT int64 `json:"rtt"`
	// Sig is Ed25519 over ClockMessage.
	Sig []byte `json:"sig"`
}

// ClockMessage is what a clock report's signature covers:
// "camotp-clock\0<serial>\0<seq>\0<time>\0<rtt>".
func ClockMessage(serial string, seq uint64, timeMs, rttMs int64) []byte {
	return []byte(clockLabel + "\x00" + serial + "\x00" + strconv.FormatUint(seq, 10) + "\x00" +
		strconv.FormatInt(timeMs, 10) + "\x00" + strconv.FormatInt(rttMs, 10))
}

// SignClockReport is the report of camera serial with key: counter seq,
// its clock now and round trip rtt.
func SignClockReport(key camkey.PrivateKey, serial string, seq uint64, now time.Time, rtt time.Duration) ClockReport {
	r := ClockReport{V: ProtocolVersion, Serial: serial, Status: StatusClock, Seq: seq, Time: now.UnixMilli(), RTT: rtt.Milliseconds()}
	r.Sig = ed25519.Sign(key.Sign, ClockMessage(serial, r.Seq, r.Time, r.RTT))
	return r
}

// Earliest and latest camera times a report may carry (Unix ms): a clock
// outside them is broken, not drifting.
const (
	minReportTime = 946684800000  // 2000-01-01
	maxReportTime = 7258118400000 // 2200-01-01
)

// ParseClockReport checks a clock report published on the status topic
// of serial (it does not check the signature: VerifyClockReport does).
func ParseClockReport(payload []byte, serial string) (ClockReport, error) {
	if len(payload) > MaxClockReport {
		return ClockReport{}, fmt.Errorf("clock report of %d bytes exceeds %d", len(payload), MaxClockReport)
	}
	var r ClockReport
	if err := decodeStrict(payload, &r); err != nil {
		return ClockReport{}, err
	}
	switch {
	case r.V != ProtocolVersion:
		return ClockReport{}, fmt.Errorf("unsupported protocol version %d", r.V)
	case r.Serial != serial:
		return ClockReport{}, fmt.Errorf("clock report names %q on the topic of %q", r.Serial, serial)
	case r.Status != StatusClock:
		return ClockReport{}, fmt.Errorf("unknown status %q", r.Status)
	case r.Seq == 0 || r.Seq > 1<<63-1:
		return ClockReport{}, errors.New("clock report counter out of range")
	case r.Time < minReportTime || r.Time > maxReportTime:
		return ClockReport{}, fmt.Errorf("camera time %d ms out of range", r.Time)
	case r.RTT < 0 || r.RTT > MaxReportRTT.Milliseconds():
		return ClockReport{}, fmt.Errorf("round trip %d ms out of range", r.RTT)
	case len(r.Sig) != ed25519.SignatureSize:
		return ClockReport{}, errors.New("clock report signature must be 64 bytes")
	}
	return r, nil
}

// VerifyClockReport checks the report's signature with the camera's key.
func VerifyClockReport(r ClockReport, pub camkey.PublicKey) bool {
	return ed25519.Verify(pub.Sign, ClockMessage(r.Serial, r.Seq, r.Time, r.RTT), r.Sig)
}

// Offset is the camera's clock minus the server's when the camera sent
// the report: camera time − (received − RTT/2).
func (r ClockReport) Offset(received time.Time) time.Duration {
	cam := time.UnixMilli(r.Time)
	sent := received.Add(-time.Duration(r.RTT) * time.Millisecond / 2)
	return cam.Sub(sent)
}

// RTTDuration is the report's round trip.
func (r ClockReport) RTTDuration() time.Duration { return time.Duration(r.RTT) * time.Millisecond }

// ReportCounter is a camera state that keeps the clock report counter
// across restarts (device.State does, in its state directory).
type ReportCounter interface {
	NextReportSeq() (uint64, error)
}

// announce says "online" on a new connection, then reports the camera's
// clock at once and every ClockReportEvery until the connection ends.
func (a *Agent) announce(ctx context.Context, c *agentConn) {
	serial := a.st.Identity().Serial
	if err := a.sendTimed(c, statusTopic(serial), []byte(StatusOnline)); err != nil {
		a.cfg.Log.Debug("online status not acknowledged", "serial", serial, "err", err)
		return
	}
	every := a.cfg.ClockReportEvery
	if every < 0 {
		return
	}
	if every == 0 {
		every = DefaultClockReportEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := a.report(c); err != nil {
			a.cfg.Log.Debug("clock report not acknowledged", "serial", serial, "err", err)
		}
		select {
		case <-tick.C:
		case <-c.lost:
			return
		case <-ctx.Done():
			return
		}
	}
}

// sendTimed is send that keeps the round trip to the PUBACK on c.
func (a *Agent) sendTimed(c *agentConn, topic string, payload []byte) error {
	t0 := time.Now() // a duration on the host's monotonic clock, whatever the camera's clock says
	if err := a.send(c, topic, payload); err != nil {
		return err
	}
	c.rtt.Store(int64(time.Since(t0)))
	return nil
}

// report publishes one clock report on c and waits for the PUBACK.
func (a *Agent) report(c *agentConn) error {
	id := a.st.Identity()
	var seq uint64
	if rc, ok := a.st.(ReportCounter); ok {
		var err error
		if seq, err = rc.NextReportSeq(); err != nil {
			return err
		}
	} else {
		seq = a.seqFallback.Add(1)
	}
	rtt := min(time.Duration(c.rtt.Load()), MaxReportRTT)
	clock := a.cfg.ReportClock
	if clock == nil {
		clock = a.clock
	}
	data, err := json.Marshal(SignClockReport(id.Key, id.Serial, seq, clock.Now(), rtt))
	if err != nil {
		return fmt.Errorf("encode clock report: %w", err)
	}
	return a.sendTimed(c, statusTopic(id.Serial), data)
}

// ErrNotConnected is returned by calls that need the agent's link up.
var ErrNotConnected = errors.New("camera is not connected to the broker")

// ReportClock publishes a clock report now on the link that is up and
// waits for the broker's PUBACK (the agent reports on its own on each
// connect and every ClockReportEvery).
func (a *Agent) ReportClock() error {
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c == nil {
		return ErrNotConnected
	}
	return a.report(c)
}
