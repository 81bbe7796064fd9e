// Package camkey holds a camera's identity keys and the formats both the
// camera and the server use for them: an Ed25519 key that signs the camera's
// MQTT credentials, and an X25519 key that provisioning payloads are sealed
// to. The public identity is one string: "cam1:" followed by the unpadded
// base64url encoding of the 32-byte Ed25519 public key and the 32-byte X25519
// public key, in that order.
package camkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/curve25519"
)

const prefix = "cam1:"

// b64 is the encoding of keys and signatures.
var b64 = base64.RawURLEncoding

// decode64 decodes b64 so that one key or token has one spelling only: the
// unused low bits of the last character must be zero, and line breaks
// (which encoding/base64 skips even in strict mode) are refused.
func decode64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break inside base64")
	}
	return b64.Strict().DecodeString(s)
}

// PublicKey is the public half of a camera identity.
type PublicKey struct {
	Sign ed25519.PublicKey
	Box  [32]byte
}

// PrivateKey is a camera identity's private keys.
type PrivateKey struct {
	Sign ed25519.PrivateKey
	Box  [32]byte
}

// Generate makes a new identity from crypto/rand.
func Generate() (PrivateKey, error) {
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	var k PrivateKey
	k.Sign = sk
	if _, err := rand.Read(k.Box[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("generate box key: %w", err)
	}
	return k, nil
}

// Public returns the public identity.
func (k PrivateKey) Public() PublicKey {
	var pub PublicKey
	pub.Sign = k.Sign.Public().(ed25519.PublicKey)
	pub.Box = BoxPublic(k.Box)
	return pub
}

// BoxPublic returns the X25519 public key of a private key.
func BoxPublic(priv [32]byte) [32]byte {
	var pub [32]byte
	b, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	copy(pub[:], b)
	return pub
}

// String formats the public identity as "cam1:<base64url>".
func (p PublicKey) String() string {
	buf := make([]byte, 0, 64)
	buf = append(buf, p.Sign...)
	buf = append(buf, p.Box[:]...)
	return prefix + b64.EncodeToString(buf)
}

// ParsePublicKey parses the form String writes.
func ParsePublicKey(s string) (PublicKey, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, prefix) {
		return PublicKey{}, errors.New("public key must start with \"cam1:\"")
	}
	raw, err := decode64(s[len(prefix):])
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key is not base64url: %w", err)
	}
	if len(raw) != 64 {
		return PublicKey{}, fmt.Errorf("public key must hold 64 bytes, got %d", len(raw))
	}
	var p PublicKey
	p.Sign = ed25519.PublicKey(append([]byte(nil), raw[:32]...))
	copy(p.Box[:], raw[32:])
	return p, nil
}

// MarshalPrivate encodes the private keys (for the camera's 0600 state file).
func (k PrivateKey) MarshalPrivate() string {
	buf := make([]byte, 0, 64)
	buf = append(buf, k.Sign.Seed()...)
	buf = append(buf, k.Box[:]...)
	return b64.EncodeToString(buf)
}

// ParsePrivate decodes what MarshalPrivate wrote.
func ParsePrivate(s string) (PrivateKey, error) {
	raw, err := decode64(s)
	if err != nil || len(raw) != 64 {
		return PrivateKey{}, errors.New("private key is malformed")
	}
	var k PrivateKey
	k.Sign = ed25519.NewKeyFromSeed(raw[:32])
	copy(k.Box[:], raw[32:])
	return k, nil
}

// TokenSkew is how far a credential token's time may be from the server's.
const TokenSkew = 5 * time.Minute

func tokenMessage(serial string, ts int64) []byte {
	return []byte("camotp-mqtt-auth\x00" + serial + "\x00" + strconv.FormatInt(ts, 10))
}

// Token returns the MQTT password a camera presents for serial at time now:
// "v1.<unix seconds>.<base64url Ed25519 signature>".
func (k PrivateKey) Token(serial string, now time.Time) string {
	ts := now.Unix()
	sig := ed25519.Sign(k.Sign, tokenMessage(serial, ts))
	return "v1." + strconv.FormatInt(ts, 10) + "." + b64.EncodeToString(sig)
}

// VerifyToken checks a token made by Token for serial against the public
// key, accepting times within TokenSkew of now.
func (p PublicKey) VerifyToken(serial, token string, now time.Time) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return errors.New("credential token is malformed")
	}
	ts, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || strconv.FormatInt(ts, 10) != parts[1] { // no "+", no leading zeros
		return errors.New("credential token time is malformed")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > TokenSkew || d < -TokenSkew {
		return fmt.Errorf("credential token time is %s off", d.Round(time.Second))
	}
	sig, err := decode64(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("credential token signature is malformed")
	}
	if !ed25519.Verify(p.Sign, tokenMessage(serial, ts), sig) {
		return errors.New("credential token signature does not verify")
	}
	return nil
}
