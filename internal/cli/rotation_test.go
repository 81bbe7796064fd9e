package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testclock"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/rollover"
)

// TestAdminOrgRotation: the rollover policy is set, shown (with the
// cameras due and overdue) and turned off from the CLI; bad input is a
// usage error naming the problem, and the server refuses what the CLI
// would have.
func TestAdminOrgRotation(t *testing.T) {
	dir := t.TempDir()
	clk := &testclock.Shift{}
	srv := testenv.Server(t, dir, func(c *server.Config) { c.Now, c.RolloverTick = clk.Now, -1 })
	testenv.ProvisionedCamera(t, srv, "ROT-1", device.Body4, "")
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", "http://" + srv.HTTPAddr(), "--token-file", filepath.Join(dir, server.AdminTokenFile)}, args...)...)
	}
	steps := []struct {
		name    string
		args    []string
		advance time.Duration
		code    int
		out     string // in stdout (code 0) or stderr
	}{
		{"off at first", []string{"org", "rotation"}, 0, 0, "seed rotation: off\n"},
		{"set", []string{"org", "rotation", "--every", "1d12h", "--window", "22:00-02:00", "--tz", "Europe/Paris", "--max-per-hour", "25%"}, 0, 0,
			"seed rotation: every 1d12h, window 22:00-02:00 Europe/Paris, at most 25% of the fleet per hour\nrotation status: 1 cameras, 0 due, 0 overdue"},
		{"shown by org show", []string{"org", "show"}, 0, 0, "require MFA: on\nseed rotation: every 1d12h"},
		{"due a day and a half on", []string{"org", "rotation"}, 37 * time.Hour, 0, "rotation status: 1 cameras, 1 due"},
		{"overdue a day later", []string{"org", "rotation"}, 24 * time.Hour, 0, "1 due, 1 overdue"},
		{"any time of day", []string{"org", "rotation", "--every", "90d"}, 0, 0, "seed rotation: every 90d, any time of day UTC, at most 10% of the fleet per hour\nrotation status: 1 cameras, 0 due, 0 overdue, 0 rotating; 0 started this hour; in the window now"},
		{"minutes are no unit", []string{"org", "rotation", "--every", "90m"}, 0, 2, "unit 'm'"},
		{"too short", []string{"org", "rotation", "--every", "0h"}, 0, 2, "between 1h0m0s and 3650d"},
		{"window without period", []string{"org", "rotation", "--window", "02:00-05:00"}, 0, 2, "--every is required"},
		{"bad window", []string{"org", "rotation", "--every", "90d", "--window", "2-5"}, 0, 2, "want HH:MM"},
		{"empty window", []string{"org", "rotation", "--every", "90d", "--window", "02:00-02:00"}, 0, 2, "starts when it ends"},
		{"bad zone", []string{"org", "rotation", "--every", "90d", "--tz", "Mars/Olympus"}, 0, 2, "IANA"},
		{"share too large", []string{"org", "rotation", "--every", "90d", "--max-per-hour", "150%"}, 0, 2, "1% to 100%"},
		{"share not a number", []string{"org", "rotation", "--every", "90d", "--max-per-hour", "half"}, 0, 2, "--max-per-hour"},
		{"off with flags", []string{"org", "rotation", "off", "--every", "1d"}, 0, 2, "takes no flags"},
		{"not off", []string{"org", "rotation", "on"}, 0, 2, "want off"},
		{"off", []string{"org", "rotation", "off"}, 0, 0, "seed rotation: off\n"},
	}
	for _, st := range steps {
		clk.Add(st.advance)
		out, errOut, code := admin(st.args...)
		got := out
		if st.code != 0 {
			got = errOut
		}
		if code != st.code || !strings.Contains(got, st.out) {
			t.Errorf("%s: admin %s: exit %d (want %d)\nstdout %q\nstderr %q\nwant %q", st.name, strings.Join(st.args, " "), code, st.code, out, errOut, st.out)
		}
	}
	// The server checks what it is sent, whatever the client.
	for _, body := range []any{rollover.Policy{Every: "0h"}, rollover.Policy{Every: "90d", Window: "25:00-26:00"},
		rollover.Policy{Window: "02:00-05:00"}, map[string]any{"every": "90d", "extra": 1}, "not json"} {
		if code, resp := testenv.API(t, srv, srv.AdminToken, "PUT", rollover.PolicyPath, body); code != 400 {
			t.Errorf("PUT %v: %d %v, want 400", body, code, resp)
		}
	}
	if code, _ := testenv.API(t, srv, "wrong", "GET", rollover.PolicyPath, nil); code != 401 {
		t.Errorf("GET without the admin token: %d, want 401", code)
	}
}
