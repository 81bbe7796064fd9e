package provisioning

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/camotp/camotp/internal/camkey"
)

// Clock telemetry limits.
const (
	// MaxClockReport bounds a clock report or request on the status
	// topic; larger payloads are dropped unread.
	MaxClockReport = 512
	// MaxClockChallenge bounds a clock challenge on the prov topic; the
	// camera drops larger ones unread.
	MaxClockChallenge = 256
	// ClockNonceBytes is the size of a clock challenge's nonce.
	ClockNonceBytes = 16
	// MaxClockDelay bounds the round trip of a clock challenge: from the
	// server sending it to the server receiving the report that answers
	// it. A later answer is refused. The offset it gives is known to
	// ±RTT/2 however a broker splits the delay between the two legs, so
	// 10 s keeps that error under 5 s, a sixth of a 30 s step (the window
	// centred on it is ±1 step), and far under the "fresh" report age:
	// a broker holding a report for longer cannot get it recorded at all.
	// A camera on a slow cellular link answers in well under a second;
	// 10 s leaves room for a loaded broker and database.
	MaxClockDelay = 10 * time.Second
	// DefaultClockReportEvery is how often a camera asks the server for a
	// clock challenge besides on each connect (its "online" asks).
	DefaultClockReportEvery = 10 * time.Minute
	// StatusClock is the status of a clock report.
	StatusClock = "clock"
	// StatusClockRequest is the status of a camera's request for a clock
	// challenge.
	StatusClockRequest = "clock-request"
	// OpClock is the op of a clock challenge on the prov topic.
	OpClock = "clock"
)

// clockLabel starts the message a clock report's signature covers; it
// differs from the pre-challenge reports' "camotp-clock".
const clockLabel = "camotp-clock-answer"

// ClockChallenge is the server's clock challenge to a camera, on
// cams/SN/prov, unsealed (the nonce is public, only unpredictable and
// single use): the camera answers at once with a clock report carrying
// the nonce in its signed bytes, and the server measures the round trip
// itself.
type ClockChallenge struct {
	V      int    `json:"v"`
	Op     string `json:"op"`
	Serial string `json:"serial"`
	// Nonce is ClockNonceBytes random bytes.
	Nonce []byte `json:"nonce"`
}

// NewClockChallenge is a challenge to camera serial with a fresh random
// nonce.
func NewClockChallenge(serial string) (ClockChallenge, error) {
	nonce := make([]byte, ClockNonceBytes)
	if _, err := rand.Read(nonce); err != nil {
		return ClockChallenge{}, fmt.Errorf("clock challenge nonce: %w", err)
	}
	return ClockChallenge{V: ProtocolVersion, Op: OpClock, Serial: serial, Nonce: nonce}, nil
}

// isClockChallenge tells a clock challenge from a sealed command on the
// prov topic (a command has no "op" outside its box).
func isClockChallenge(payload []byte) bool {
	if len(payload) > MaxPayload {
		return false
	}
	var peek struct {
		Op string `json:"op"`
	}
	return json.Unmarshal(payload, &peek) == nil && peek.Op != ""
}

// ParseClockChallenge checks a clock challenge published on the prov
// topic of serial (anyone who can publish there, the broker included,
// writes it: the camera only signs its clock with the nonce).
func ParseClockChallenge(payload []byte, serial string) (ClockChallenge, error) {
	if len(payload) > MaxClockChallenge {
		return ClockChallenge{}, fmt.Errorf("clock challenge of %d bytes exceeds %d", len(payload), MaxClockChallenge)
	}
	var c ClockChallenge
	if err := decodeStrict(payload, &c); err != nil {
		return ClockChallenge{}, err
	}
	switch {
	case c.V != ProtocolVersion:
		return ClockChallenge{}, fmt.Errorf("unsupported protocol version %d", c.V)
	case c.Op != OpClock:
		return ClockChallenge{}, fmt.Errorf("unknown op %q", c.Op)
	case c.Serial != serial:
		return ClockChallenge{}, fmt.Errorf("clock challenge names %q on the topic of %q", c.Serial, serial)
	case len(c.Nonce) != ClockNonceBytes:
		return ClockChallenge{}, fmt.Errorf("clock challenge nonce must be %d bytes", ClockNonceBytes)
	}
	return c, nil
}

