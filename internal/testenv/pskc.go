package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// PythonPSKC returns a Python 3 interpreter that imports Debian's
// python3-pskc (python-pskc 1.2, another PSKC implementation). Debian's
// /usr/bin/python3 is tried before the one on PATH: the package installs
// into the system interpreter only. Without it the test is skipped,
// saying how to install it, except under CI=true where it fails: CI
// installs the package (.ci/run).
func PythonPSKC(tb testing.TB) string {
	tb.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import pskc").Run() == nil {
			return path
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatal("python3-pskc is not installed, but CI=true and CI must test against it (.ci/run installs the Debian package python3-pskc)")
	}
	tb.Skip("python3-pskc not installed (Debian package python3-pskc: apt-get install -y python3-pskc); CI installs it")
	return ""
}
