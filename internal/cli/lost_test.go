package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

// TestAdminCameraReportLostAndFound: the CLI against a real server and a
// real camera: report-lost says what it did (and that a repeat changed
// nothing), list marks the camera LOST and --lost keeps only it, show
// carries the report, found and assign are refused with what to do, and
// found passes once the camera was wiped and provisioned again.
func TestAdminCameraReportLostAndFound(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.Server(t, dir, nil)
	testenv.User(t, srv, "dave", "pw-dave-long")
	st, agent := testenv.ProvisionedCameraAgent(t, srv, "BC4-CLI", device.Body4, "dave")
	testenv.ProvisionedCamera(t, srv, "BC3-OK", device.Body3, "")
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", "http://" + srv.HTTPAddr(), "--token-file", filepath.Join(dir, server.AdminTokenFile)}, args...)...)
	}
	agent.Stop() // the wipe waits for it
	for _, tc := range []struct {
		args        []string
		code        int
		out, notOut string
		errOut      string
	}{
		{[]string{"camera", "report-lost"}, 2, "", "", ""},
		{[]string{"camera", "report-lost", "NOPE-1"}, 1, "", "", "404"},
		{[]string{"camera", "report-lost", "BC4-CLI", "--reason", "two\nlines"}, 1, "", "", "400"},
		{[]string{"camera", "report-lost", "BC4-CLI", "--reason", "stolen from car 12"}, 0,
			"camera BC4-CLI reported lost: its codes are refused from now on; dave is unassigned and signs in with their other methods; a wipe waits for the camera's next connection", "", ""},
		{[]string{"camera", "report-lost", "BC4-CLI"}, 0, "camera BC4-CLI was already reported lost (by admin at ", "", ""},
		{[]string{"camera", "list"}, 0, "wiping, LOST", "provisioned, LOST", ""},
		{[]string{"camera", "list", "--lost"}, 0, "BC4-CLI", "BC3-OK", ""},
		{[]string{"camera", "found", "BC4-CLI"}, 1, "", "", "wipe is not proven yet"},
		{[]string{"camera", "assign", "BC4-CLI", "--user", "dave"}, 1, "", "", "reported lost"},
	} {
		out, errOut, code := admin(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || (tc.notOut != "" && strings.Contains(out, tc.notOut)) || !strings.Contains(errOut, tc.errOut) {
			t.Errorf("admin %s: exit %d (want %d)\nstdout %q (want %q)\nstderr %s (want %q)", strings.Join(tc.args, " "), code, tc.code, out, tc.out, errOut, tc.errOut)
		}
	}
	out, _, _ := admin("camera", "show", "BC4-CLI")
	var cam model.Camera
	if err := json.Unmarshal([]byte(out), &cam); err != nil || cam.Lost == nil || cam.Lost.Reason != "stolen from car 12" || cam.Lost.By != "admin" {
		t.Fatalf("show: %v %s", err, out)
	}
	testenv.Agent(t, st, "tcp://"+srv.MQTTAddr())
	testenv.WaitCamera(t, srv.Store, "BC4-CLI", model.StateWiped, cam.PendingVersion)
	if _, errOut, code := admin("camera", "found", "BC4-CLI"); code != 1 || !strings.Contains(errOut, "camotp admin camera provision BC4-CLI") {
		t.Fatalf("found once wiped: exit %d %s", code, errOut)
	}
	if out, errOut, code := admin("camera", "provision", "BC4-CLI", "--wait", "30s"); code != 0 {
		t.Fatalf("provision: exit %d %s %s", code, out, errOut)
	}
	if out, errOut, code := admin("camera", "found", "BC4-CLI"); code != 0 || !strings.Contains(out, "camera BC4-CLI found") {
		t.Fatalf("found: exit %d %s %s", code, out, errOut)
	}
	if out, _, _ := admin("camera", "list", "--lost"); strings.Contains(out, "BC4-CLI") {
		t.Fatalf("list --lost after found:\n%s", out)
	}
	if _, errOut, code := admin("camera", "assign", "BC4-CLI", "--user", "dave"); code != 0 {
		t.Fatalf("assign after found: exit %d %s", code, errOut)
	}
}
