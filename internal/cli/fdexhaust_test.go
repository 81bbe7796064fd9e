package cli

import (
	"strconv"

	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/internal/together"

	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/server"
)

// serveWithFDLimit runs `camotp serve` with soft and hard RLIMIT_NOFILE set
// to limit (through sh's ulimit, so this test process keeps its own) and
// stops it at cleanup.
func serveWithFDLimit(t *testing.T, limit int, args ...string) *testenv.SyncBuffer {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(limit), binary, "serve"}, args...)...)
	stderr := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	startUntilCleanup(t, cmd, "serve", stderr)
	return stderr
}

// readyz asks /readyz over c (which keeps its one connection alive, so the
// request needs no new file descriptor in the server).
func readyz(c *http.Client, base string) (int, string, error) {
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// The server runs out of file descriptors under an MQTT flood (its cap set
// above its open-file limit on purpose): /readyz says the broker cannot
// accept; once the flood ends the broker accepts again, /readyz recovers
// and a real camera connects and is provisioned. (Measured before: the
// listener never accepted again and /readyz kept saying ready.)
func TestServeFDExhaustionAndRecovery(t *testing.T) {
	const fdLimit, floodSize = 128, 300
	data := t.TempDir()
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	base := "http://" + httpAddr
	stderr := serveWithFDLimit(t, fdLimit, "--data", data, "--http", httpAddr, "--mqtt", mqttAddr,
		"--mqtt-max-conns", "100000", "--mqtt-connect-timeout", "2m")
	waitHealthy(t, base)
	if !strings.Contains(stderr.String(), "nofile_soft=128") {
		t.Fatalf("serve did not log its open-file limit of %d:\n%s", fdLimit, stderr.String())
	}
	// One kept-alive connection asks /readyz throughout: during the
	// exhaustion the server cannot accept a new one. A slow answer on a
	// loaded machine must not make the client drop it, so the timeout is
	// long.
	hc := &http.Client{Timeout: 45 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	poll := func(what string, ok func(code int, body string) bool) time.Duration {
		t.Helper()
		start := time.Now()
		deadline := start.Add(2 * time.Minute)
		for {
			code, body, err := readyz(hc, base)
			if err == nil && ok(code, body) {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never %s: last %d %q %v", what, code, body, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	poll("ready before the flood", func(code int, body string) bool { return code == 200 })

	// The flood: connections that never send CONNECT, released together.
	conns := together.Flood(t, mqttAddr, floodSize, nil)
	closeFlood := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	t.Cleanup(closeFlood)
	notReadyAfter := poll("not ready during the flood", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "mqtt broker: cannot accept")
	})
	_, body, _ := readyz(hc, base)
	t.Logf("flood of %d against an fd limit of %d: /readyz not ready after %s: %q", floodSize, fdLimit, notReadyAfter, body)

	closeFlood()
	recovery := poll("ready again after the flood", func(code int, body string) bool { return code == 200 && body == "ready\n" })
	t.Logf("/readyz ready again %s after the flood ended", recovery)

	// A real camera connects and is provisioned.
	tokenFile := filepath.Join(data, server.AdminTokenFile)
	camDir := filepath.Join(t.TempDir(), "cam")
	out, _, code := run(t, "camera", "init", "--state", camDir, "--serial", "BC4-FD", "--model", "body4")
	if code != 0 {
		t.Fatal("camera init failed")
	}
	var pub struct{ PublicKey string }
	json.Unmarshal([]byte(out), &pub)
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", base, "--token-file", tokenFile}, args...)...)
	}
	if out, errOut, code := admin("camera", "add", "--serial", "BC4-FD", "--model", "body4", "--public-key", pub.PublicKey); code != 0 {
		t.Fatalf("admin camera add: %d %s %s", code, out, errOut)
	}
	var camOut bytes.Buffer
	startBinary(t, &camOut, "camera", "run", "--state", camDir, "--ui", "headless", "--broker", "tcp://"+mqttAddr, "--wait-seed", "60s")
	if out, errOut, code := admin("camera", "provision", "BC4-FD", "--wait", "60s"); code != 0 {
		t.Fatalf("provision after the flood: %d %s %s", code, out, errOut)
	}
	if !strings.Contains(stderr.String(), "mqtt accept failed; retrying") {
		t.Fatalf("no accept failure logged:\n%s", stderr.String())
	}
}

// With the default cap (the open-file limit minus a reserve) the same
// flood cannot exhaust file descriptors: the broker holds the cap, refuses
// the rest at once, and new HTTP connections and /readyz keep working.
func TestServeDefaultCapKeepsFDs(t *testing.T) {
	const fdLimit, floodSize = 128, 300
	data := t.TempDir()
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	base := "http://" + httpAddr
	stderr := serveWithFDLimit(t, fdLimit, "--data", data, "--http", httpAddr, "--mqtt", mqttAddr, "--mqtt-connect-timeout", "2m")
	waitHealthy(t, base)
	if !strings.Contains(stderr.String(), "max_conns=64") {
		t.Fatalf("default cap for an fd limit of %d is not 64:\n%s", fdLimit, stderr.String())
	}
	together.Flood(t, mqttAddr, floodSize, nil) // held until cleanup
	// Each check opens a new HTTP connection: it needs a free descriptor.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/metrics")
		var body []byte
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if strings.Contains(string(body), "\ncamotp_mqtt_connections_refused_total 237\n") &&
			strings.Contains(string(body), "\ncamotp_mqtt_connections_open 64\n") {
			break // 64 held (the server's link and 63 of the flood), 237 refused
		}
		if time.Now().After(deadline) {
			t.Fatalf("flood never settled at the cap: %v\n%s", err, grepLines(string(body), "camotp_mqtt_"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz during the capped flood: %d %s", resp.StatusCode, body)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
