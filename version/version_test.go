package version

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	saved := Version
	defer func() { Version = saved }()
	Version = "v1.2.3"
	if got := String(); got != "v1.2.3" {
		t.Errorf("stamped: %q", got)
	}
	Version = ""
	// A test binary records no VCS revision: the fallback.
	if got := String(); got != "devel" && !strings.HasPrefix(got, "devel+") && !strings.HasPrefix(got, "v") {
		t.Errorf("unstamped: %q", got)
	}
	if Go() == "" || strings.HasPrefix(Go(), "go") {
		t.Errorf("Go() = %q", Go())
	}
}
