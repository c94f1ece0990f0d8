// Package percpu reads the counters of per-CPU BPF array maps: the packet
// counters every XDP program of govs keeps (the director's steering and
// decap programs, and govs-pktgen's generator, sink and reply filter).
//
// A program counts in a per-CPU array so that no two CPUs write the same
// cache line (bpf/include/percpu_counters.h declares such a map); the
// kernel hands back one value per possible CPU, and a counter's value is
// their sum. The package is apart from bpf so that pktgen reads its own
// counters without linking the director's programs.
package percpu
