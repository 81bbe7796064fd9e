// Package password hashes passwords with argon2id (golang.org/x/crypto) in
// the PHC string format and checks them in constant time.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters (RFC 9106 second recommended option, memory-constrained).
const (
	time_   = 3
	memory  = 64 * 1024
	threads = 2
	keyLen  = 32
	saltLen = 16
	// maxMemory bounds the memory a stored hash may ask for (KiB).
	maxMemory = 1024 * 1024
)

// MinLength and MaxLength bound a password.
const (
	MinLength = 8
	MaxLength = 1024
)

// Hash returns the argon2id PHC string of pw.
func Hash(pw string) (string, error) {
	if len(pw) < MinLength || len(pw) > MaxLength {
		return "", fmt.Errorf("password must be %d to %d characters", MinLength, MaxLength)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, time_, memory, threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memory, time_, threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check reports whether pw matches the PHC string hash.
func Check(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || strings.ContainsAny(hash, "\r\n") {
		return false, errors.New("unsupported password hash")
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, errors.New("unsupported argon2 version")
	}
	// Bounded: argon2 panics on t=0 or p=0, and m is memory to allocate.
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 ||
		m < 1 || m > maxMemory || t < 1 || t > 16 || p < 1 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return false, errors.New("malformed argon2 parameters")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, errors.New("malformed salt")
	}
	want, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, errors.New("malformed key")
	}
	if len(pw) > MaxLength {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
