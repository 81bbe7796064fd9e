// Package secretfile keeps small generated secrets (tokens, keys) in 0600
// files: created with random bytes on first use, reused afterwards, refused
// when readable by group or others.
package secretfile

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/camotp/camotp/internal/atomicfile"
)

// LoadOrCreate returns the n secret bytes stored base64url in path, creating
// the file (0600) with fresh random bytes when it does not exist.
func LoadOrCreate(path string, n int) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, n)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("generate %s: %w", path, err)
		}
		if err := atomicfile.WriteFile(path, []byte(base64.RawURLEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
			return nil, err
		}
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != n {
		return nil, fmt.Errorf("%s is malformed: want %d base64url bytes", path, n)
	}
	return raw, nil
}

// maxPrivate bounds a secret ReadPrivate reads.
const maxPrivate = 4 << 10

// ReadPrivate returns the secret an operator put in path (a password for
// another system), without its trailing line break. Like LoadOrCreate it
// refuses a file readable by group or others; it also refuses an empty
// file and one over 4 KiB.
func ReadPrivate(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	if fi.Size() > maxPrivate {
		return "", fmt.Errorf("%s is over %d bytes: not a password", path, maxPrivate)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	secret := strings.TrimRight(string(data), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}

// Text returns the secret file's content as the string form LoadOrCreate
// wrote (for tokens handed to people and programs).
func Text(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }
