package provisioning

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/camkey"
)

// FuzzParseClockReport: a payload on cams/SN/status that looks like a
// clock report (anyone who can publish there writes it) either fails or
// is a version-1 clock report of this camera of at most MaxClockReport
// bytes, its fields in range; re-encoded, it parses to the same report;
// and no report but the one the camera signed verifies with its key.
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
	signed := SignClockReport(cam, "CAM-1", 7, at, 12*time.Millisecond)
	good, _ := json.Marshal(signed)
	forged, _ := json.Marshal(SignClockReport(other, "CAM-1", 8, at, 12*time.Millisecond))
	f.Add(good)
	f.Add(forged)
	f.Add(bytes.Replace(good, []byte(`"CAM-1"`), []byte(`"CAM-2"`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":7`), []byte(`"seq":0`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":7`), []byte(`"seq":18446744073709551615`), 1))
	f.Add(bytes.Replace(good, []byte(`"rtt":12`), []byte(`"rtt":-1`), 1))
	f.Add(bytes.Replace(good, []byte(`"status":"clock"`), []byte(`"status":"online"`), 1))
	f.Add(append(append([]byte{}, good...), ` {}`...))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","status":"clock","seq":1,"time":1,"rtt":0,"sig":"AAAA"}`))
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
			r.RTT < 0 || r.RTT > MaxReportRTT.Milliseconds() || len(r.Sig) != 64 {
			t.Fatalf("accepted %q as %+v", payload, r)
		}
		// Nobody but the camera makes a signature of its key: only the
		// report it signed verifies, whatever the fuzzer changes.
		if VerifyClockReport(r, cam.Public()) && (r.Seq != signed.Seq || r.Time != signed.Time || r.RTT != signed.RTT) {
			t.Fatalf("%q verifies with the camera's key", payload)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseClockReport(again, "CAM-1")
		if err != nil || back.Seq != r.Seq || back.Time != r.Time || back.RTT != r.RTT || !bytes.Equal(back.Sig, r.Sig) {
			t.Fatalf("re-encoded %s parses to %+v %v", again, back, err)
		}
	})
}

// The offset a report gives is the camera's clock minus the server's at
// the instant the camera sent it: half the round trip before receipt.
func TestClockReportOffset(t *testing.T) {
	cam, err := camkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	server := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		camAhead, rtt, want time.Duration
	}{
		{0, 0, 0},
		{90 * time.Second, 40 * time.Millisecond, 90*time.Second + 20*time.Millisecond},
		{-75 * time.Second, 200 * time.Millisecond, -75*time.Second + 100*time.Millisecond},
	} {
		r := SignClockReport(cam, "CAM-1", 1, server.Add(tc.camAhead), tc.rtt)
		if got := r.Offset(server); got != tc.want {
			t.Errorf("camera %v ahead, rtt %v: offset %v, want %v", tc.camAhead, tc.rtt, got, tc.want)
		}
		if !VerifyClockReport(r, cam.Public()) {
			t.Error("a report does not verify with its own key")
		}
		r.Time++
		if VerifyClockReport(r, cam.Public()) {
			t.Error("a report whose time was changed verifies")
		}
	}
}
