package pskc_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning/pskc"
)

// secrets is n random 20-byte secrets by serial.
func secrets(t *testing.T, n int) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for i := range n {
		s := make([]byte, 20)
		if _, err := rand.Read(s); err != nil {
			t.Fatal(err)
		}
		m[fmt.Sprintf("PY-%03d", i)] = s
	}
	return m
}

// TestPythonWritesCamotpReads: files python-pskc writes, encrypted with a
// pre-shared key (secret and an integer encrypted) or a password, read
// here to the same secrets and parameters; the wrong key fails.
func TestPythonWritesCamotpReads(t *testing.T) {
	py := testenv.PythonPSKC(t)
	psk := make([]byte, 16)
	if _, err := rand.Read(psk); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mode, cred string
		opt, wrong pskc.ReadOptions
		prot       pskc.Protection
	}{
		{"psk", hex.EncodeToString(psk), pskc.ReadOptions{Key: psk}, pskc.ReadOptions{Key: make([]byte, 16)}, pskc.PreSharedKey},
		{"password", "qwerty", pskc.ReadOptions{Password: "qwerty"}, pskc.ReadOptions{Password: "qwertz"}, pskc.Password},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			want := secrets(t, 3)
			file := filepath.Join(t.TempDir(), "py.pskcxml")
			testenv.PythonWritePSKC(t, py, tt.mode, file, tt.cred, "body4", want)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := pskc.Parse(data, tt.opt)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			if c.Protection != tt.prot || len(c.Keys) != len(want) {
				t.Fatalf("protection %s, %d keys; want %s, %d", c.Protection, len(c.Keys), tt.prot, len(want))
			}
			for _, k := range c.Keys {
				if hex.EncodeToString(k.Secret) != hex.EncodeToString(want[k.SerialNo]) {
					t.Errorf("%s: secret %x, want %x", k.SerialNo, k.Secret, want[k.SerialNo])
				}
				if k.Algorithm != pskc.AlgorithmTOTP || k.Suite != "HMAC-SHA1" || k.Digits != 6 || k.Model != "body4" ||
					k.TimeInterval == nil || *k.TimeInterval != 30 || k.Time == nil || *k.Time != 0 {
					t.Errorf("%s: %+v", k.SerialNo, k)
				}
			}
			if _, err := pskc.Parse(data, tt.wrong); err == nil {
				t.Error("read with the wrong key or password")
			}
		})
	}
}

// TestCamotpWritesPythonReads: what Marshal writes, with a pre-shared key
// of each AES size or a password, python-pskc reads to the same secrets
// and parameters, and refuses with the wrong key.
func TestCamotpWritesPythonReads(t *testing.T) {
	py := testenv.PythonPSKC(t)
	k32 := make([]byte, 32)
	if _, err := rand.Read(k32); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, mode, cred, wrong string
		opt                     pskc.WriteOptions
	}{
		{"aes128", "psk", hex.EncodeToString(k32[:16]), hex.EncodeToString(make([]byte, 16)), pskc.WriteOptions{Key: k32[:16]}},
		{"aes192", "psk", hex.EncodeToString(k32[:24]), hex.EncodeToString(make([]byte, 24)), pskc.WriteOptions{Key: k32[:24]}},
		{"aes256", "psk", hex.EncodeToString(k32), hex.EncodeToString(make([]byte, 32)), pskc.WriteOptions{Key: k32}},
		{"password", "password", "correct horse battery", "wrong", pskc.WriteOptions{Password: "correct horse battery", Iterations: 2000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := secrets(t, 3)
			var keys []pskc.Key
			t0, step := int64(0), int64(30)
			for sn, s := range want {
				keys = append(keys, pskc.Key{SerialNo: sn, ID: sn, Model: "body3", Algorithm: pskc.AlgorithmTOTP, Suite: "HMAC-SHA1",
					Digits: 8, Secret: s, Time: &t0, TimeInterval: &step})
			}
			data, err := pskc.Marshal(keys, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "camotp.pskcxml")
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := testenv.PythonReadPSKC(t, py, tt.mode, file, tt.cred)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("python-pskc read %d keys, want %d", len(got), len(want))
			}
			for _, k := range got {
				if k.Secret != hex.EncodeToString(want[k.Serial]) {
					t.Errorf("%s: python-pskc read secret %s, want %x", k.Serial, k.Secret, want[k.Serial])
				}
				if k.ID != k.Serial || k.Model != "body3" || k.Algorithm != pskc.AlgorithmTOTP || k.Suite != "HMAC-SHA1" ||
					k.Digits != 8 || k.Interval != 30 || k.Time != 0 {
					t.Errorf("python-pskc read %+v", k)
				}
			}
			if got, err := testenv.PythonReadPSKC(t, py, tt.mode, file, tt.wrong); err == nil {
				t.Errorf("python-pskc read it with the wrong key: %+v", got)
			}
		})
	}
}
