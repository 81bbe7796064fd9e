package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

func fleetArgs(srv *server.Server, dir string, n int, extra ...string) []string {
	return append([]string{"fleet-sim", "--server", "http://" + srv.HTTPAddr(),
		"--token-file", filepath.Join(dir, "..", "server", server.AdminTokenFile),
		"--broker", "tcp://" + srv.MQTTAddr(), "--state", dir, "--cameras", fmt.Sprint(n)}, extra...)
}

func TestFleetSimProvisionsAndAssigns(t *testing.T) {
	root := t.TempDir()
	srv := testenv.Server(t, filepath.Join(root, "server"), nil)
	dir := filepath.Join(root, "fleet")
	const n = 12
	out, errOut, code := run(t, fleetArgs(srv, dir, n, "--assign", "--prefix", "QA")...)
	if code != 0 {
		t.Fatalf("fleet-sim: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{fmt.Sprintf("%d/%d cameras provisioned", n, n), "KiB per headless camera", "0 failures"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Not a terminal: plain progress lines, no carriage returns.
	if !strings.Contains(errOut, fmt.Sprintf("fleet-sim: %d/%d provisioned", n, n)) || strings.Contains(errOut, "\r") {
		t.Errorf("progress on a pipe should be plain lines:\n%q", errOut)
	}
	ctx := context.Background()
	info, err := os.Stat(filepath.Join(dir, "users.txt"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("users.txt: %v %v", info, err)
	}
	users, err := readUsers(filepath.Join(dir, "users.txt"))
	if err != nil || len(users) != n {
		t.Fatalf("users.txt: %d users, %v", len(users), err)
	}
	for i := range n {
		sn, user := fmt.Sprintf("QA-%05d", i), fmt.Sprintf("qa-user-%05d", i)
		cam, err := srv.Store.Camera(ctx, sn)
		if err != nil || cam.State != model.StateProvisioned || cam.AssignedUser != user {
			t.Fatalf("%s: %+v %v", sn, cam, err)
		}
	}
	// The simulated officer signs in with the password from users.txt and
	// the code its simulated camera shows.
	st, err := device.OpenState(filepath.Join(dir, "QA-00003"))
	if err != nil {
		t.Fatal(err)
	}
	status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": "qa-user-00003", "password": users["qa-user-00003"]})
	if status != 200 {
		t.Fatalf("login: %d %v", status, body)
	}
	status, body = testenv.API(t, srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "code": testenv.ScreenCode(t, st, time.Now())})
	if status != 200 || body["sessionToken"] == nil {
		t.Fatalf("verify: %d %v", status, body)
	}

	// A second run reuses the states: nothing duplicated, nothing failed.
	out, errOut, code = run(t, fleetArgs(srv, dir, n, "--assign", "--prefix", "QA")...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d/%d cameras provisioned", n, n)) {
		t.Fatalf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
	if again, _ := readUsers(filepath.Join(dir, "users.txt")); again["qa-user-00003"] != users["qa-user-00003"] || len(again) != n {
		t.Errorf("second run changed users.txt")
	}
}

func TestFleetSimBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"fleet-sim", "--cameras", "0"},
		{"fleet-sim", "--model", "body9"},
		{"fleet-sim", "--prefix", "bad prefix!"},
	} {
		if _, errOut, code := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}

// TestFleetSimInterrupt stops fleet-sim with SIGINT while it provisions: it
// exits non-zero, and every camera the server calls provisioned really holds
// the seed of that version.
func TestFleetSimInterrupt(t *testing.T) {
	root := t.TempDir()
	srv := testenv.Server(t, filepath.Join(root, "server"), nil)
	dir := filepath.Join(root, "fleet")
	const n = 300
	cmd := exec.Command(binary, fleetArgs(srv, dir, n)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "cameras connected in") {
			// Let some commands go out first, then press Ctrl-C.
			time.AfterFunc(30*time.Millisecond, func() { cmd.Process.Signal(os.Interrupt) })
		}
	}
	err = cmd.Wait()
	if err == nil {
		t.Logf("fleet-sim finished before the interrupt took effect:\n%s", out.String())
	} else if !strings.Contains(out.String(), "stopped (interrupted)") {
		t.Fatalf("exit %v; output:\n%s", err, out.String())
	}
	ctx := context.Background()
	provisioned := 0
	for i := range n {
		sn := fmt.Sprintf("SIM-%05d", i)
		cam, err := srv.Store.Camera(ctx, sn)
		if err != nil {
			t.Fatal(err)
		}
		if cam.State != model.StateProvisioned {
			continue
		}
		provisioned++
		st, err := device.OpenState(filepath.Join(dir, sn))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Seed(); err != nil || st.Version() != cam.Version {
			t.Errorf("%s: server says provisioned v%d; camera holds v%d (%v)", sn, cam.Version, st.Version(), err)
		}
	}
	t.Logf("%d of %d provisioned before the interrupt", provisioned, n)

	// Running again with the same state finishes the job: the cameras left
	// pending complete their operation when they reconnect.
	again, errOut, code := run(t, fleetArgs(srv, dir, n)...)
	if code != 0 || !strings.Contains(again, fmt.Sprintf("%d/%d cameras provisioned", n, n)) {
		t.Fatalf("second run: exit %d\n%s\n%s", code, again, errOut)
	}
}

// fleet-sim --hold --report --clock-ppm-spread: the fleet stays connected
// after provisioning until stopped; the report gives every camera's state
// and its times to connect and to provision; every camera got its own
// drift within the spread, which camera code applies to the code it reads.
func TestFleetSimHoldReportDrift(t *testing.T) {
	root := t.TempDir()
	srv := testenv.Server(t, filepath.Join(root, "server"), nil)
	dir, report := filepath.Join(root, "fleet"), filepath.Join(root, "report.json")
	const n = 6
	m := startMain(t, Env{}, fleetArgs(srv, dir, n, "--hold", "--report", report, "--clock-ppm-spread", "80")...)
	m.waitUntil(t, "holding", func() bool { return strings.Contains(m.stdout.String(), "holding 6 cameras connected") })
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r simReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, data)
	}
	if r.Cameras != n || r.Provisioned != n || len(r.Camera) != n || len(r.Failures) != 0 {
		t.Fatalf("report: %+v", r)
	}
	drifts := map[float64]bool{}
	for _, c := range r.Camera {
		if c.Link != "connected" || c.ConnectMs <= 0 || c.ProvisionMs <= 0 || c.ClockPPM == nil || *c.ClockPPM < -80 || *c.ClockPPM > 80 {
			t.Fatalf("camera in the report: %+v", c)
		}
		drifts[*c.ClockPPM] = true
	}
	if len(drifts) < 2 {
		t.Fatalf("every camera got the same drift: %v", drifts)
	}
	// Held: the server sees the fleet online while fleet-sim waits.
	if online, err := srv.Store.OnlineCount(context.Background()); err != nil || online != n {
		t.Fatalf("%d cameras online while held (%v)", online, err)
	}
	// The drift is the camera's: its code a year on is the drifted time's.
	st, err := device.OpenState(filepath.Join(dir, "SIM-00002"))
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := st.SimulatedDrift()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := st.Seed()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second)
	want, err := seed.Code(d.Clock(device.FixedClock{T: at}).Now())
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, "camera", "code", "--state", st.Dir(), "--clock", at.UTC().Format(time.RFC3339)); code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("camera code a year on: exit %d %q %s, want %s (drift %+v)", code, out, errOut, want, d)
	}
	if c := m.stop(t); c != 0 {
		t.Fatalf("stopped fleet-sim: exit %d\n%s", c, m.stdout.String())
	}
}
