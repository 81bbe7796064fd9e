package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// The operator's path with mosquitto, as docs/scale-out.md gives it:
// serve --mqtt-external with --mqtt-dynsec-admin; camotp admin server-key;
// camera init --server-key; admin camera add; camera run --broker-auth
// derived; admin camera provision --wait. The camera shows the code of
// the seed the server holds.
func TestServeWithMosquittoDynsecThroughCLI(t *testing.T) {
	m := testenv.StartMosquitto(t)
	data := t.TempDir()
	httpAddr := freeAddr(t)
	var serveOut bytes.Buffer
	startBinary(t, &serveOut, "serve", "--data", data, "--http", httpAddr, "--mqtt-external", m.URL,
		"--mqtt-dynsec-admin", m.AdminUser, "--mqtt-dynsec-password-file", m.AdminPasswordFile)
	base := "http://" + httpAddr
	waitHealthy(t, base)
	tokenFile := filepath.Join(data, server.AdminTokenFile)
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", base, "--token-file", tokenFile}, args...)...)
	}
	key, errOut, code := admin("server-key")
	if code != 0 {
		t.Fatalf("admin server-key: %d %s", code, errOut)
	}
	camDir := filepath.Join(t.TempDir(), "cam")
	out, errOut, code := run(t, "camera", "init", "--state", camDir, "--serial", "DYN-CLI", "--model", "body4", "--server-key", strings.TrimSpace(key))
	if code != 0 {
		t.Fatalf("camera init: %d %s", code, errOut)
	}
	var pub struct{ PublicKey string }
	json.Unmarshal([]byte(out), &pub)
	if out, errOut, code := admin("camera", "add", "--serial", "DYN-CLI", "--model", "body4", "--public-key", pub.PublicKey); code != 0 {
		t.Fatalf("admin camera add: %d %s %s", code, out, errOut)
	}

	const script = "double:select,press:voldown,press:select"
	var camOut bytes.Buffer
	camStart := time.Now()
	cam := startBinary(t, &camOut, "camera", "run", "--state", camDir, "--ui", "headless", "--broker", m.URL,
		"--broker-auth", "derived", "--wait-seed", "30s", "--script", script)
	done := make(chan error, 1)
	go func() { done <- cam.Wait() }()
	if out, errOut, code := admin("camera", "provision", "DYN-CLI", "--wait", "30s"); code != 0 {
		select {
		case err := <-done:
			t.Logf("camera exited: %v", err)
		default:
			t.Logf("camera still running")
		}
		t.Fatalf("provision: %d %s %s\ncamera:\n%s", code, out, errOut, camOut.String())
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("camera run: %v\n%s", err, camOut.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("camera never received its seed")
	}
	camExit := time.Now()

	screenShowsServerCode(t, data, "DYN-CLI", script, camStart, camExit, camOut.String())
}

func TestServeDynsecFlagErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "pw")
	open := filepath.Join(dir, "pw-open")
	os.WriteFile(good, []byte("secret\n"), 0o600)
	os.WriteFile(open, []byte("secret\n"), 0o644)
	serve := func(extra ...string) []string {
		return append([]string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"}, extra...)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		inStderr string
	}{
		{"admin without password file", serve("--mqtt-external", "tcp://127.0.0.1:1", "--mqtt-dynsec-admin", "a"), "go together"},
		{"password file without admin", serve("--mqtt-external", "tcp://127.0.0.1:1", "--mqtt-dynsec-password-file", good), "go together"},
		{"dynsec without external broker", serve("--mqtt-dynsec-admin", "a", "--mqtt-dynsec-password-file", good), "--mqtt-external"},
		{"password file readable by others", serve("--mqtt-external", "tcp://127.0.0.1:1", "--mqtt-dynsec-admin", "a", "--mqtt-dynsec-password-file", open), "chmod 600"},
		{"dynsec and a username", serve("--mqtt-external", "tcp://127.0.0.1:1", "--mqtt-dynsec-admin", "a", "--mqtt-dynsec-password-file", good, "--mqtt-username", "u"), "drop --mqtt-username"},
		{"hook and a username", serve("--mqtt-external", "tcp://127.0.0.1:1", "--mqtt-hook", "--mqtt-username", "u"), "drop --mqtt-username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.inStderr) {
				t.Fatalf("exit %d stderr %q; want 2 naming %q", code, errOut, tc.inStderr)
			}
		})
	}
}
