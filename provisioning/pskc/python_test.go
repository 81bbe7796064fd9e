package pskc_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning/pskc"
)

// pyWrite writes a PSKC file with python-pskc: argv is mode (psk or
// password), output file, key in hex or password, then serial=secret-hex
// pairs. It encrypts the secret and, under psk, TimeInterval too (an
// encrypted integer).
const pyWrite = `
import sys, pskc
mode, out, cred = sys.argv[1:4]
p = pskc.PSKC()
for arg in sys.argv[4:]:
    serial, secret = arg.split("=")
    p.add_key(id=serial, serial=serial, manufacturer="python-pskc", model="body4",
              algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp", algorithm_suite="HMAC-SHA1",
              response_length=6, response_encoding="DECIMAL", secret=bytes.fromhex(secret),
              time_offset=0, time_interval=30)
if mode == "psk":
    p.encryption.setup_preshared_key(key=bytes.fromhex(cred), fields=["secret", "time_interval"])
else:
    p.encryption.setup_pbkdf2(cred, iterations=2000)
p.write(out)
`

// pyRead reads a PSKC file with python-pskc and prints its keys as JSON:
// argv is mode (psk or password), file, key in hex or password.
const pyRead = `
import sys, json, pskc
mode, path, cred = sys.argv[1:4]
p = pskc.PSKC(path)
if mode == "psk":
    p.encryption.key = bytes.fromhex(cred)
else:
    p.encryption.derive_key(cred)
print(json.dumps([dict(serial=k.serial, id=k.id, model=k.model, algorithm=k.algorithm, suite=k.algorithm_suite,
    digits=k.response_length, interval=k.time_interval, time=k.time_offset, secret=k.secret.hex()) for k in p.keys]))
`

// pyKey is a key as pyRead prints it.
type pyKey struct {
	Serial, ID, Model, Algorithm, Suite string
	Digits, Interval, Time              int
	Secret                              string
}

// secrets is n random 20-byte secrets by serial, and the serial=hex
// arguments of pyWrite.
func secrets(t *testing.T, n int) (map[string][]byte, []string) {
	t.Helper()
	m := map[string][]byte{}
	var args []string
	for i := range n {
		s := make([]byte, 20)
		if _, err := rand.Read(s); err != nil {
			t.Fatal(err)
		}
		sn := fmt.Sprintf("PY-%03d", i)
		m[sn] = s
		args = append(args, sn+"="+hex.EncodeToString(s))
	}
	return m, args
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
			want, args := secrets(t, 3)
			file := filepath.Join(t.TempDir(), "py.pskcxml")
			cmd := exec.Command(py, append([]string{"-c", pyWrite, tt.mode, file, tt.cred}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("python-pskc write: %v\n%s", err, out)
			}
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
// and parameters.
func TestCamotpWritesPythonReads(t *testing.T) {
	py := testenv.PythonPSKC(t)
	k32 := make([]byte, 32)
	if _, err := rand.Read(k32); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, mode, cred string
		opt              pskc.WriteOptions
	}{
		{"aes128", "psk", hex.EncodeToString(k32[:16]), pskc.WriteOptions{Key: k32[:16]}},
		{"aes256", "psk", hex.EncodeToString(k32), pskc.WriteOptions{Key: k32}},
		{"password", "password", "correct horse battery", pskc.WriteOptions{Password: "correct horse battery", Iterations: 2000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, _ := secrets(t, 3)
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
			out, err := exec.Command(py, "-c", pyRead, tt.mode, file, tt.cred).Output()
			if err != nil {
				t.Fatalf("python-pskc read: %v %s", err, out)
			}
			var got []pyKey
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
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
			// The wrong key: python-pskc refuses too (the MAC).
			bad := "00000000000000000000000000000000"
			if tt.mode == "password" {
				bad = "wrong"
			} else if len(tt.opt.Key) == 32 {
				bad += bad
			}
			if out, err := exec.Command(py, "-c", pyRead, tt.mode, file, bad).CombinedOutput(); err == nil {
				t.Errorf("python-pskc read it with the wrong key: %s", out)
			}
		})
	}
}
