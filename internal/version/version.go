// Package version says which camotp this is.
package version

import "runtime/debug"

// Version is set when the binary is built for release or by make:
// -ldflags "-X github.com/camotp/camotp/internal/version.Version=…".
var Version string

// String is Version when set, else what the build info knows (the module
// version, or the VCS revision with "-dirty" for uncommitted changes),
// else "dev".
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	return rev[:min(len(rev), 12)] + dirty
}
