package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testenv"
)

// fleet-sim --clock-offset --clock-ppm: every simulated camera's clock
// runs that far off (100 s, over 3 steps, and 40 ppm more); the cameras'
// signed clock reports tell the server so, every officer signs in at the
// first try with the code their camera shows, and admin camera list
// --drifting lists the cameras (past the 20 s default alert).
func TestFleetSimClockTelemetry(t *testing.T) {
	root := t.TempDir()
	srv := testenv.Server(t, filepath.Join(root, "server"), nil)
	dir := filepath.Join(root, "fleet")
	const n = 4
	m := startMain(t, Env{}, fleetArgs(srv, dir, n, "--assign", "--hold", "--clock-offset", "100s", "--clock-ppm", "40")...)
	m.waitUntil(t, "holding", func() bool {
		return strings.Contains(m.stdout.String(), fmt.Sprintf("holding %d cameras connected", n))
	})
	ctx := context.Background()
	users, err := readUsers(filepath.Join(dir, "users.txt"))
	if err != nil || len(users) != n {
		t.Fatalf("users.txt: %d users, %v", len(users), err)
	}
	for i := range n {
		sn, user := fmt.Sprintf("SIM-%05d", i), fmt.Sprintf("sim-user-%05d", i)
		var k model.CameraClock
		m.waitUntil(t, "the clock report of "+sn, func() bool {
			k, err = srv.Store.CameraClock(ctx, sn)
			return err == nil
		})
		if k.Offset < 95*time.Second || k.Offset > 105*time.Second+k.RTT || !k.Drifting() {
			t.Fatalf("%s reported %+v, want about +100 s, drifting", sn, k)
		}
		st, err := device.OpenState(filepath.Join(dir, sn))
		if err != nil {
			t.Fatal(err)
		}
		d, ok, err := st.SimulatedDrift()
		if err != nil || !ok || d.Offset != 100*time.Second || d.PPM != 40 {
			t.Fatalf("%s drift %+v %v %v", sn, d, ok, err)
		}
		status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/login", map[string]string{"username": user, "password": users[user]})
		if status != 200 || body["authenticator"] != "bodycam" {
			t.Fatalf("login %s: %d %v", user, status, body)
		}
		code := testenv.ScreenCode(t, st, d.Clock(device.SystemClock{}).Now())
		if status, body := testenv.API(t, srv, "", "POST", "/api/v1/auth/verify", map[string]string{"token": body["token"].(string), "code": code}); status != 200 {
			t.Fatalf("%s with a camera %v fast, first try: %d %v", user, k.Offset, status, body)
		}
	}
	tokenFile := filepath.Join(root, "server", "admin-token")
	out, errOut, code := run(t, "admin", "camera", "list", "--drifting", "--server", "http://"+srv.HTTPAddr(), "--token-file", tokenFile)
	if code != 0 || strings.Count(out, "drifting since") != n || !strings.Contains(out, "SIM-00003  +10") {
		t.Fatalf("admin camera list --drifting: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = run(t, "admin", "camera", "list", "--drifting", "--json", "--server", "http://"+srv.HTTPAddr(), "--token-file", tokenFile)
	var listed []model.CameraClock
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != n {
		t.Fatalf("admin camera list --drifting --json: exit %d\n%s", code, out)
	}
	if c := m.stop(t); c != 0 {
		t.Fatalf("stopped fleet-sim: exit %d\n%s", c, m.stdout.String())
	}
}
