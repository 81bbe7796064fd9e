package cli

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/testenv"
)

// runMain runs Main in-process and returns stdout, stderr and the exit code.
func runMain(t *testing.T, env Env, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr testenv.SyncBuffer
	env.Stdout, env.Stderr = &stdout, &stderr
	code := Main(context.Background(), env, args)
	return stdout.String(), stderr.String(), code
}

// helpGroups are camotp's command groups and the subcommands each lists.
var helpGroups = map[string][]string{
	"":             {"camera", "board-sim", "serve", "migrate", "demo", "bench", "fleet-sim", "admin", "completion"},
	"camera":       {"init", "run", "code"},
	"bench":        {"verify", "signin", "radius", "provision", "reconnect"},
	"admin":        {"camera", "user", "org", "radius", "oidc", "outbox", "server-key", "audit"},
	"admin audit":  {"list", "verify", "export"},
	"admin camera": {"add", "provision", "rotate", "wipe", "assign", "unassign", "list", "show", "report-lost", "found", "import", "export", "set-key"},
	"admin user":   {"add", "list", "password", "forget-devices", "reset-mfa"},
	"admin org":    {"show", "methods", "require-mfa", "rotation"},
	"admin radius": {"add-client", "list", "remove"},
	"admin oidc":   {"add-client", "list", "remove", "rotate-key"},
	"completion":   {"bash", "zsh", "fish", "powershell"},
}

// TestGroupHelp: every group's --help lists each of its subcommands on one
// line and exits 0; the group alone prints its usage and exits 2; an
// unknown subcommand exits 2 naming it and the group's commands. The
// table covers every group of the real tree.
func TestGroupHelp(t *testing.T) {
	var tree []string
	var walk func(c *cobra.Command, path string)
	walk = func(c *cobra.Command, path string) {
		var subs []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				subs = append(subs, sub.Name())
				walk(sub, strings.TrimSpace(path+" "+sub.Name()))
			}
		}
		if len(subs) > 0 {
			tree = append(tree, path)
			want := slices.Clone(helpGroups[path])
			slices.Sort(want)
			slices.Sort(subs)
			if !slices.Equal(subs, want) {
				t.Errorf("group %q has commands %v; the test lists %v", path, subs, want)
			}
		}
	}
	walk(newRoot(Env{}), "")
	if len(tree) != len(helpGroups) {
		t.Errorf("groups in the tree %q; in the test %d", tree, len(helpGroups))
	}

	for path, subs := range helpGroups {
		args := strings.Fields(path)
		t.Run("camotp "+path, func(t *testing.T) {
			out, errOut, code := runMain(t, Env{}, append(args, "--help")...)
			if code != 0 {
				t.Fatalf("--help: exit %d, stderr %s", code, errOut)
			}
			for _, sub := range subs {
				lines := regexp.MustCompile(`(?m)^  `+regexp.QuoteMeta(sub)+` +\S.*$`).FindAllString(out, -1)
				if len(lines) != 1 {
					t.Errorf("--help lists %q on %d lines, want one:\n%s", sub, len(lines), out)
				}
			}

			if path != "" { // camotp alone: its usage, exit 2
				_, errOut, code = runMain(t, Env{}, args...)
				if code != 2 || !strings.Contains(errOut, "want a command") || !strings.Contains(errOut, "  "+subs[0]+" ") {
					t.Errorf("no subcommand: exit %d (want 2), stderr:\n%s", code, errOut)
				}
			}

			_, errOut, code = runMain(t, Env{}, append(args, "frobnicate")...)
			prefix := "camotp: "
			if path != "" {
				prefix += path + ": "
			}
			if code != 2 || !strings.Contains(errOut, prefix+`unknown command "frobnicate" (want `) {
				t.Errorf("unknown subcommand: exit %d (want 2), stderr:\n%s", code, errOut)
			}
			for _, sub := range subs {
				if !strings.Contains(errOut, sub) {
					t.Errorf("unknown subcommand: the message does not name %q:\n%s", sub, errOut)
				}
			}
		})
	}
}

