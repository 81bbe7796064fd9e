// Package provisioning delivers TOTP seeds to cameras over MQTT so that only
// the addressed camera can read them, and marks a camera provisioned only
// once it proves it holds the seed. It has the server side (Service, the
// admin API) and the camera side (Agent). docs/provisioning.md describes the
// wire protocol.
package provisioning

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/nacl/box"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/camkey"
	"github.com/camotp/camotp/internal/model"
)

// Protocol limits.
const (
	// ProtocolVersion is the "v" field of every payload.
	ProtocolVersion = 1
	// MaxPayload bounds a command or ack; larger payloads are dropped unread.
	MaxPayload = 4096
	// SeedBytes is the size of a generated seed: 160 bits (RFC 4226 §4).
	SeedBytes = 20
	// ChallengeBytes is the size of a proof-of-possession challenge.
	ChallengeBytes = 32
)

// Topics of a camera.
func provTopic(serial string) string   { return "cams/" + serial + "/prov" }
func ackTopic(serial string) string    { return "cams/" + serial + "/ack" }
func statusTopic(serial string) string { return "cams/" + serial + "/status" }

// Status payloads a camera publishes on its status topic (the offline one is
// its MQTT will).
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// serialFromTopic returns SN of "cams/SN/<leaf>", or "" when the topic is
// not of that form.
func serialFromTopic(topic, leaf string) string {
	parts := strings.Split(topic, "/")
	if len(parts) != 3 || parts[0] != "cams" || parts[2] != leaf || device.ValidateSerial(parts[1]) != nil {
		return ""
	}
	return parts[1]
}

// Command is the sealed envelope on cams/SN/prov.
type Command struct {
	V      int    `json:"v"`
	Serial string `json:"serial"`
	// ServerKey is the server's X25519 public key the box was sealed with.
	ServerKey []byte `json:"spk"`
	Nonce     []byte `json:"nonce"`
	Box       []byte `json:"box"`
}

// Instruction is what a Command's box holds.
type Instruction struct {
	Op        model.Op     `json:"op"`
	Serial    string       `json:"serial"`
	Version   uint64       `json:"version"`
	Challenge []byte       `json:"challenge"`
	Seed      *device.Seed `json:"seed,omitempty"`
}

// Ack is a camera's answer on cams/SN/ack. It never carries the seed or a
// code: Proof is HMAC-SHA256 keyed with the new seed for provision/rotate,
// and the camera's Ed25519 signature for wipe.
type Ack struct {
	V       int      `json:"v"`
	Serial  string   `json:"serial"`
	Op      model.Op `json:"op"`
	Version uint64   `json:"version"`
	Result  string   `json:"result"` // ok, stale, error
	Error   string   `json:"error,omitempty"`
	Proof   []byte   `json:"proof,omitempty"`
}

// DeliversSeed tells an ack of a seed the camera stored (a provision or
// rotate answered ok).
func (a Ack) DeliversSeed() bool { return a.Result == ResultOK && a.Op != model.OpWipe }

// Ack results.
const (
	ResultOK    = "ok"
	ResultStale = "stale"
	ResultError = "error"
)

// decodeStrict decodes one JSON object, refusing unknown fields, trailing
// data and payloads over MaxPayload.
func decodeStrict(payload []byte, v any) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed payload: %w", err)
	}
	if dec.More() {
		return errors.New("malformed payload: trailing data")
	}
	return nil
}

// SealCommand seals in to the camera's public key from the server's box key.
func SealCommand(in Instruction, camera camkey.PublicKey, serverPub, serverPriv *[32]byte) ([]byte, error) {
	plain, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode instruction: %w", err)
	}
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	sealed := box.Seal(nil, plain, &nonce, &camera.Box, serverPriv)
	return json.Marshal(Command{V: ProtocolVersion, Serial: in.Serial, ServerKey: serverPub[:], Nonce: nonce[:], Box: sealed})
}

