package dist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.0": "1.2.0", "v1.2.0": "1.2.0", "v1.2.0-3-g0d892bf": "1.2.0-3-g0d892bf",
		"0d892bf": "0.0.0+0d892bf", "0d892bf-dirty": "0.0.0+0d892bf-dirty", "dev": "0.0.0+dev", "a/b c": "0.0.0+a.b.c",
		"9abc": "0.0.0+9abc", "123": "0.0.0+123", "2.0": "2.0",
	} {
		if got := DebVersion(in); got != want {
			t.Errorf("DebVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// run runs a command and fails t with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The release build for this machine's architecture: a static binary
// with the version stamped, a .deb whose contents and scripts are as
// documented, and SHA256SUMS that sha256sum checks. As root with dpkg,
// the .deb is installed on this machine: `camotp --version`, the unit
// passes systemd-analyze verify, the settings file is 0640 root:camotp;
// then removed (dpkg -r), leaving the data directory and the settings in
// place; the test purges what it installed at the end.
func TestDistInstallRemove(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	const version = "v0.9.1-test"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	files, err := Build(ctx, Config{Root: root, Out: out, Version: version, VersionVar: VersionVar, Arches: []string{runtime.GOARCH}})
	if err != nil {
		t.Fatal(err)
	}
	if len(files.Binaries) != 1 || len(files.Debs) != 1 {
		t.Fatalf("files %+v", files)
	}
	bin, deb := files.Binaries[0], files.Debs[0]
	if v := run(t, bin, "--version"); !strings.Contains(v, version) {
		t.Fatalf("%s --version: %q, want %s", bin, v, version)
	}
	if info := run(t, "file", bin); !strings.Contains(info, "statically linked") {
		t.Fatalf("the binary is not static: %s", info)
	}
	sums, err := os.ReadFile(files.Sums)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bin, deb} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(data)
		if !strings.Contains(string(sums), hex.EncodeToString(h[:])+"  "+filepath.Base(p)+"\n") {
			t.Fatalf("SHA256SUMS lacks %s:\n%s", filepath.Base(p), sums)
		}
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("no dpkg-deb on this machine: the package is not inspected or installed")
	}
	contents := run(t, "dpkg-deb", "--contents", deb)
	for _, want := range []string{"-rwxr-xr-x root/root", "./usr/bin/camotp", "./lib/systemd/system/camotp.service", "-rw-r----- root/root", "./etc/camotp/camotp.env", "./etc/camotp/camotp.toml"} {
		if !strings.Contains(contents, want) {
			t.Fatalf("package contents lack %q:\n%s", want, contents)
		}
	}
	fields := run(t, "dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Depends")
	if !strings.Contains(fields, "Version: 0.9.1-test\n") || !strings.Contains(fields, "Architecture: "+runtime.GOARCH) {
		t.Fatalf("package fields:\n%s", fields)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: the package is not installed")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg: the package is not installed")
	}
	unlock := lockDpkgTests(t)
	defer unlock()
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "camotp").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Skipf("a camotp package is installed on this machine (%s): not touching it", out)
	}
	// The test removes what it installs, data included: never on a machine
	// that has camotp's data, settings or user from anything else.
	for _, p := range []string{"/var/lib/camotp", "/etc/camotp"} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists on this machine: not installing over it", p)
		}
	}
	if exec.Command("id", "camotp").Run() == nil {
		t.Skip("a user camotp exists on this machine: not installing over it")
	}
	t.Cleanup(func() {
		exec.Command("dpkg", "--purge", "camotp").Run()
		os.RemoveAll("/var/lib/camotp")
		exec.Command("deluser", "--system", "camotp").Run()
		exec.Command("delgroup", "--system", "camotp").Run()
	})
	run(t, "dpkg", "-i", deb)
	if v := run(t, "/usr/bin/camotp", "--version"); !strings.Contains(v, version) {
		t.Fatalf("installed camotp --version: %q", v)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		run(t, "systemd-analyze", "verify", "/lib/systemd/system/camotp.service")
	}
	run(t, "id", "camotp")
	for _, f := range []string{"/etc/camotp/camotp.env", "/etc/camotp/camotp.toml"} {
		if st := run(t, "stat", "-c", "%a %U:%G", f); strings.TrimSpace(st) != "640 root:camotp" {
			t.Fatalf("%s: %s, want 640 root:camotp", f, st)
		}
	}
	// The service user can read its settings file (serve --config).
	if _, err := exec.LookPath("runuser"); err == nil {
		run(t, "runuser", "-u", "camotp", "--", "test", "-r", "/etc/camotp/camotp.toml")
	}
	// Data the service wrote stays when the package goes.
	if err := os.MkdirAll("/var/lib/camotp", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/var/lib/camotp/camotp.db", []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg", "-r", "camotp")
	for _, gone := range []string{"/usr/bin/camotp", "/lib/systemd/system/camotp.service"} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after dpkg -r: %v", gone, err)
		}
	}
	for _, kept := range []string{"/var/lib/camotp/camotp.db", "/etc/camotp/camotp.env", "/etc/camotp/camotp.toml"} {
		if _, err := os.Stat(kept); err != nil {
			t.Fatalf("%s after dpkg -r: %v (data and settings stay until purge)", kept, err)
		}
	}
}

// lockDpkgTests serializes this test across processes (two test runs on
// one machine would fight over dpkg's lock and the one package name).
func lockDpkgTests(t *testing.T) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "camotp-dist-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
}
