package testutil

import (
	"os"
	"testing"
)

// IsRoot reports whether the process runs as root, which privileged tests
// (network namespaces, BPF programs, XDP, AF_XDP) need.
func IsRoot() bool { return os.Geteuid() == 0 }

// RequireRoot skips the test unless it runs as root; why says what the test
// needs root for, so that the skip explains itself in -v output.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if !IsRoot() {
		t.Skip("needs root: " + why)
	}
}
