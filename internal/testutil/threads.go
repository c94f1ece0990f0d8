package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ThreadCPU is the CPU time one thread has run, by name.
type ThreadCPU struct {
	TID  int
	Name string // its comm (/proc/PID/task/TID/comm)
	CPU  time.Duration
}

// Threads returns the threads of process pid whose name starts with
// prefix, with the CPU time each has run so far (schedstat: nanoseconds on
// a CPU), sorted by name then thread id.
func Threads(pid int, prefix string) ([]ThreadCPU, error) {
	return threadsUnder(fmt.Sprintf("/proc/%d/task", pid), prefix)
}

// KernelThreads returns the kernel threads (or any processes) whose name
// starts with prefix, with the CPU time each has run, as Threads does.
func KernelThreads(prefix string) ([]ThreadCPU, error) { return threadsUnder("/proc", prefix) }

func threadsUnder(dir, prefix string) ([]ThreadCPU, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("threads: %w", err)
	}
	var out []ThreadCPU
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(dir, e.Name(), "comm"))
		if err != nil {
			continue // gone meanwhile
		}
		name := strings.TrimSpace(string(comm))
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		st, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(st))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("threads: %s/%s/schedstat: %w", dir, e.Name(), err)
		}
		out = append(out, ThreadCPU{TID: tid, Name: name, CPU: time.Duration(ns)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].TID < out[j].TID
	})
	return out, nil
}