// ParseCommand checks a command envelope addressed to serial (it does not
// open the box).
func ParseCommand(payload []byte, serial string) (Command, error) {
	var c Command
	if err := decodeStrict(payload, &c); err != nil {
		return Command{}, err
	}
	switch {
	case c.V != ProtocolVersion:
		return Command{}, fmt.Errorf("unsupported protocol version %d", c.V)
	case c.Serial != serial:
		return Command{}, fmt.Errorf("command addressed to %q, not %q", c.Serial, serial)
	case len(c.ServerKey) != 32:
		return Command{}, errors.New("server key must be 32 bytes")
	case len(c.Nonce) != 24:
		return Command{}, errors.New("nonce must be 24 bytes")
	case len(c.Box) < box.Overhead:
		return Command{}, errors.New("sealed box is too short")
	}
	return c, nil
}

// Open opens the command's box with the camera's private key and checks the
// instruction inside.
func (c Command) Open(key camkey.PrivateKey) (Instruction, error) {
	var spk [32]byte
	var nonce [24]byte
	copy(spk[:], c.ServerKey)
	copy(nonce[:], c.Nonce)
	plain, ok := box.Open(nil, c.Box, &nonce, &spk, &key.Box)
	if !ok {
		return Instruction{}, errors.New("sealed box does not open with this camera's key")
	}
	var in Instruction
	if err := decodeStrict(plain, &in); err != nil {
		return Instruction{}, fmt.Errorf("instruction: %w", err)
	}
	if in.Serial != c.Serial {
		return Instruction{}, fmt.Errorf("instruction for %q inside envelope for %q", in.Serial, c.Serial)
	}
	if in.Version == 0 || len(in.Challenge) != ChallengeBytes {
		return Instruction{}, errors.New("instruction lacks version or challenge")
	}
	switch in.Op {
	case model.OpProvision, model.OpRotate:
		if in.Seed == nil {
			return Instruction{}, fmt.Errorf("%s instruction carries no seed", in.Op)
		}
		if err := in.Seed.Validate(); err != nil {
			return Instruction{}, fmt.Errorf("instruction seed: %w", err)
		}
		if in.Seed.Version != in.Version {
			return Instruction{}, errors.New("instruction seed version differs from its version")
		}
	case model.OpWipe:
		if in.Seed != nil {
			return Instruction{}, errors.New("wipe instruction carries a seed")
		}
	default:
		return Instruction{}, fmt.Errorf("unknown operation %q", in.Op)
	}
	return in, nil
}

// ParseAck checks an ack published on the topic of serial.
func ParseAck(payload []byte, serial string) (Ack, error) {
	var a Ack
	if err := decodeStrict(payload, &a); err != nil {
		return Ack{}, err
	}
	switch {
	case a.V != ProtocolVersion:
		return Ack{}, fmt.Errorf("unsupported protocol version %d", a.V)
	case a.Serial != serial:
		return Ack{}, fmt.Errorf("ack names %q on the topic of %q", a.Serial, serial)
	case a.Result != ResultOK && a.Result != ResultStale && a.Result != ResultError:
		return Ack{}, fmt.Errorf("unknown ack result %q", a.Result)
	case len(a.Error) > 256:
		return Ack{}, errors.New("ack error text too long")
	}
	return a, nil
}

func proofMessage(label, serial string, version uint64, challenge []byte) []byte {
	m := []byte(label + "\x00" + serial + "\x00" + strconv.FormatUint(version, 10) + "\x00")
	return append(m, challenge...)
}

// SeedProof is the proof of possession of seed: HMAC-SHA256 keyed with the
// seed secret over the serial, version and challenge.
func SeedProof(seed device.Seed, serial string, version uint64, challenge []byte) []byte {
	mac := hmac.New(sha256.New, seed.Secret)
	mac.Write(proofMessage("camotp-pop", serial, version, challenge))
	return mac.Sum(nil)
}

// WipeProof is the camera's signature that it erased its seed.
func WipeProof(key camkey.PrivateKey, serial string, version uint64, challenge []byte) []byte {
	return ed25519.Sign(key.Sign, proofMessage("camotp-wiped", serial, version, challenge))
}

// VerifyProof checks an ack's proof against the pending operation.
func VerifyProof(p model.Pending, pub camkey.PublicKey, serial string, proof []byte) bool {
	if p.Op == model.OpWipe {
		return ed25519.Verify(pub.Sign, proofMessage("camotp-wiped", serial, p.Version, p.Challenge), proof)
	}
	if p.Seed == nil {
		return false
	}
	return hmac.Equal(SeedProof(*p.Seed, serial, p.Version, p.Challenge), proof)
}
