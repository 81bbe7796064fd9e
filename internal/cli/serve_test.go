package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/emulator"
	"github.com/camotp/camotp/internal/masterkey"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/storage/sqlite"
	"github.com/camotp/camotp/internal/testenv"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBinary starts a long-running camotp command and stops it at cleanup.
func startBinary(t *testing.T, stdout *bytes.Buffer, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	stderr := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	startUntilCleanup(t, cmd, args[0], stderr)
	return cmd
}

// startUntilCleanup starts cmd and, at cleanup, interrupts it (killing it
// after 15 s) and logs its stderr when the test failed.
func startUntilCleanup(t *testing.T, cmd *exec.Cmd, name string, stderr fmt.Stringer) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
}

// screenShowsServerCode checks that screen, what a camera printed while
// it ran script between camStart and camExit, shows a code of the seed the
// server in data holds for serial. The camera printed at its own clock:
// real time moved on by the script's virtual timeline (headless mode plays
// the script without sleeping and moves the camera clock with it), so the
// code is the seed's code at one of the steps that clock could have read.
func screenShowsServerCode(t *testing.T, data, serial, script string, camStart, camExit time.Time, screen string) {
	t.Helper()
	key, err := masterkey.Load(filepath.Join(data, server.MasterKeyFile), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(data, server.DBFile), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seed, err := st.ActiveSeed(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	shift := scriptShift(t, script)
	candidates := stepCodes(t, seed, camStart.Add(shift), camExit.Add(shift))
	if !slices.ContainsFunc(candidates, func(c string) bool { return strings.Contains(screen, c) }) {
		t.Fatalf("camera screen does not show the server seed's code %v (camera clock between %s and %s):\n%s",
			candidates, camStart.Add(shift).Format(time.StampMilli), camExit.Add(shift).Format(time.StampMilli), screen)
	}
}

func waitHealthy(t *testing.T, base string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s never became healthy", base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The whole fleet flow through the binary: serve → camera init → admin add →
// camera run (headless, connected) → admin provision --wait → the camera
// shows the code of the server-side seed.
func TestServeProvisionThroughCLI(t *testing.T) {
	data := t.TempDir()
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	var serveOut bytes.Buffer
	startBinary(t, &serveOut, "serve", "--data", data, "--http", httpAddr, "--mqtt", mqttAddr)
	base := "http://" + httpAddr
	waitHealthy(t, base)
	tokenFile := filepath.Join(data, server.AdminTokenFile)
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", base, "--token-file", tokenFile}, args...)...)
	}

	camDir := filepath.Join(t.TempDir(), "cam")
	out, _, code := run(t, "camera", "init", "--state", camDir, "--serial", "BC4-CLI", "--model", "body4")
	if code != 0 {
		t.Fatal("camera init failed")
	}
	var pub struct{ PublicKey string }
	json.Unmarshal([]byte(out), &pub)
	if out, errOut, code := admin("camera", "add", "--serial", "BC4-CLI", "--model", "body4", "--public-key", pub.PublicKey); code != 0 {
		t.Fatalf("admin camera add: %d %s %s", code, out, errOut)
	}
	// Duplicate serial: a clear error, exit 1.
	if _, errOut, code := admin("camera", "add", "--serial", "BC4-CLI", "--model", "body4", "--public-key", pub.PublicKey); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate add: %d %s", code, errOut)
	}
	// Provisioning an offline camera times out with a clear message.
	if _, errOut, code := admin("camera", "provision", "BC4-CLI", "--wait", "1s"); code != 1 || !strings.Contains(errOut, "did not prove") {
		t.Fatalf("offline provision: %d %s", code, errOut)
	}

	const script = "double:select,press:voldown,press:select"
	var camOut bytes.Buffer
	camStart := time.Now()
	cam := startBinary(t, &camOut, "camera", "run", "--state", camDir, "--ui", "headless", "--broker", "tcp://"+mqttAddr,
		"--wait-seed", "30s", "--script", script)
	// The pending command from the timed-out run is delivered when the camera connects.
	done := make(chan error, 1)
	go func() { done <- cam.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("camera run: %v\n%s", err, camOut.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("camera never received its seed")
	}
	camExit := time.Now()
	screen := camOut.String()
	if out, errOut, code := admin("camera", "list"); code != 0 || !strings.Contains(out, "provisioned") {
		t.Fatalf("camera list: %d %s %s", code, out, errOut)
	}

	// The server-side seed (sealed in SQLite) gives the code the camera shows.
	screenShowsServerCode(t, data, "BC4-CLI", script, camStart, camExit, screen)

	// Users and assignment through the CLI.
	userAdd := exec.Command(binary, "admin", "--server", base, "--token-file", tokenFile, "user", "add", "officer1", "--email", "o1@pd.example", "--password-stdin")
	userAdd.Stdin = strings.NewReader("a long password\n")
	if out, err := userAdd.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	if out, errOut, code := admin("camera", "assign", "BC4-CLI", "--user", "officer1"); code != 0 {
		t.Fatalf("assign: %s %s", out, errOut)
	}
	out, _, _ = admin("user", "list", "--json")
	if !strings.Contains(out, `"camera": "BC4-CLI"`) {
		t.Fatalf("user list: %s", out)
	}
	// A wrong token is refused.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("nope"), 0o600)
	if _, errOut, code := run(t, "admin", "--server", base, "--token-file", bad, "camera", "list"); code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("bad token: %d %s", code, errOut)
	}

}

// scriptShift is how far 'camera run --ui headless' moves the camera clock
// while it plays script: the script runs on a virtual timeline and the
// camera's wall time follows it (emulator.Play), so the screen printed at
// the end shows the camera at real time plus this.
func scriptShift(t *testing.T, script string) time.Duration {
	t.Helper()
	steps, err := emulator.ParseScript(script)
	if err != nil {
		t.Fatal(err)
	}
	oc := &device.OffsetClock{Base: device.FixedClock{}}
	cam, err := device.New(device.Config{Serial: "SHIFT", Model: device.Body4, Clock: oc, Seeds: device.TestSeed{}})
	if err != nil {
		t.Fatal(err)
	}
	emulator.Play(cam, oc, 0, steps)
	return oc.Shift
}

// stepCodes returns seed's code for every time step from the one holding
// from to the one holding to.
func stepCodes(t *testing.T, seed device.Seed, from, to time.Time) []string {
	t.Helper()
	period := int64(seed.Period)
	var codes []string
	for step := from.Unix() / period; step <= to.Unix()/period; step++ {
		c, err := seed.Code(time.Unix(step*period, 0))
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
	}
	return codes
}
