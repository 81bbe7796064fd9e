package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/camkey"
)

// binary is the camotp binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "camotp-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "camotp")
	out, err := exec.Command("go", "build", "-o", binary, "github.com/camotp/camotp/cmd/camotp").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the built binary and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func initCamera(t *testing.T, serial, model string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), serial)
	out, errOut, code := run(t, "camera", "init", "--state", dir, "--serial", serial, "--model", model)
	if code != 0 {
		t.Fatalf("camera init: exit %d: %s", code, errOut)
	}
	var pub struct{ Serial, Model, PublicKey string }
	if err := json.Unmarshal([]byte(out), &pub); err != nil {
		t.Fatalf("camera init output is not JSON: %v\n%s", err, out)
	}
	if pub.Serial != serial || pub.Model != model {
		t.Fatalf("identity = %+v", pub)
	}
	if _, err := camkey.ParsePublicKey(pub.PublicKey); err != nil {
		t.Fatalf("publicKey: %v", err)
	}
	return dir
}

const rfcB32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// wantCode is oathtool's code for rfcB32 at the Unix time 1234567890, or the
// RFC 6238 Appendix B value (last 6 digits of 89005924) when oathtool is absent.
func wantCode(t *testing.T) string {
	if _, err := exec.LookPath("oathtool"); err != nil {
		t.Log("oathtool not installed; using the RFC 6238 Appendix B value")
		return "005924"
	}
	out, err := exec.Command("oathtool", "--totp", "-b", rfcB32, "--now", "2009-02-13 23:31:30 UTC").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func TestHeadlessExamples(t *testing.T) {
	want := wantCode(t)
	tests := []struct {
		model, script string
	}{
		{"body4", "double:select,press:voldown,press:select"},
		{"body3", "long:program,press:voldown,press:select"},
		{"workforce", "long:program,press:voldown,press:select"},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			dir := initCamera(t, "SN-"+tc.model, tc.model)
			out, errOut, code := run(t, "camera", "run", "--state", dir, "--ui", "headless",
				"--test-seed", rfcB32, "--clock", "2009-02-13T23:31:30Z", "--script", tc.script)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, want) || !strings.Contains(out, "TEST") || !strings.Contains(out, "AUTHENTICATOR") {
				t.Fatalf("screen lacks code %s / TEST banner:\n%s", want, out)
			}
		})
	}
}

func TestHeadlessWrongGestureStaysHome(t *testing.T) {
	dir := initCamera(t, "SN-3", "body3")
	out, _, code := run(t, "camera", "run", "--state", dir, "--ui", "headless", "--test-seed", rfcB32,
		"--clock", "2009-02-13T23:31:30Z", "--script", "double:select,press:voldown,press:select")
	if code != 0 || !strings.Contains(out, "READY") || strings.Contains(out, "005924") {
		t.Fatalf("body3 opened its menu with Body 4's gesture (exit %d):\n%s", code, out)
	}
}

func TestHeadlessNotProvisioned(t *testing.T) {
	dir := initCamera(t, "SN-4", "body4")
	out, _, code := run(t, "camera", "run", "--state", dir, "--ui", "headless",
		"--script", "double:select,press:voldown,press:select")
	if code != 0 || !strings.Contains(out, "Not provisioned") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestHeadlessClockOffset(t *testing.T) {
	dir := initCamera(t, "SN-5", "body4")
	// 30 s fast: the camera shows the next step's code.
	out, _, code := run(t, "camera", "run", "--state", dir, "--ui", "headless", "--test-seed", rfcB32,
		"--clock", "2009-02-13T23:31:30Z", "--clock-offset", "30s", "--script", "double:select,press:voldown,press:select")
	if code != 0 || strings.Contains(out, "005924") || !strings.Contains(out, "AUTHENTICATOR") {
		t.Fatalf("offset clock still shows the unshifted code (exit %d):\n%s", code, out)
	}
}

func TestCLIErrors(t *testing.T) {
	dir := initCamera(t, "SN-6", "body4")
	pinned := filepath.Join(t.TempDir(), "pinned")
	if _, errOut, code := run(t, "camera", "init", "--state", pinned, "--serial", "SN-7", "--model", "body4",
		"--server-key", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))); code != 0 {
		t.Fatalf("camera init --server-key: exit %d: %s", code, errOut)
	}
	if data, err := os.ReadFile(filepath.Join(pinned, "server-key.json")); err != nil || !strings.Contains(string(data), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))) {
		t.Fatalf("camera init --server-key pinned %q (%v)", data, err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"init twice names dir", []string{"camera", "init", "--state", dir, "--serial", "X", "--model", "body4"}, 1, dir},
		{"unknown event", []string{"camera", "run", "--state", dir, "--ui", "headless", "--script", "press:select,poke:select"}, 2, `"poke:select"`},
		{"unknown button", []string{"camera", "run", "--state", dir, "--ui", "headless", "--script", "press:shutter"}, 2, `"press:shutter"`},
		{"bad clock", []string{"camera", "run", "--state", dir, "--ui", "headless", "--clock", "yesterday"}, 2, "--clock"},
		{"bad seed", []string{"camera", "run", "--state", dir, "--ui", "headless", "--test-seed", "not base32!"}, 2, "--test-seed"},
		{"bad ui", []string{"camera", "run", "--state", dir, "--ui", "vr"}, 2, `"vr"`},
		{"bad model", []string{"camera", "init", "--state", t.TempDir(), "--serial", "X", "--model", "body5"}, 2, "body5"},
		{"missing state", []string{"camera", "run", "--ui", "headless"}, 2, "--state"},
		{"no camera in dir", []string{"camera", "run", "--state", t.TempDir(), "--ui", "headless"}, 1, "camera init"},
		{"unknown command", []string{"teleport"}, 2, "teleport"},
		{"bad server key", []string{"camera", "init", "--state", t.TempDir(), "--serial", "X", "--model", "body4", "--server-key", "c2hvcnQ="}, 2, "--server-key"},
		{"bad broker auth", []string{"camera", "run", "--state", dir, "--broker", "tcp://127.0.0.1:1", "--broker-auth", "psk"}, 2, "--broker-auth"},
		{"derived without server key", []string{"camera", "run", "--state", dir, "--ui", "headless", "--broker", "tcp://127.0.0.1:1", "--broker-auth", "derived"}, 2, "--server-key"},
		{"other server key", []string{"camera", "run", "--state", pinned, "--ui", "headless", "--server-key", base64.StdEncoding.EncodeToString(make([]byte, 32))}, 1, "pinned to another"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.inStderr) {
				t.Fatalf("exit %d stderr %q; want exit %d naming %q", code, errOut, tc.code, tc.inStderr)
			}
		})
	}
}
