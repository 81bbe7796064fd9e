package qa_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The package works from another module, as a records system's own tests
// use it: testdata/qa-consumer is such a module (its go.mod replaces
// camotp with this tree), and its tests pass.
func TestFromAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs another module's tests")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to build the other module with")
		}
	}
	cmd := exec.Command(goBin, "test", "-count=1", "./...")
	cmd.Dir = filepath.Join("..", "testdata", "qa-consumer")
	// The other module's own settings only: no workspace, no flags of
	// this test run.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in %s: %v (after a dependency change, run go mod tidy there)\n%s", cmd.Dir, err, out)
	}
	if !strings.Contains(string(out), "ok  \texample.com/recordsqa") {
		t.Fatalf("go test in %s did not run the module's tests:\n%s", cmd.Dir, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}
