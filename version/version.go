package version

import (
	"runtime/debug"
	"strings"
)

// Version is stamped at build time: make build sets it from git describe
// (-ldflags "-X github.com/govs/govs/version.Version=..."). Empty, String
// falls back to what the Go toolchain recorded in the binary.
var Version string

// String returns the version: the stamped one; else the module's version
// (go install of a tagged release); else the VCS revision the toolchain
// recorded ("devel+abc123def456", "-dirty" with uncommitted changes);
// else "devel".
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
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
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "devel+" + rev + dirty
}

// Go returns the Go version the binary was built with.
func Go() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return strings.TrimPrefix(bi.GoVersion, "go")
	}
	return "unknown"
}
