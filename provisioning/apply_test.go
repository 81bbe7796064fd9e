package provisioning

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/model"
)

type testServer struct{ pub, priv [32]byte }

func newTestServer(t testing.TB) testServer {
	var s testServer
	rand.Read(s.priv[:])
	s.pub = camkey.BoxPublic(s.priv)
	return s
}

func (s testServer) command(t testing.TB, cam *device.State, op model.Op, version uint64, seed *device.Seed) []byte {
	t.Helper()
	in := Instruction{Op: op, Serial: cam.Identity().Serial, Version: version, Challenge: bytes.Repeat([]byte{byte(version)}, ChallengeBytes)}
	if seed != nil {
		sd := *seed
		sd.Version = version
		in.Seed = &sd
	}
	payload, err := SealCommand(in, cam.Identity().Key.Public(), &s.pub, &s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

func newState(t testing.TB, serial string) *device.State {
	st, err := device.InitState(filepath.Join(t.TempDir(), serial), serial, device.Body4)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestApply(t *testing.T) {
	srv := newTestServer(t)
	cam := newState(t, "CAM-1")
	other := newState(t, "CAM-2")
	s1, _ := NewSeed()
	s2, _ := NewSeed()
	cmd1 := srv.command(t, cam, model.OpProvision, 1, &s1)
	cmd2 := srv.command(t, cam, model.OpRotate, 2, &s2)

	ack, err := Apply(cam, cmd1)
	if err != nil || ack.Result != ResultOK {
		t.Fatalf("first provision: %+v %v", ack, err)
	}
	s1.Version = 1
	if !bytes.Equal(ack.Proof, SeedProof(s1, "CAM-1", 1, bytes.Repeat([]byte{1}, ChallengeBytes))) {
		t.Fatal("proof is not HMAC(seed, challenge)")
	}
	if bytes.Contains(mustJSON(ack), s1.Secret) {
		t.Fatal("ack carries the seed")
	}
	// A resend of the same command (server restart) is answered again.
	again, err := Apply(cam, cmd1)
	if err != nil || again.Result != ResultOK || !bytes.Equal(again.Proof, ack.Proof) {
		t.Fatalf("resend: %+v %v", again, err)
	}
	if ack, err := Apply(cam, cmd2); err != nil || ack.Result != ResultOK {
		t.Fatalf("rotate: %+v %v", ack, err)
	}
	// The old command replayed later is refused and changes nothing.
	if ack, err := Apply(cam, cmd1); err != nil || ack.Result != ResultStale {
		t.Fatalf("replay of v1 after v2: %+v %v", ack, err)
	}
	if cur, _ := cam.Seed(); cur.Version != 2 || !bytes.Equal(cur.Secret, s2.Secret) {
		t.Fatal("replay rolled the seed back")
	}

	// Commands that must be dropped unanswered.
	otherSrv := newTestServer(t)
	s3, _ := NewSeed()
	forOther := srv.command(t, other, model.OpProvision, 3, &s3)
	var env Command
	json.Unmarshal(forOther, &env)
	env.Serial = "CAM-1" // re-addressed envelope: the box is sealed to CAM-2's key
	readdressed, _ := json.Marshal(env)
	drops := []struct {
		name    string
		payload []byte
	}{
		{"addressed to another camera", forOther},
		{"sealed to another camera", readdressed},
		{"from an unpinned server key", otherSrv.command(t, cam, model.OpWipe, 9, nil)},
		{"malformed", []byte("{")},
		{"unknown field", []byte(`{"v":1,"serial":"CAM-1","x":1}`)},
		{"oversized", bytes.Repeat([]byte(" "), MaxPayload+1)},
		{"bad protocol version", []byte(`{"v":2,"serial":"CAM-1","spk":"","nonce":"","box":""}`)},
	}
	for _, d := range drops {
		if ack, err := Apply(cam, d.payload); err == nil {
			t.Errorf("%s: answered %+v, want dropped", d.name, ack)
		}
	}
	// Tampered box.
	var tampered Command
	json.Unmarshal(cmd2, &tampered)
	tampered.Box[len(tampered.Box)-1] ^= 1
	tb, _ := json.Marshal(tampered)
	if _, err := Apply(cam, tb); err == nil {
		t.Error("tampered box accepted")
	}

	// Wipe, then its resend, then an old provision replay.
	wipe := srv.command(t, cam, model.OpWipe, 4, nil)
	for i := 0; i < 2; i++ {
		ack, err := Apply(cam, wipe)
		if err != nil || ack.Result != ResultOK || !VerifyProof(model.Pending{Op: model.OpWipe, Version: 4, Challenge: bytes.Repeat([]byte{4}, ChallengeBytes)}, cam.Identity().Key.Public(), "CAM-1", ack.Proof) {
			t.Fatalf("wipe #%d: %+v %v", i, ack, err)
		}
	}
	if _, err := cam.Seed(); !errors.Is(err, device.ErrNoSeed) {
		t.Fatal("wipe left a seed")
	}
	if ack, _ := Apply(cam, cmd2); ack.Result != ResultStale {
		t.Fatalf("replayed rotate after wipe: %+v", ack)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// FuzzApply feeds arbitrary payloads to the camera's command parser: it must
// never panic, and anything it accepts must be a well-formed command.
func FuzzApply(f *testing.F) {
	srv := newTestServer(f)
	cam := newState(f, "FUZZ-1")
	seed, _ := NewSeed()
	f.Add(srv.command(f, cam, model.OpProvision, 1, &seed))
	f.Add(srv.command(f, cam, model.OpWipe, 2, nil))
	f.Add([]byte(`{"v":1,"serial":"FUZZ-1","spk":"AAAA","nonce":"AAAA","box":"AAAA"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		ack, err := Apply(cam, payload)
		if err != nil {
			return
		}
		if ack.Serial != "FUZZ-1" || ack.Version == 0 {
			t.Fatalf("accepted payload gave ack %+v", ack)
		}
		if ack.Result == ResultOK && len(ack.Proof) == 0 {
			t.Fatal("ok ack without proof")
		}
	})
}
