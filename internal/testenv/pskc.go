package testenv

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// PythonPSKC returns a Python 3 interpreter that imports Debian's
// python3-pskc (python-pskc 1.2, another PSKC implementation). Debian's
// /usr/bin/python3 is tried before the one on PATH: the package installs
// into the system interpreter only. Without it the test is skipped,
// saying how to install it, except under CI=true where it fails: CI
// installs the package (.ci/run).
func PythonPSKC(tb testing.TB) string {
	tb.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import pskc").Run() == nil {
			return path
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatal("python3-pskc is not installed, but CI=true and CI must test against it (.ci/run installs the Debian package python3-pskc)")
	}
	tb.Skip("python3-pskc not installed (Debian package python3-pskc: apt-get install -y python3-pskc); CI installs it")
	return ""
}

// pythonWritePSKC writes a PSKC file with python-pskc: argv is mode (psk
// or password), output file, key in hex or password, model, then
// serial=secret-hex pairs. It encrypts the secret and, with a key,
// TimeInterval too (an encrypted integer).
const pythonWritePSKC = `
import sys, pskc
mode, out, cred, model = sys.argv[1:5]
p = pskc.PSKC()
for arg in sys.argv[5:]:
    serial, secret = arg.split("=")
    p.add_key(id=serial, serial=serial, manufacturer="python-pskc", model=model,
              algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp", algorithm_suite="HMAC-SHA1",
              response_length=6, response_encoding="DECIMAL", secret=bytes.fromhex(secret),
              time_offset=0, time_interval=30)
if mode == "psk":
    p.encryption.setup_preshared_key(key=bytes.fromhex(cred), fields=["secret", "time_interval"])
else:
    p.encryption.setup_pbkdf2(cred, iterations=2000)
p.write(out)
`

// pythonReadPSKC reads a PSKC file with python-pskc and prints its keys
// as JSON: argv is mode (psk or password), file, key in hex or password.
const pythonReadPSKC = `
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

// PythonKey is a key as python-pskc read it.
type PythonKey struct {
	Serial, ID, Model, Algorithm, Suite string
	Digits, Interval, Time              int
	// Secret is in hex.
	Secret string
}

// PythonWritePSKC has python-pskc (py, from PythonPSKC) write file: TOTP
// keys (SHA1, 6 digits, 30 s) of the secrets by serial, DeviceInfo/Model
// model, encrypted with a pre-shared key (mode "psk", cred the key in hex;
// TimeInterval encrypted too) or a password (mode "password").
func PythonWritePSKC(tb testing.TB, py, mode, file, cred, model string, secrets map[string][]byte) {
	tb.Helper()
	args := []string{"-c", pythonWritePSKC, mode, file, cred, model}
	for sn, s := range secrets {
		args = append(args, sn+"="+hex.EncodeToString(s))
	}
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		tb.Fatalf("python-pskc write %s: %v\n%s", file, err, out)
	}
}

// PythonReadPSKC has python-pskc read file with a pre-shared key (mode
// "psk", cred in hex) or a password (mode "password"); err is its failure.
func PythonReadPSKC(tb testing.TB, py, mode, file, cred string) ([]PythonKey, error) {
	tb.Helper()
	out, err := exec.Command(py, "-c", pythonReadPSKC, mode, file, cred).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("python-pskc read %s: %w: %s", file, err, ee.Stderr)
		}
		return nil, err
	}
	var keys []PythonKey
	if err := json.Unmarshal(out, &keys); err != nil {
		return nil, fmt.Errorf("python-pskc output: %w: %s", err, out)
	}
	return keys, nil
}
