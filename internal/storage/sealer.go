package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/masterkey"
)

// Sealer is how every backend turns secrets into the bytes of a row and
// back: seeds, shared secrets and signing keys sealed with the master key
// (AES-GCM, bound to the row's owner by associated data), short codes kept
// as keyed hashes, random tokens kept as plain SHA-256. Both backends use
// it, so a row copied byte for byte from one database to the other opens
// there with the same master key. Never change a format here: rows already
// written depend on it.
type Sealer struct {
	key *masterkey.Key
}

// NewSealer returns the Sealer of key.
func NewSealer(key *masterkey.Key) Sealer { return Sealer{key: key} }

// The associated data that binds a sealed secret to its owner.
func cameraAD(serial string) []byte { return []byte(serial) }
func appAD(username string) []byte  { return []byte("app:" + username) }
func radiusAD(name string) []byte   { return []byte("radius-client:" + name) }
func oidcKeyAD(id string) []byte    { return []byte("oidc-key:" + id) }
func sealSeed(k *masterkey.Key, seed device.Seed, ad []byte) ([]byte, error) {
	data, err := json.Marshal(seed)
	if err != nil {
		return nil, fmt.Errorf("encode seed: %w", err)
	}
	return k.Seal(data, ad)
}

func openSeed(k *masterkey.Key, sealed, ad []byte) (device.Seed, error) {
	data, err := k.Open(sealed, ad)
	if err != nil {
		return device.Seed{}, err
	}
	var seed device.Seed
	if err := json.Unmarshal(data, &seed); err != nil {
		return device.Seed{}, fmt.Errorf("decode seed: %w", err)
	}
	return seed, nil
}

// SealCameraSeed seals a camera's seed bound to its serial.
func (s Sealer) SealCameraSeed(serial string, seed device.Seed) ([]byte, error) {
	return sealSeed(s.key, seed, cameraAD(serial))
}

// OpenCameraSeed opens what SealCameraSeed sealed for serial.
func (s Sealer) OpenCameraSeed(serial string, sealed []byte) (device.Seed, error) {
	seed, err := openSeed(s.key, sealed, cameraAD(serial))
	if err != nil {
		return device.Seed{}, fmt.Errorf("seed of %s: %w", serial, err)
	}
	return seed, nil
}

// SealAppSeed seals a user's authenticator app seed bound to the user.
func (s Sealer) SealAppSeed(username string, seed device.Seed) ([]byte, error) {
	return sealSeed(s.key, seed, appAD(username))
}

// OpenAppSeed opens what SealAppSeed sealed for username.
func (s Sealer) OpenAppSeed(username string, sealed []byte) (device.Seed, error) {
	seed, err := openSeed(s.key, sealed, appAD(username))
	if err != nil {
		return device.Seed{}, fmt.Errorf("app seed of %s: %w", username, err)
	}
	return seed, nil
}

// SealRadiusSecret seals a RADIUS client's shared secret bound to its name.
func (s Sealer) SealRadiusSecret(name string, secret []byte) ([]byte, error) {
	sealed, err := s.key.Seal(secret, radiusAD(name))
	if err != nil {
		return nil, fmt.Errorf("seal radius secret: %w", err)
	}
	return sealed, nil
}

// OpenRadiusSecret opens what SealRadiusSecret sealed for name.
func (s Sealer) OpenRadiusSecret(name string, sealed []byte) ([]byte, error) {
	secret, err := s.key.Open(sealed, radiusAD(name))
	if err != nil {
		return nil, fmt.Errorf("radius client %s: open secret: %w", name, err)
	}
	return secret, nil
}

// SealOIDCKey seals an OpenID Connect signing key bound to its ID.
func (s Sealer) SealOIDCKey(id string, private []byte) ([]byte, error) {
	sealed, err := s.key.Seal(private, oidcKeyAD(id))
	if err != nil {
		return nil, fmt.Errorf("seal oidc key: %w", err)
	}
	return sealed, nil
}

// OpenOIDCKey opens what SealOIDCKey sealed for id.
func (s Sealer) OpenOIDCKey(id string, sealed []byte) ([]byte, error) {
	private, err := s.key.Open(sealed, oidcKeyAD(id))
	if err != nil {
		return nil, fmt.Errorf("oidc key %s: %w", id, err)
	}
	return private, nil
}

// BackupCodeMAC is the keyed hash a backup code is stored as: a stolen
// database without the master key gives no way to test guesses.
func (s Sealer) BackupCodeMAC(username, code string) []byte {
	return s.key.MAC("backup-code", []byte(username+"\x00"+code))
}

// SentCodeMAC is the keyed hash a code sent by text, call or email is
// stored as.
func (s Sealer) SentCodeMAC(username, purpose, code string) []byte {
	return s.key.MAC("sent-code", []byte(username+"\x00"+purpose+"\x00"+code))
}

// TokenHash is what a random token (sign-in, session, trusted browser) is
// stored as. The token is 32 random bytes, so a fast unkeyed hash
// suffices.
func TokenHash(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// OIDCCodeHash is what an OpenID Connect authorization code is stored as.
func OIDCCodeHash(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

// NewToken returns a fresh random token: 32 bytes, base64url.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
