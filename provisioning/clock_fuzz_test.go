package provisioning

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/camkey"
)

// testNonce is a clock challenge nonce of the tests.
var testNonce = []byte("0123456789abcdef")

// FuzzParseClockReport: a payload on cams/SN/status that looks like a
// clock report (anyone who can publish there writes it) either fails or
// is a version-1 clock report of this camera of at most MaxClockReport
// bytes, its fields in range and a nonce of ClockNonceBytes; re-encoded,
// it parses to the same report; and no report but the one the camera
// signed verifies with its key.
func FuzzParseClockReport(f *testing.F) {
	cam, err := camkey.Generate()
	if err != nil {
		f.Fatal(err)
	}
	other, err := camkey.Generate()
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	signed := SignClockReport(cam, "CAM-1", 7, at, testNonce)
	good, _ := json.Marshal(signed)
	forged, _ := json.Marshal(SignClockReport(other, "CAM-1", 8, at, testNonce))
	f.Add(good)
	f.Add(forged)
	f.Add(bytes.Replace(good, []byte(`"CAM-1"`), []byte(`"CAM-2"`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":7`), []byte(`"seq":0`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":7`), []byte(`"seq":18446744073709551615`), 1))
	f.Add(bytes.Replace(good, []byte(`"status":"clock"`), []byte(`"status":"online"`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":7`), []byte(`"seq":7,"rtt":12`), 1))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","status":"clock","seq":4097,"time":1795680000123,"rtt":14,"sig":"AAAA"}`))
	f.Add(append(append([]byte{}, good...), ` {}`...))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","status":"clock","seq":1,"time":1,"nonce":"AAAA","sig":"AAAA"}`))
	f.Add(ClockRequest("CAM-1"))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","extra":1}`))
	f.Add([]byte(`online`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := ParseClockReport(payload, "CAM-1")
		if err != nil {
			return
		}
		if len(payload) > MaxClockReport || r.V != ProtocolVersion || r.Serial != "CAM-1" || r.Status != StatusClock ||
			r.Seq == 0 || r.Seq > 1<<63-1 || r.Time < minReportTime || r.Time > maxReportTime ||
			len(r.Nonce) != ClockNonceBytes || len(r.Sig) != 64 {
			t.Fatalf("accepted %q as %+v", payload, r)
		}
		// Nobody but the camera makes a signature of its key: only the
		// report it signed verifies, whatever the fuzzer changes.
		if VerifyClockReport(r, cam.Public()) && (r.Seq != signed.Seq || r.Time != signed.Time || !bytes.Equal(r.Nonce, signed.Nonce)) {
			t.Fatalf("%q verifies with the camera's key", payload)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseClockReport(again, "CAM-1")
		if err != nil || back.Seq != r.Seq || back.Time != r.Time || !bytes.Equal(back.Nonce, r.Nonce) || !bytes.Equal(back.Sig, r.Sig) {
			t.Fatalf("re-encoded %s parses to %+v %v", again, back, err)
		}
	})
}

// FuzzParseClockChallenge: a payload on cams/SN/prov that looks like a
// clock challenge (the broker, or anyone it lets publish there, writes
// it) either fails or is a version-1 clock challenge to this camera of at
// most MaxClockChallenge bytes with a nonce of ClockNonceBytes; re-encoded,
// it parses to the same challenge. A sealed command is never taken for
// one.
func FuzzParseClockChallenge(f *testing.F) {
	ch, err := NewClockChallenge("CAM-1")
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(ch)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"CAM-1"`), []byte(`"CAM-2"`), 1))
	f.Add(bytes.Replace(good, []byte(`"op":"clock"`), []byte(`"op":"wipe"`), 1))
	f.Add(bytes.Replace(good, []byte(`"v":1`), []byte(`"v":2`), 1))
	f.Add([]byte(`{"v":1,"op":"clock","serial":"CAM-1","nonce":"AAAA"}`))
	f.Add([]byte(`{"v":1,"op":"clock","serial":"CAM-1","nonce":"MDEyMzQ1Njc4OWFiY2RlZg==","x":1}`))
	f.Add([]byte(`{"v":1,"OP":"clock","serial":"CAM-1","nonce":"MDEyMzQ1Njc4OWFiY2RlZg=="}`))
	f.Add(append(append([]byte{}, good...), ` {}`...))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","spk":"AAAA","nonce":"AAAA","box":"AAAA"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := ParseClockChallenge(payload, "CAM-1")
		if err != nil {
			return
		}
		if len(payload) > MaxClockChallenge || c.V != ProtocolVersion || c.Op != OpClock || c.Serial != "CAM-1" || len(c.Nonce) != ClockNonceBytes {
			t.Fatalf("accepted %q as %+v", payload, c)
		}
		if !isClockChallenge(payload) {
			t.Fatalf("%q parses as a challenge but the agent would take it for a command", payload)
		}
		if _, err := ParseCommand(payload, "CAM-1"); err == nil {
			t.Fatalf("%q parses both as a challenge and as a command", payload)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseClockChallenge(again, "CAM-1")
		if err != nil || !bytes.Equal(back.Nonce, c.Nonce) {
			t.Fatalf("re-encoded %s parses to %+v %v", again, back, err)
		}
	})
}

// A report of a camera from before clock challenges (a round trip it
// measured, no nonce) is told apart: not malformed, not recorded.
func TestParseUnchallengedReport(t *testing.T) {
	old := []byte(`{"v":1,"serial":"CAM-1","status":"clock","seq":4097,"time":1795680000123,"rtt":14,"sig":"` +
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==" + `"}`)
	if _, err := ParseClockReport(old, "CAM-1"); !errors.Is(err, ErrUnchallengedReport) {
		t.Fatalf("pre-challenge report: %v, want ErrUnchallengedReport", err)
	}
	if _, err := ParseClockReport(ClockRequest("CAM-1"), "CAM-1"); err == nil {
		t.Fatal("a clock request parses as a report")
	}
}

// The offset a report gives is the camera's clock minus the server's at
// the midpoint of the challenge's round trip, which the server measures.
func TestClockReportOffset(t *testing.T) {
	cam, err := camkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		camAhead, rtt, want time.Duration
	}{
		{0, 0, 0},
		// The camera answered at the midpoint, 90 s ahead.
		{90 * time.Second, 40 * time.Millisecond, 90 * time.Second},
		// It answered at once on receipt (all the delay on the way back):
		// off by half the round trip, never more.
		{-75 * time.Second, 200 * time.Millisecond, -75*time.Second - 100*time.Millisecond},
	} {
		answered := sent.Add(tc.rtt / 2)
		if tc.want != tc.camAhead {
			answered = sent
		}
		r := SignClockReport(cam, "CAM-1", 1, answered.Add(tc.camAhead), testNonce)
		if got := r.Offset(sent, sent.Add(tc.rtt)); got != tc.want {
			t.Errorf("camera %v ahead, rtt %v: offset %v, want %v", tc.camAhead, tc.rtt, got, tc.want)
		}
		if !VerifyClockReport(r, cam.Public()) {
			t.Error("a report does not verify with its own key")
		}
		r.Time++
		if VerifyClockReport(r, cam.Public()) {
			t.Error("a report whose time was changed verifies")
		}
		r.Time--
		r.Nonce = []byte("fedcba9876543210")
		if VerifyClockReport(r, cam.Public()) {
			t.Error("a report whose nonce was changed verifies")
		}
	}
}