// TestUsageErrors: flags and arguments the command does not take exit 2
// with a message naming them; Go-flag style single-dash long flags still
// work.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "want a command"},
		{[]string{"serve", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"serve", "extra"}, `serve: unexpected argument "extra"`},
		{[]string{"camera", "init", "--state"}, "flag needs an argument: --state"},
		{[]string{"admin", "camera", "provision"}, "admin camera provision: want a serial"},
		{[]string{"admin", "camera", "show", "A", "B"}, "admin camera show: want exactly one serial"},
		{[]string{"admin", "org", "require-mfa", "maybe"}, "want on or off"},
		{[]string{"admin", "user", "add", "u1", "--email", "u1@pd.example", "--role", "chief", "--password-stdin"}, `--role "chief": want admin, fleet, security or officer`},
		{[]string{"bench", "verify", "--cameras", "0"}, "--cameras"},
		{[]string{"camera", "run", "--state", "x", "--ui", "tui", "--script", "press:select"}, "--script needs --ui headless"},
	} {
		_, errOut, code := runMain(t, Env{}, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "--help' for usage") {
			t.Errorf("camotp %s: exit %d (want 2), stderr %q (want %q and the --help hint)", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}

	// -state and -ui are the Go flag package's spelling of --state and --ui.
	dir := initCamera(t, "SN-DASH", "body4")
	out, errOut, code := runMain(t, Env{}, "camera", "run", "-state", dir, "-ui=headless", "-test-seed", rfcB32,
		"-clock", "2009-02-13T23:31:30Z", "-script", "double:select,press:voldown,press:select")
	if code != 0 || !strings.Contains(out, wantCode(t)) {
		t.Fatalf("single-dash flags: exit %d, stdout %s stderr %s", code, out, errOut)
	}
}

// TestVersion: --version prints the version the binary was linked with
// (the Makefile's -ldflags -X of internal/version.Version), and a version of some kind
// without one.
func TestVersion(t *testing.T) {
	if out, _, code := runMain(t, Env{Version: "v1.2.3-4-gabcdef"}, "--version"); code != 0 || out != "camotp v1.2.3-4-gabcdef\n" {
		t.Fatalf("--version with Env.Version: exit %d %q", code, out)
	}
	if out, _, code := runMain(t, Env{}, "--version"); code != 0 || !regexp.MustCompile(`^camotp \S+\n$`).MatchString(out) || strings.Contains(out, "(devel)") {
		t.Fatalf("--version from build info: exit %d %q", code, out)
	}
	bin := filepath.Join(t.TempDir(), "camotp")
	if out, err := exec.Command("go", "build", "-ldflags", "-X github.com/camotp/camotp/internal/version.Version=v9.9.9-readme", "-o", bin, "github.com/camotp/camotp/cmd/camotp").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || string(out) != "camotp v9.9.9-readme\n" {
		t.Fatalf("linked version: %q %v", out, err)
	}
}

// TestCompletion: cobra's bash and zsh completion scripts, and the
// completions they ask the binary for.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		out, errOut, code := runMain(t, Env{}, "completion", shell)
		if code != 0 || !strings.Contains(out, "camotp") || !strings.Contains(out, "__complete") {
			t.Fatalf("completion %s: exit %d, stderr %s\n%.300s", shell, code, errOut, out)
		}
	}
	out, _, code := runMain(t, Env{}, "__complete", "admin", "camera", "")
	for _, sub := range helpGroups["admin camera"] {
		if code != 0 || !strings.Contains(out, "\n"+sub+"\t") && !strings.HasPrefix(out, sub+"\t") {
			t.Fatalf("completing 'admin camera ': exit %d, no %q:\n%s", code, sub, out)
		}
	}
}
