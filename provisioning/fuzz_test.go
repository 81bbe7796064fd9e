package provisioning

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"

	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/model"
)

// FuzzParseCommand: a payload on cams/SN/prov (anyone who can publish
// there writes it) either fails or is a version-1 envelope for this camera
// of at most MaxPayload bytes, with key, nonce and box of the right sizes;
// re-encoded, it parses to a command that encodes the same.
func FuzzParseCommand(f *testing.F) {
	cam, err := camkey.Generate()
	if err != nil {
		f.Fatal(err)
	}
	spk, ssk, err := box.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := SealCommand(Instruction{Op: model.OpWipe, Serial: "CAM-1", Version: 2, Challenge: bytes.Repeat([]byte{1}, ChallengeBytes)}, cam.Public(), spk, ssk)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add(bytes.Replace(sealed, []byte(`"CAM-1"`), []byte(`"CAM-2"`), 1))
	f.Add(bytes.Replace(sealed, []byte(`"v":1`), []byte(`"v":2`), 1))
	f.Add(append(append([]byte{}, sealed...), ` {}`...))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","spk":"AAAA","nonce":"AAAA","box":"AAAA"}`))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","extra":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := ParseCommand(payload, "CAM-1")
		if err != nil {
			return
		}
		if len(payload) > MaxPayload || c.V != ProtocolVersion || c.Serial != "CAM-1" ||
			len(c.ServerKey) != 32 || len(c.Nonce) != 24 || len(c.Box) < box.Overhead {
			t.Fatalf("accepted %q as %+v", payload, c)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) > MaxPayload {
			return // its base64 is longer than the payload's: a fine limit case
		}
		back, err := ParseCommand(again, "CAM-1")
		if b2, _ := json.Marshal(back); err != nil || !bytes.Equal(b2, again) {
			t.Fatalf("re-encoded %s parses to %+v %v", again, back, err)
		}
	})
}

// FuzzParseAck: a payload on cams/SN/ack either fails or is a version-1 ack
// naming this camera, with a known result and a bounded error text, of at
// most MaxPayload bytes; re-encoded, it parses to an ack that encodes the same.
func FuzzParseAck(f *testing.F) {
	for _, a := range []Ack{
		{V: 1, Serial: "CAM-1", Op: model.OpProvision, Version: 3, Result: ResultOK, Proof: bytes.Repeat([]byte{7}, 32)},
		{V: 1, Serial: "CAM-1", Op: model.OpWipe, Version: 4, Result: ResultError, Error: "camera is pinned to another provisioning server key"},
		{V: 1, Serial: "CAM-1", Op: model.OpRotate, Version: 1, Result: ResultStale},
	} {
		b, _ := json.Marshal(a)
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"serial":"CAM-1","result":"maybe"}`))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","result":"ok","error":"` + strings.Repeat("x", 257) + `"}`))
	f.Add([]byte(`{"v":1,"serial":"CAM-2","result":"ok"}`))
	f.Add([]byte(`{"v":1,"serial":"CAM-1","result":"ok"}{}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, err := ParseAck(payload, "CAM-1")
		if err != nil {
			return
		}
		if len(payload) > MaxPayload || a.V != ProtocolVersion || a.Serial != "CAM-1" || len(a.Error) > 256 ||
			(a.Result != ResultOK && a.Result != ResultStale && a.Result != ResultError) {
			t.Fatalf("accepted %q as %+v", payload, a)
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) > MaxPayload {
			return
		}
		back, err := ParseAck(again, "CAM-1")
		if b2, _ := json.Marshal(back); err != nil || !bytes.Equal(b2, again) {
			t.Fatalf("re-encoded %s parses to %+v %v", again, back, err)
		}
	})
}
