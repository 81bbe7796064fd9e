package camkey

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// BrokerPasswordPrefix starts every derived broker password; a signed
// token (Token) starts with "v1." instead, so a broker hook can tell them
// apart.
const BrokerPasswordPrefix = "k1."

// brokerPasswordSalt separates the broker password from every other use of
// the camera–server X25519 secret (NaCl box keys are HSalsa20 of the same
// secret; this is HKDF-SHA256 under its own salt).
const brokerPasswordSalt = "camotp mqtt v1"

// brokerPassword is the derivation both sides share: HKDF-SHA256 with
// ikm = X25519 shared secret, salt = "camotp mqtt v1", info = serial ‖ 0 ‖
// camera X25519 public ‖ server X25519 public; 32 bytes, base64url.
func brokerPassword(shared []byte, serial string, camera, server [32]byte) (string, error) {
	info := make([]byte, 0, len(serial)+1+64)
	info = append(info, serial...)
	info = append(info, 0)
	info = append(info, camera[:]...)
	info = append(info, server[:]...)
	key, err := hkdf.Key(sha256.New, shared, []byte(brokerPasswordSalt), string(info), 32)
	if err != nil {
		return "", fmt.Errorf("derive broker password: %w", err)
	}
	return BrokerPasswordPrefix + b64.EncodeToString(key), nil
}

// BrokerPassword returns the MQTT password camera serial presents to an
// external broker that has no hook into camotp (mosquitto's dynamic
// security plugin): a value derived from the X25519 exchange between the
// camera's box key and the server's box public key (pinned on the camera).
// The server computes the same value with ServerBrokerPassword; neither
// key leaves its holder, and the password opens nothing but this camera's
// broker login.
func (k PrivateKey) BrokerPassword(serial string, server [32]byte) (string, error) {
	shared, err := curve25519.X25519(k.Box[:], server[:])
	if err != nil {
		return "", fmt.Errorf("broker password: server key: %w", err)
	}
	return brokerPassword(shared, serial, BoxPublic(k.Box), server)
}

// ServerBrokerPassword is BrokerPassword as the server computes it, from its
// X25519 private key and the camera's registered public identity.
func ServerBrokerPassword(serverPriv [32]byte, serial string, camera PublicKey) (string, error) {
	shared, err := curve25519.X25519(serverPriv[:], camera.Box[:])
	if err != nil {
		return "", fmt.Errorf("broker password: camera %s key: %w", serial, err)
	}
	return brokerPassword(shared, serial, camera.Box, BoxPublic(serverPriv))
}

// IsBrokerPassword reports whether password has the form of a derived
// broker password (not whether it is right).
func IsBrokerPassword(password string) bool {
	return strings.HasPrefix(password, BrokerPasswordPrefix)
}

// VerifyBrokerPassword checks, in constant time, a derived broker password
// presented for camera serial with public identity p.
func (p PublicKey) VerifyBrokerPassword(serverPriv [32]byte, serial, password string) error {
	want, err := ServerBrokerPassword(serverPriv, serial, p)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 {
		return errors.New("broker password does not match the camera's key")
	}
	return nil
}