// ClockRequest is the payload a camera publishes on its status topic to
// ask the server for a clock challenge; the server takes exactly these
// bytes.
func ClockRequest(serial string) []byte {
	data, _ := json.Marshal(struct {
		V      int    `json:"v"`
		Serial string `json:"serial"`
		Status string `json:"status"`
	}{ProtocolVersion, serial, StatusClockRequest})
	return data
}

// ClockReport is a camera's signed clock report on cams/SN/status (the
// plain "online" and "offline" stay as they were), answering the server's
// clock challenge: its clock when it answered, the challenge's nonce and
// its report counter, signed with its Ed25519 key, so a broker can
// neither forge nor alter one, a replayed one (a counter not above the
// last recorded) changes nothing, and one that does not answer the
// camera's outstanding challenge within MaxClockDelay is refused.
type ClockReport struct {
	V      int    `json:"v"`
	Serial string `json:"serial"`
	Status string `json:"status"`
	// Seq is the camera's report counter, rising across restarts.
	Seq uint64 `json:"seq"`
	// Time is the camera's clock, Unix milliseconds.
	Time int64 `json:"time"`
	// Nonce is the nonce of the challenge the report answers.
	Nonce []byte `json:"nonce"`
	// Sig is Ed25519 over ClockMessage.
	Sig []byte `json:"sig"`
}

// ClockMessage is what a clock report's signature covers:
// "camotp-clock-answer\0<serial>\0<seq>\0<time>\0<nonce, std base64>".
func ClockMessage(serial string, seq uint64, timeMs int64, nonce []byte) []byte {
	return []byte(clockLabel + "\x00" + serial + "\x00" + strconv.FormatUint(seq, 10) + "\x00" +
		strconv.FormatInt(timeMs, 10) + "\x00" + base64.StdEncoding.EncodeToString(nonce))
}

// SignClockReport is the report of camera serial with key answering the
// challenge of nonce: counter seq, its clock now.
func SignClockReport(key camkey.PrivateKey, serial string, seq uint64, now time.Time, nonce []byte) ClockReport {
	r := ClockReport{V: ProtocolVersion, Serial: serial, Status: StatusClock, Seq: seq, Time: now.UnixMilli(), Nonce: nonce}
	r.Sig = ed25519.Sign(key.Sign, ClockMessage(serial, r.Seq, r.Time, r.Nonce))
	return r
}

// Earliest and latest camera times a report may carry (Unix ms): a clock
// outside them is broken, not drifting.
const (
	minReportTime = 946684800000  // 2000-01-01
	maxReportTime = 7258118400000 // 2200-01-01
)

// ErrUnchallengedReport is a clock report of a camera from before clock
// challenges (it carries the round trip it measured, no nonce): not
// recorded, and not an error of the camera.
var ErrUnchallengedReport = errors.New("clock report answers no challenge (a camera from before clock challenges)")

// ParseClockReport checks a clock report published on the status topic
// of serial (it does not check the signature: VerifyClockReport does,
// nor the challenge: the store does).
func ParseClockReport(payload []byte, serial string) (ClockReport, error) {
	if len(payload) > MaxClockReport {
		return ClockReport{}, fmt.Errorf("clock report of %d bytes exceeds %d", len(payload), MaxClockReport)
	}
	var w struct {
		ClockReport
		// LegacyRTT is the camera-measured round trip of a report from
		// before clock challenges.
		LegacyRTT *int64 `json:"rtt"`
	}
	if err := decodeStrict(payload, &w); err != nil {
		return ClockReport{}, err
	}
	r := w.ClockReport
	switch {
	case r.V != ProtocolVersion:
		return ClockReport{}, fmt.Errorf("unsupported protocol version %d", r.V)
	case r.Serial != serial:
		return ClockReport{}, fmt.Errorf("clock report names %q on the topic of %q", r.Serial, serial)
	case r.Status != StatusClock:
		return ClockReport{}, fmt.Errorf("unknown status %q", r.Status)
	case w.LegacyRTT != nil && r.Nonce == nil:
		return ClockReport{}, ErrUnchallengedReport
	case w.LegacyRTT != nil:
		return ClockReport{}, errors.New("clock report carries both a nonce and a camera round trip")
	case r.Seq == 0 || r.Seq > 1<<63-1:
		return ClockReport{}, errors.New("clock report counter out of range")
	case r.Time < minReportTime || r.Time > maxReportTime:
		return ClockReport{}, fmt.Errorf("camera time %d ms out of range", r.Time)
	case len(r.Nonce) != ClockNonceBytes:
		return ClockReport{}, fmt.Errorf("clock report nonce must be %d bytes", ClockNonceBytes)
	case len(r.Sig) != ed25519.SignatureSize:
		return ClockReport{}, errors.New("clock report signature must be 64 bytes")
	}
	return r, nil
}

