package daemon

import "github.com/govs/govs/dataplane"

// fragCounters are the workers' fragment counters (dataplane/frag.go), by
// the names govsadm --counters shows; Prometheus has them as events of
// govs_datapath_packets_total. The XDP program's steered_frag and
// frag_passed are with the other XDP verdicts (xdpCounters).
func fragCounters(k dataplane.Counters) map[string]uint64 {
	return map[string]uint64{
		"frag_forwarded":  k.FragForwarded,
		"frag_held":       k.FragHeld,
		"frag_timed_out":  k.FragTimedOut,
		"frag_table_full": k.FragTableFull,
	}
}
