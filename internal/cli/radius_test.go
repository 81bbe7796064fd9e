package cli

import (
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/testenv"
)

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestServeRadiusThroughCLI: serve --radius, clients managed with admin
// radius, the printed secret verifies packets (radclient Status-Server),
// and no log line holds it.
func TestServeRadiusThroughCLI(t *testing.T) {
	data := t.TempDir()
	httpAddr, mqttAddr, radiusAddr := freeAddr(t), freeAddr(t), freeUDP(t)
	serveOut, serveErr := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	cmd := exec.Command(binary, "serve", "--data", data, "--http", httpAddr, "--mqtt", mqttAddr, "--radius", radiusAddr)
	cmd.Stdout, cmd.Stderr = serveOut, serveErr
	startUntilCleanup(t, cmd, "serve", serveErr)
	base := "http://" + httpAddr
	waitHealthy(t, base)
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", base, "--token-file", filepath.Join(data, "admin-token"), "radius"}, args...)...)
	}
	out, errOut, code := admin("add-client", "--name", "loopback", "--cidr", "127.0.0.1", "--json")
	var info struct{ Name, CIDR, Secret string }
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || info.CIDR != "127.0.0.1/32" || len(info.Secret) != 26 {
		t.Fatalf("add-client: %d %q %s", code, out, errOut)
	}
	if out, _, code := admin("add-client", "--name", "mdt-gw", "--cidr", "10.20.0.0/16"); code != 0 || !strings.Contains(out, "shared secret: ") {
		t.Fatalf("add-client (text): %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"add-client", "--name", "loopback", "--cidr", "10.9.9.9"}, 1, ""},  // name taken
		{[]string{"add-client", "--name", "again", "--cidr", "10.20.0.0/16"}, 1, ""}, // range taken
		{[]string{"add-client", "--name", "x", "--cidr", "not-an-address"}, 2, ""},   // usage
		{[]string{"add-client", "--name", "bad name!", "--cidr", "10.1.1.1"}, 1, ""}, // refused by the server
		{[]string{"list"}, 0, "loopback  127.0.0.1/32"},
		{[]string{"remove", "mdt-gw"}, 0, "radius client mdt-gw removed"},
		{[]string{"remove", "mdt-gw"}, 1, ""},
	} {
		out, errOut, code := admin(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("admin radius %s: exit %d (want %d)\nstdout %q (want %q)\nstderr %s", strings.Join(tc.args, " "), code, tc.code, out, tc.out, errOut)
		}
	}
	if out, _, _ := admin("list", "--json"); strings.Contains(out, info.Secret) || strings.Contains(out, "mdt-gw") {
		t.Fatalf("list shows a secret or a removed client: %s", out)
	}
	if rc, err := exec.LookPath("radclient"); err == nil {
		st := exec.Command(rc, "-x", "-r", "1", "-t", "5", radiusAddr, "status", info.Secret)
		st.Stdin = strings.NewReader("Message-Authenticator = 0x00\n")
		out, _ := st.CombinedOutput()
		if !strings.Contains(string(out), "Received Access-Accept") {
			t.Fatalf("radclient status with the printed secret:\n%s", out)
		}
	} else {
		t.Log("radclient not installed: the printed secret is not tried on the wire")
	}
	if strings.Contains(serveErr.String(), info.Secret) || strings.Contains(serveOut.String(), info.Secret) {
		t.Fatal("the shared secret is in the server's output")
	}
	if !strings.Contains(serveErr.String(), "radius serving") {
		t.Fatalf("serve does not say it serves RADIUS:\n%s", serveErr.String())
	}
}

// TestServeRadiusPortBusy: serve stops with a clear message when the
// RADIUS port is taken.
func TestServeRadiusPortBusy(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, errOut, code := run(t, "serve", "--data", t.TempDir(), "--http", freeAddr(t), "--mqtt", freeAddr(t), "--radius", busy.LocalAddr().String())
	if code != 1 || !strings.Contains(errOut, "radius listen "+busy.LocalAddr().String()) || !strings.Contains(errOut, "address already in use") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestBenchRadius runs a small bench radius: both servers answer every
// code step with Access-Accept (the bench fails otherwise).
func TestBenchRadius(t *testing.T) {
	out, errOut, code := run(t, "bench", "radius", "--users", "20", "--clients", "2", "--duration", "100ms")
	if code != 0 || !strings.Contains(out, "real (sign-in service") || !strings.Contains(out, "no-op sign-in service") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}