// VerifyClockReport checks the report's signature with the camera's key.
func VerifyClockReport(r ClockReport, pub camkey.PublicKey) bool {
	return ed25519.Verify(pub.Sign, ClockMessage(r.Serial, r.Seq, r.Time, r.Nonce), r.Sig)
}

// Offset is the camera's clock minus the server's at the midpoint of the
// round trip of the challenge the report answers, sent and received by
// the server's clock: camera time − (sent + (received − sent)/2). However
// the round trip was split between the two legs, the offset is off by at
// most half of it.
func (r ClockReport) Offset(sent, received time.Time) time.Duration {
	cam := time.UnixMilli(r.Time)
	return cam.Sub(sent.Add(received.Sub(sent) / 2))
}

// ReportCounter is a camera state that keeps the clock report counter
// across restarts (device.State does, in its state directory).
type ReportCounter interface {
	NextReportSeq() (uint64, error)
}

// announce says "online" on a new connection (the server answers it with
// a clock challenge), then asks for a clock challenge every
// ClockReportEvery until the connection ends.
func (a *Agent) announce(ctx context.Context, c *agentConn) {
	serial := a.st.Identity().Serial
	if err := a.send(c, statusTopic(serial), []byte(StatusOnline)); err != nil {
		a.cfg.Log.Debug("online status not acknowledged", "serial", serial, "err", err)
		return
	}
	if !a.clockTelemetry() {
		return
	}
	every := a.cfg.ClockReportEvery
	if every == 0 {
		every = DefaultClockReportEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-c.lost:
			return
		case <-ctx.Done():
			return
		}
		if err := a.send(c, statusTopic(serial), ClockRequest(serial)); err != nil {
			a.cfg.Log.Debug("clock challenge request not acknowledged", "serial", serial, "err", err)
		}
	}
}

// clockTelemetry says whether the camera answers clock challenges.
func (a *Agent) clockTelemetry() bool { return a.cfg.ClockReportEvery >= 0 }

// answerClock answers a clock challenge on c at once with a signed clock
// report carrying its nonce, and waits for the PUBACK.
func (a *Agent) answerClock(c *agentConn, ch ClockChallenge) error {
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
	clock := a.cfg.ReportClock
	if clock == nil {
		clock = a.clock
	}
	data, err := json.Marshal(SignClockReport(id.Key, id.Serial, seq, clock.Now(), ch.Nonce))
	if err != nil {
		return fmt.Errorf("encode clock report: %w", err)
	}
	return a.send(c, statusTopic(id.Serial), data)
}

// onClockChallenge answers a clock challenge received on the prov topic.
func (a *Agent) onClockChallenge(payload []byte) {
	serial := a.st.Identity().Serial
	if !a.clockTelemetry() {
		a.cfg.Log.Debug("clock challenge ignored: clock telemetry off", "serial", serial)
		return
	}
	ch, err := ParseClockChallenge(payload, serial)
	if err != nil {
		a.cfg.Log.Warn("clock challenge dropped", "serial", serial, "err", err)
		return
	}
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c == nil {
		return // the server sends another on the next "online"
	}
	if err := a.answerClock(c, ch); err != nil {
		a.cfg.Log.Debug("clock report not acknowledged", "serial", serial, "err", err)
	}
}

// ErrNotConnected is returned by calls that need the agent's link up.
var ErrNotConnected = errors.New("camera is not connected to the broker")

// ReportClock asks the server for a clock challenge now on the link that
// is up and waits for the broker's PUBACK; the agent answers the
// challenge with a clock report when it arrives (it asks on its own on
// each connect and every ClockReportEvery).
func (a *Agent) ReportClock() error {
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c == nil {
		return ErrNotConnected
	}
	serial := a.st.Identity().Serial
	return a.send(c, statusTopic(serial), ClockRequest(serial))
}
