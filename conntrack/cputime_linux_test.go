package conntrack

import "syscall"

// threadCPU returns the CPU time the calling thread has used, so that
// benchmarks on a busy machine can report the work they did rather than the
// time they waited for a core.
func threadCPU() (ns int64, ok bool) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
