package testutil

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestThreads(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	all, err := Threads(os.Getpid(), "")
	if err != nil {
		t.Fatal(err)
	}
	var cpu, ticks time.Duration
	for _, th := range all {
		cpu += th.CPU
		ticks += th.User + th.System
	}
	if len(all) == 0 || cpu < 40*time.Millisecond || ticks == 0 {
		t.Errorf("threads of this process: %+v: want CPU time of at least the 50 ms just spent", all)
	}
	none, err := Threads(os.Getpid(), "no-such-thread-name")
	if err != nil || len(none) != 0 {
		t.Errorf("Threads with an unknown prefix: %v, %v", none, err)
	}
}
