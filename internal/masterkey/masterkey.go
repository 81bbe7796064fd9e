// Package masterkey loads the server's master key and seals secrets at rest
// with it (AES-256-GCM, a fresh random nonce per seal, caller-chosen
// associated data).
package masterkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/camotp/camotp/internal/secretfile"
)

// EnvVar is the environment variable that may carry the master key
// (base64 of 32 bytes); it takes precedence over the key file.
const EnvVar = "CAMOTP_MASTER_KEY"

// Key seals and opens secrets at rest.
type Key struct {
	aead   cipher.AEAD
	macKey []byte // HKDF-derived, for MAC
}

// New returns a Key from 32 raw bytes.
func New(raw []byte) (*Key, error) {
	if len(raw) != 32 {
		return nil, fmt.Errorf("master key must be 32 bytes, got %d", len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	macKey, err := hkdf.Key(sha256.New, raw, nil, "camotp mac v1", 32)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &Key{aead: aead, macKey: macKey}, nil
}

// MAC is HMAC-SHA256 of data under a key derived from the master key for
// purpose: a keyed hash for short secrets (backup codes) that a stolen
// database alone cannot brute-force.
func (k *Key) MAC(purpose string, data []byte) []byte {
	m := hmac.New(sha256.New, k.macKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

// Load returns the key from env (when not empty) or from the file at path,
// creating that file (0600, 32 random bytes, base64url) on first use. A file
// readable by group or others is refused.
func Load(path, env string) (*Key, error) {
	if env != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(env))
		if err != nil {
			return nil, fmt.Errorf("%s is not base64: %w", EnvVar, err)
		}
		return New(raw)
	}
	raw, err := secretfile.LoadOrCreate(path, 32)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return New(raw)
}

// Seal encrypts plaintext bound to ad; the result is nonce‖ciphertext.
func (k *Key) Seal(plaintext, ad []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, ad), nil
}

// Open decrypts what Seal returned for the same ad.
func (k *Key) Open(sealed, ad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, errors.New("sealed secret is too short")
	}
	pt, err := k.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, errors.New("sealed secret does not open (wrong master key or tampered)")
	}
	return pt, nil
}
