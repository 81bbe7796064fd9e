package masterkey

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadCreatesThenReuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	k1, err := Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	sealed, err := k1.Seal([]byte("seed bytes"), []byte("SN1"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k2.Open(sealed, []byte("SN1"))
	if err != nil || !bytes.Equal(pt, []byte("seed bytes")) {
		t.Fatalf("reloaded key open: %q %v", pt, err)
	}
	if bytes.Contains(sealed, []byte("seed bytes")) {
		t.Fatal("plaintext visible in sealed bytes")
	}
	// Associated data binds the secret to its row: another serial cannot open it.
	if _, err := k2.Open(sealed, []byte("SN2")); err == nil {
		t.Fatal("opened with the wrong associated data")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := k2.Open(sealed, []byte("SN1")); err == nil {
		t.Fatal("opened a tampered secret")
	}
}

func TestLoadRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	os.WriteFile(open, []byte(base64.RawURLEncoding.EncodeToString(make([]byte, 32))), 0o644)
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte(base64.RawURLEncoding.EncodeToString(make([]byte, 16))), 0o600)
	tests := []struct{ name, path, env string }{
		{"world-readable file", open, ""},
		{"short key file", short, ""},
		{"env not base64", "", "***"},
		{"env wrong size", "", base64.StdEncoding.EncodeToString(make([]byte, 31))},
	}
	for _, tc := range tests {
		if _, err := Load(tc.path, tc.env); err == nil {
			t.Errorf("%s: Load succeeded", tc.name)
		}
	}
	k, err := Load(filepath.Join(dir, "unused"), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil || k == nil {
		t.Fatalf("env key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "unused")); !os.IsNotExist(err) {
		t.Fatal("env key wrote a key file")
	}
}
