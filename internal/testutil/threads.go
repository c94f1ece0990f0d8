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
	Name string        // its comm (/proc/PID/task/TID/comm)
	CPU  time.Duration // on a CPU, in all (schedstat, nanoseconds)
	// User and System split it: in the process's own code and in the
	// kernel (system calls, and interrupts that hit the thread), from
	// stat's utime and stime, in clock ticks (10 ms).
	User, System time.Duration
}

// clockTick is USER_HZ, the unit of utime and stime: 100 on every Linux
// architecture that Go supports.
const clockTick = 10 * time.Millisecond

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
		if !strings.HasPrefix(strings.TrimSpace(string(comm)), prefix) {
			continue
		}
		th, err := readThread(filepath.Join(dir, e.Name()), tid)
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, th)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].TID < out[j].TID
	})
	return out, nil
}

// ReadThread reads thread tid of process pid again (a kernel thread is
// its own process: pid == tid): a few small reads, for sampling threads
// found once with Threads or KernelThreads.
func ReadThread(pid, tid int) (ThreadCPU, error) {
	return readThread(fmt.Sprintf("/proc/%d/task/%d", pid, tid), tid)
}

func readThread(dir string, tid int) (ThreadCPU, error) {
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return ThreadCPU{}, err
	}
	st, err := os.ReadFile(filepath.Join(dir, "schedstat"))
	if err != nil {
		return ThreadCPU{}, err
	}
	f := strings.Fields(string(st))
	if len(f) == 0 {
		return ThreadCPU{}, fmt.Errorf("%s/schedstat: empty", dir)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return ThreadCPU{}, fmt.Errorf("%s/schedstat: %w", dir, err)
	}
	th := ThreadCPU{TID: tid, Name: strings.TrimSpace(string(comm)), CPU: time.Duration(ns)}
	if stat, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil {
		// pid (comm) state ppid ... utime stime: the fields after the
		// comm, which may hold spaces, start at state (field 3).
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			f := strings.Fields(string(stat[i+1:]))
			if len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				s, _ := strconv.ParseInt(f[12], 10, 64)
				th.User, th.System = time.Duration(u)*clockTick, time.Duration(s)*clockTick
			}
		}
	}
	return th, nil
}
