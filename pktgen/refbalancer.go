package pktgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

// RefBalancerMaxReals is how many real servers a RefBalancer balances at most.
const RefBalancerMaxReals = 8

// RefBalancerReal is one real server of a RefBalancer.
type RefBalancerReal struct {
	Addr netip.AddrPort   // IPv4 address and port the VIP's packets are rewritten to
	MAC  net.HardwareAddr // next hop toward it on the egress interface
}

// RefBalancerConfig configures a RefBalancer.
type RefBalancerConfig struct {
	// VIP is the IPv4 virtual address and port balanced (UDP and TCP).
	VIP   netip.AddrPort
	Reals []RefBalancerReal // 1 to RefBalancerMaxReals
	// EgressIfindex is the interface rewritten frames are redirected to;
	// EgressMAC its MAC address, their new source.
	EgressIfindex int
	EgressMAC     net.HardwareAddr
}

// RefBalancer owns a loaded refbalancer program: a minimal stateless XDP
// load balancer, the reference that `make bench` sets the load balancers
// against. An IPv4 UDP or TCP packet to the VIP (not a fragment) goes to
// real server hash(source address, source port) % len(Reals) (see pick in
// refbalancer.c): its destination address and port rewritten (IP and L4
// checksums fixed incrementally; a UDP checksum of 0 stays 0), its MACs set
// to the real server's next hop and the egress interface's, and redirected
// to the egress interface. Everything else passes to the kernel. No state,
// no connection tracking, no clock reads; replies are not handled.
type RefBalancer struct {
	objs refbalancerObjects

	links xdpLinks
}

// LoadRefBalancer checks cfg and loads the program configured with it.
func LoadRefBalancer(cfg RefBalancerConfig) (*RefBalancer, error) {
	settings, reals, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	b := &RefBalancer{links: newXDPLinks("refbalancer")}
	if err := loadRefbalancerObjects(&b.objs, nil); err != nil {
		return nil, loadError("refbalancer", err)
	}
	for i, r := range reals {
		if err := b.objs.RefbalancerReals.Update(uint32(i), &r, ebpf.UpdateAny); err != nil {
			b.objs.Close()
			return nil, fmt.Errorf("write refbalancer real %d: %w", i, err)
		}
	}
	if err := b.objs.RefbalancerSettings.Update(uint32(0), &settings, ebpf.UpdateAny); err != nil {
		b.objs.Close()
		return nil, fmt.Errorf("write refbalancer settings: %w", err)
	}
	return b, nil
}

// settings validates cfg and translates it for the program.
func (cfg RefBalancerConfig) settings() (refbalancerRefbalancerConfig, []refbalancerRefbalancerReal, error) {
	var s refbalancerRefbalancerConfig
	if !cfg.VIP.Addr().Is4() {
		return s, nil, fmt.Errorf("refbalancer: VIP %v is not IPv4", cfg.VIP)
	}
	if len(cfg.Reals) == 0 || len(cfg.Reals) > RefBalancerMaxReals {
		return s, nil, fmt.Errorf("refbalancer: %d real servers, want 1 to %d", len(cfg.Reals), RefBalancerMaxReals)
	}
	if cfg.EgressIfindex <= 0 || len(cfg.EgressMAC) != 6 {
		return s, nil, errors.New("refbalancer: the egress interface's index and MAC address are needed")
	}
	s.Vip, s.Vport = be32Mem(cfg.VIP.Addr()), htons(cfg.VIP.Port())
	s.NumReals = uint16(len(cfg.Reals))
	s.EgressIfindex = uint32(cfg.EgressIfindex)
	copy(s.EgressMac[:], cfg.EgressMAC)
	reals := make([]refbalancerRefbalancerReal, len(cfg.Reals))
	for i, r := range cfg.Reals {
		if !r.Addr.Addr().Is4() || len(r.MAC) != 6 {
			return s, nil, fmt.Errorf("refbalancer: real server %d (%v, MAC %v): want an IPv4 address and a MAC address", i, r.Addr, r.MAC)
		}
		reals[i].Addr, reals[i].Port = be32Mem(r.Addr.Addr()), htons(r.Addr.Port())
		copy(reals[i].Mac[:], r.MAC)
	}
	return s, reals, nil
}

// be32Mem returns the uint32 whose in-memory bytes on this (little-endian)
// host are IPv4 address a in network order, as the program's __be32 fields
// want.
func be32Mem(a netip.Addr) uint32 {
	b := a.As4()
	return binary.LittleEndian.Uint32(b[:])
}

// Program returns the refbalancer XDP program.
func (b *RefBalancer) Program() *ebpf.Program { return b.objs.Refbalancer }

// Attach attaches the balancer to an interface of the calling thread's
// network namespace, in native (driver) mode. The egress interface must be
// in the same namespace.
func (b *RefBalancer) Attach(ifindex int) error { return b.links.attach(b.objs.Refbalancer, ifindex) }

// Close detaches the balancer from every interface and frees it.
func (b *RefBalancer) Close() error { return b.links.close(&b.objs) }
