package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Tool returns the path of the program name, which Debian's package pkg
// installs. Without it the test is skipped, except in CI (CI set), where
// .ci/run installs it and its absence is a failure.
func Tool(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s not installed in CI: .ci/run must install Debian %s", name, pkg)
	}
	tb.Skipf("%s not installed (Debian %s; CI installs it)", name, pkg)
	return ""
}
