package pktgen

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/govs/govs/bpf/percpu"
)

// SinkCounters are the sink program's counters summed over CPUs.
type SinkCounters struct {
	UDP    uint64 // UDP over IPv4 or IPv6
	Tunnel uint64 // IP-in-IP (LVS-TUN packets, still encapsulated)
	Passed uint64 // everything else, passed to the kernel
}

// Sink owns a loaded sink program: attached to the receiving interfaces of
// a test or a benchmark, it counts UDP and IP-in-IP packets and drops them
// (or passes them on), like a real server that discards at line rate.
type Sink struct {
	objs sinkObjects

	links xdpLinks
}

// LoadSink loads the sink program. With pass, counted packets go on to the
// kernel instead of being dropped.
func LoadSink(pass bool) (*Sink, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	s := &Sink{links: newXDPLinks("sink")}
	if err := loadSinkObjects(&s.objs, nil); err != nil {
		return nil, loadError("sink", err)
	}
	var cfg sinkSinkConfig
	if pass {
		cfg.Pass = 1
	}
	if err := s.objs.SinkSettings.Update(uint32(0), &cfg, ebpf.UpdateAny); err != nil {
		s.objs.Close()
		return nil, fmt.Errorf("write sink settings: %w", err)
	}
	return s, nil
}

// Program returns the sink XDP program.
func (s *Sink) Program() *ebpf.Program { return s.objs.Sink }

// Attach attaches the sink to an interface of the calling thread's network
// namespace, in native (driver) mode: veth has it, and it is the mode that
// receives frames a peer transmits with XDP_TX or XDP_REDIRECT.
func (s *Sink) Attach(ifindex int) error { return s.links.attach(s.objs.Sink, ifindex) }

// Counters returns the counters summed over CPUs.
func (s *Sink) Counters() (SinkCounters, error) {
	r := percpu.NewReader[sinkCounterId](s.objs.SinkCounters)
	c := SinkCounters{
		UDP:    r.Sum(sinkCounterIdSunkUdp),
		Tunnel: r.Sum(sinkCounterIdSunkTunnel),
		Passed: r.Sum(sinkCounterIdPassed),
	}
	if err := r.Err(); err != nil {
		return SinkCounters{}, fmt.Errorf("sink counters: %w", err)
	}
	return c, nil
}

// Close detaches the sink from every interface and frees it.
func (s *Sink) Close() error { return s.links.close(&s.objs) }
