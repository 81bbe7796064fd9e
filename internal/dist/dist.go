// Package dist builds camotp's release files (`make dist`): static
// binaries for Linux on amd64 and arm64 with the version stamped, a .deb
// of each made with nfpm (the binary, a hardened systemd unit, the
// settings file /etc/camotp/camotp.env, the service user made by the
// post-install script; see packaging/), and SHA256SUMS of them all.
package dist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

// Config says what to build.
type Config struct {
	// Root is the source tree (holding go.mod and packaging/).
	Root string
	// Out is the directory the files are written to.
	Out string
	// Version is stamped into the binaries (VersionVar) and names the files.
	Version string
	// VersionVar is the string variable -ldflags -X sets to Version.
	VersionVar string
	// Arches are GOARCH values (default amd64 and arm64).
	Arches []string
	// Go is the go command (default: the one of this toolchain).
	Go string
}

// Files are what Build made, as paths in Out.
type Files struct {
	Binaries, Debs []string
	Sums           string
}

// Build builds the binaries, the .debs and SHA256SUMS.
func Build(ctx context.Context, cfg Config) (Files, error) {
	if cfg.Root == "" || cfg.Out == "" || cfg.Version == "" {
		return Files{}, errors.New("dist: Root, Out and Version are required")
	}
	if len(cfg.Arches) == 0 {
		cfg.Arches = []string{"amd64", "arm64"}
	}
	if cfg.Go == "" {
		cfg.Go = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return Files{}, fmt.Errorf("dist: %w", err)
	}
	var out Files
	for _, arch := range cfg.Arches {
		bin, err := buildBinary(ctx, cfg, arch)
		if err != nil {
			return Files{}, err
		}
		deb, err := buildDeb(cfg, arch, bin)
		if err != nil {
			return Files{}, err
		}
		out.Binaries, out.Debs = append(out.Binaries, bin), append(out.Debs, deb)
	}
	sums, err := writeSums(cfg.Out, append(append([]string{}, out.Binaries...), out.Debs...))
	if err != nil {
		return Files{}, err
	}
	out.Sums = sums
	return out, nil
}

// buildBinary builds a static binary for linux/arch with the version set.
func buildBinary(ctx context.Context, cfg Config, arch string) (string, error) {
	bin := filepath.Join(cfg.Out, fmt.Sprintf("camotp-%s-linux-%s", cfg.Version, arch))
	ldflags := "-s -w"
	if cfg.VersionVar != "" {
		ldflags += " -X " + cfg.VersionVar + "=" + cfg.Version
	}
	cmd := exec.CommandContext(ctx, cfg.Go, "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/camotp")
	cmd.Dir = cfg.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("dist: build linux/%s: %w\n%s", arch, err, out)
	}
	return bin, nil
}

// debVersionRE is what a Debian version may not hold; releaseRE is a
// release tag's start (1.2 or v1.2.0).
var (
	debVersionRE = regexp.MustCompile(`[^A-Za-z0-9.+~-]`)
	releaseRE    = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+)+`)
)

// DebVersion makes version a Debian package version: a release tag as it
// is (v1.2.0 → 1.2.0, v1.2.0-3-g0d892bf likewise), anything else — a
// commit such as 0d892bf-dirty — as 0.0.0+version, which sorts before
// every release; characters Debian refuses become dots.
func DebVersion(version string) string {
	v := debVersionRE.ReplaceAllString(version, ".")
	if releaseRE.MatchString(v) {
		return strings.TrimPrefix(v, "v")
	}
	return "0.0.0+" + v
}

// buildDeb packs bin into a .deb for arch with packaging/nfpm.yaml.
func buildDeb(cfg Config, arch, bin string) (string, error) {
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	vars := map[string]string{"VERSION": DebVersion(cfg.Version), "ARCH": arch, "BINARY": absBin}
	conf, err := nfpm.ParseFileWithEnvMapping(filepath.Join(root, "packaging", "nfpm.yaml"), func(k string) string { return vars[k] })
	if err != nil {
		return "", fmt.Errorf("dist: packaging/nfpm.yaml: %w", err)
	}
	info, err := conf.Get("deb")
	if err != nil {
		return "", fmt.Errorf("dist: packaging/nfpm.yaml: %w", err)
	}
	// Paths in nfpm.yaml are relative to the source tree.
	inTree := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	for _, c := range info.Contents {
		c.Source = inTree(c.Source)
	}
	sc := &info.Scripts
	sc.PreInstall, sc.PostInstall, sc.PreRemove, sc.PostRemove = inTree(sc.PreInstall), inTree(sc.PostInstall), inTree(sc.PreRemove), inTree(sc.PostRemove)
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return "", fmt.Errorf("dist: packaging/nfpm.yaml: %w", err)
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	path := filepath.Join(cfg.Out, pkg.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("dist: package %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	return path, nil
}

// writeSums writes SHA256SUMS in dir for files, in the format sha256sum -c
// reads.
func writeSums(dir string, files []string) (string, error) {
	sort.Strings(files)
	var b strings.Builder
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("dist: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("dist: %s: %w", p, err)
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), filepath.Base(p))
	}
	path := filepath.Join(dir, "SHA256SUMS")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	return path, nil
}

// VersionVar is the variable camotp's version is stamped into.
const VersionVar = "github.com/camotp/camotp/internal/version.Version"
