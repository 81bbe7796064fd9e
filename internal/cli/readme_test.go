package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camotp/camotp/internal/testenv"
)

// readmeBlock is a shell block of README.md marked for testing: a line
// "<!-- test -->" right before its ```sh fence.
type readmeBlock struct {
	line    int    // README line of the fence
	section string // the "## " heading it is under
	text    string
}

// readmeBlocks returns README's blocks marked for testing, in order.
func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	section, marked := "", false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.TrimSpace(line) == "<!-- test -->":
			marked = true
		case marked && strings.TrimSpace(line) == "```sh":
			cur, marked = &readmeBlock{line: n, section: section}, false
		case marked && strings.TrimSpace(line) != "":
			t.Fatalf("README.md:%d: <!-- test --> is not followed by a ```sh block", n)
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: unterminated ```sh block", cur.line)
	}
	return blocks
}

// netnsShell returns the command that runs a bash script in a network
// namespace of its own (loopback up): the README's commands use the
// default ports 127.0.0.1:8080 and :1883, which are this test's alone
// there, whatever else runs on the machine. It skips the test (fails it
// in CI) where no namespace can be made.
func netnsShell(t *testing.T) []string {
	t.Helper()
	const setup = `ip link set lo up && exec bash "$0"`
	probe := exec.Command("unshare", "--map-root-user", "--net", "sh", "-c", "ip link set lo up")
	if out, err := probe.CombinedOutput(); err != nil {
		msg := fmt.Sprintf("no network namespace for README's commands (unshare --map-root-user --net, ip from iproute2): %v %s", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return []string{"unshare", "--map-root-user", "--net", "bash", "-c", setup}
}

// TestReadmeBlocks runs README's shell blocks marked for testing, in order,
// in one bash as if pasted into a shell at the top of a fresh clone (a
// temp dir whose bin/camotp is the binary under test), each command
// required to succeed; then the background processes the blocks started
// must have been stopped by the last block.
func TestReadmeBlocks(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("README's blocks use curl")
		}
		t.Skip("README's blocks use curl: not installed")
	}
	shell := netnsShell(t)
	blocks := readmeBlocks(t, filepath.Join("..", "..", "README.md"))
	inServer := 0
	for _, b := range blocks {
		if b.section == "Run the server and provision a camera" {
			inServer++
		}
	}
	if inServer < 4 {
		t.Fatalf("README's \"Run the server and provision a camera\" has %d blocks marked <!-- test -->; want its blocks marked", inServer)
	}

	text, clone, pgid := runBlocks(t, shell, "README.md", blocks)

	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^AUTHENTICATOR TEST\nVerification code\n\s+005924$`), // Try the camera, RFC 6238's code
		regexp.MustCompile(`(?m)^ready$`),
		regexp.MustCompile(`(?m)^camera BC4-0002 \(body4\) registered$`),
		regexp.MustCompile(`(?m)^camera BC4-0002: provision version 1 proven; state provisioned$`),
		regexp.MustCompile(`(?m)^camera BC4-0002 assigned to officer1$`),
		regexp.MustCompile(`(?m)^BC4-0002 +body4 +provisioned +1 +officer1 +\S+$`),
		regexp.MustCompile(`(?m)^AUTHENTICATOR\nVerification code\n\s+\d{6}\nExpires in +\d+s$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("README blocks' output lacks %s:\n%s", want, text)
		}
	}
	// The background camera printed its screen, and kept running: it was
	// provisioned after it started, and the last block's kill found it
	// (a kill of a process gone fails the script).
	if log := readFile(clone, ".camotp/camera-BC4-0002.log"); !strings.Contains(log, "READY") {
		t.Errorf("the background camera printed no screen:\n%s", log)
	}
	serveLog := readFile(clone, ".camotp/serve.log")
	if strings.Contains(serveLog, `msg=""`) || strings.Contains(serveLog, "level=WARN") {
		t.Errorf("serve logged warnings or records with no message in README's flow:\n%s", serveLog)
	}
	// The last block stopped what the others started.
	waitGroupGone(t, pgid, "README.md")
}

// waitGroupGone fails t unless the blocks' processes are gone within 30 s
// of the last block.
func waitGroupGone(t *testing.T, pgid int, doc string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("processes of %s's blocks still running 30 s after the last block:\n%s", doc, psGroup(pgid))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runBlocks runs blocks (of doc) in order in one shell, in a fresh
// clone-like directory with the binary under test as bin/camotp, and
// returns their output, the directory and the shell's process group. It
// fails t when a block fails.
func runBlocks(t *testing.T, shell []string, doc string, blocks []readmeBlock) (string, string, int) {
	t.Helper()
	clone := t.TempDir()
	if err := os.Mkdir(filepath.Join(clone, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(clone, "bin", "camotp")); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -eo pipefail\n")
	for i, b := range blocks {
		fmt.Fprintf(&script, "echo '::block %d %s:%d (%s)'\n%s", i+1, doc, b.line, b.section, b.text)
	}
	script.WriteString("echo '::done'\n")
	scriptPath := filepath.Join(t.TempDir(), "blocks.sh")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell[0], append(shell[1:], scriptPath)...)
	cmd.Dir = clone
	cmd.Env = append(cleanEnv(), "HOME="+clone)
	var out testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the blocks' background jobs too
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { stopGroup(pgid) })
	err := cmd.Wait()
	text := out.String()
	if err != nil || !strings.Contains(text, "::done") {
		t.Fatalf("%s blocks failed (%v); the last ::block line says which:\n%s\n.camotp/serve.log:\n%s", doc, err, text, readFile(clone, ".camotp/serve.log"))
	}

	return text, clone, pgid
}

// TestQADocBlocks: docs/qa.md's shell flow, run as written — a server, a
// camera with its control API provisioned and assigned, a sign-in with the
// code the API reads off it, and a camera whose clock is off refused with
// the reason.
func TestQADocBlocks(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("docs/qa.md's blocks use curl")
		}
		t.Skip("docs/qa.md's blocks use curl: not installed")
	}
	shell := netnsShell(t)
	blocks := readmeBlocks(t, filepath.Join("..", "..", "docs", "qa.md"))
	if len(blocks) < 4 {
		t.Fatalf("docs/qa.md has %d blocks marked <!-- test -->", len(blocks))
	}
	text, clone, pgid := runBlocks(t, shell, "docs/qa.md", blocks)
	t.Logf("docs/qa.md's flow, as run:\n%s", text)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ready$`),
		regexp.MustCompile(`(?m)^camera QA-0001: provision version 1 proven; state provisioned$`),
		regexp.MustCompile(`(?m)^"sessionToken"$`),
		regexp.MustCompile(`(?m)^\{"time":"[^"]+","ppm":0\}$`),
		regexp.MustCompile(`"error":"camera clock is off[^"]*"`),
	} {
		if !want.MatchString(text) {
			t.Errorf("docs/qa.md blocks' output lacks %s:\n%s", want, text)
		}
	}
	if log := readFile(clone, ".camotp/camera-QA-0001.log"); !strings.Contains(log, "control API on http://127.0.0.1:8099") {
		t.Errorf("the camera did not say where its control API is:\n%s", log)
	}
	waitGroupGone(t, pgid, "docs/qa.md")
}

// cleanEnv is this process's environment without the variables that
// would point README's commands elsewhere than the fresh clone.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAMOTP_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return env
}

// stopGroup ends what is left of a process group: TERM, then KILL.
func stopGroup(pgid int) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(-pgid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// psGroup lists a process group's processes, for a failure message.
func psGroup(pgid int) string {
	out, err := exec.Command("ps", "-eo", "pgid=,pid=,args=").Output()
	if err != nil {
		return fmt.Sprintf("(ps: %v)", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == fmt.Sprint(pgid) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// readFile is a file's text under dir, or why it could not be read.
func readFile(dir, name string) string {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return "(no " + name + ")"
	}
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(data)
}
