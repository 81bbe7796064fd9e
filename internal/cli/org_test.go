package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/camotp/camotp/internal/server"
	"github.com/camotp/camotp/internal/testenv"
)

func TestAdminOrgAndMFACommands(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.Server(t, dir, nil)
	testenv.User(t, srv, "dave", "pw-dave-long")
	testenv.User(t, srv, "erin", "pw-erin-long")
	admin := func(args ...string) (string, string, int) {
		return run(t, append([]string{"admin", "--server", "http://" + srv.HTTPAddr(), "--token-file", filepath.Join(dir, server.AdminTokenFile)}, args...)...)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"org", "show"}, 0, "methods: bodycam,app\nrequire MFA: on\n"},
		{[]string{"org", "methods", "--enable", "app,bodycam"}, 0, "methods: bodycam,app\n"},
		{[]string{"org", "methods", "--enable", "bodycam"}, 0, "methods: bodycam\n"},
		{[]string{"org", "methods", "--enable", "sms"}, 1, ""}, // no text-message sender configured on this server
		{[]string{"org", "methods", "--enable", "fax"}, 2, ""},
		{[]string{"org", "require-mfa", "maybe"}, 2, ""},
		{[]string{"org", "require-mfa", "off"}, 0, "require MFA: off\n"},
		{[]string{"org", "require-mfa", "on"}, 0, "require MFA: on\n"},
		{[]string{"org", "methods", "--enable", "bodycam,app"}, 0, "methods: bodycam,app\n"},
		{[]string{"user", "list", "--without-mfa"}, 0, "dave      app\nerin      app\n"},
		{[]string{"user", "reset-mfa", "dave"}, 0, "MFA of dave reset"},
		{[]string{"user", "reset-mfa", "nobody"}, 1, ""},
	} {
		out, errOut, code := admin(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("admin %s: exit %d (want %d)\nstdout %q (want %q)\nstderr %s", strings.Join(tc.args, " "), code, tc.code, out, tc.out, errOut)
		}
	}
}
