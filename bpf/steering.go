package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/govs/govs/bpf/percpu"
	"github.com/govs/govs/inet"
)

// Endpoint is an address, port and IP protocol number, as the steering maps
// match them. Port is in host byte order; 0 stands for every port.
type Endpoint struct {
	Addr  inet.Addr
	Port  uint16
	Proto uint8
}

func (e Endpoint) String() string {
	return fmt.Sprintf("%s/%d/%d", e.Addr, e.Port, e.Proto)
}

func (e Endpoint) key() (steerEndpointKey, error) {
	if e.Addr.IsZero() {
		return steerEndpointKey{}, fmt.Errorf("endpoint %v: no address", e)
	}
	if e.Proto == 0 {
		return steerEndpointKey{}, fmt.Errorf("endpoint %v: no protocol", e)
	}
	// The key holds the port in network byte order, as it is on the wire.
	return steerEndpointKey{
		Addr:  [16]uint8(e.Addr),
		Port:  netPort(e.Port),
		Proto: e.Proto,
	}, nil
}

// AddOwnAddr marks addr as one of the director's own addresses: traffic
// from a real server to it is the director's own (a health check), not a
// reply to translate. Full-NAT local addresses must not be added.
func (s *Steering) AddOwnAddr(addr inet.Addr) error {
	if addr.IsZero() {
		return errors.New("own address: zero address")
	}
	if err := s.objs.OwnAddrs.Update(steerAddrKey{Addr: addr}, uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("own address %s: %w", addr, err)
	}
	return nil
}

// DelOwnAddr forgets an own address.
func (s *Steering) DelOwnAddr(addr inet.Addr) error {
	if err := s.objs.OwnAddrs.Delete(steerAddrKey{Addr: addr}); err != nil {
		return fmt.Errorf("own address %s: %w", addr, err)
	}
	return nil
}

// Counters are the steering program's packet counters summed over CPUs.
// Every packet arriving on a served interface adds one to exactly one of
// SteeredVIP, SteeredReply, SteeredICMP, Passed, Malformed, FragPassed,
// FastForwarded, FastAborted, SynCookiesSent, SynThrottled, SynSpread,
// SteerMetered, SteeredFrag and ForeignMAC.
type Counters struct {
	SteeredVIP     uint64 // to a virtual service
	SteeredReply   uint64 // from a real server: NAT or full-NAT reply
	SteeredICMP    uint64 // ICMP error about a steered connection
	Passed         uint64 // not load balancer traffic: to the kernel
	Malformed      uint64 // truncated or inconsistent: to the kernel
	FragPassed     uint64 // non-first fragment (no ports): to the kernel
	UnknownIface   uint64 // arrived on an interface without a base slot: to the kernel
	RedirectFailed uint64 // steered, but no socket in the slot (no director process runs): dropped
	FastForwarded  uint64 // rewritten and sent by the XDP fast path
	FastAborted    uint64 // taken by the fast path, then a helper failed: dropped
	SynCookiesSent uint64 // a SYN to a service answered with a SYN-ACK cookie (sent back out of its interface)
	SynThrottled   uint64 // a SYN over the SYN rate limit to a service without cookies: dropped
	SynSpread      uint64 // a SYN over the SYN rate limit to a DR/TUN service, forwarded by its Maglev table (spread.go)
	SteerMetered   uint64 // a new flow's packet over its RX queue's steering meter (SetSteerLimit): dropped
	SteeredFrag    uint64 // a later fragment to a VIP address or from a real server's (fragsteer.go)
	ForeignMAC     uint64 // unicast to another host's MAC (a promiscuous interface, Interface.MAC): to the kernel
	// FastCsumFinished counts, besides, the packets of FastForwarded,
	// SynSpread and FastAborted whose unfinished TCP/UDP checksum (a
	// sender with TX checksum offload) the program finished.
	FastCsumFinished uint64
}

// Steering owns the loaded steering program and its maps.
type Steering struct {
	objs     steerObjects
	attached attachments

	mu       sync.Mutex
	realRefs map[Endpoint]int
	fragRefs map[inet.Addr]fragRef // frag_addrs' reference counts (fragsteer.go)
	// The marks trie's entries and the SYN flags of fwmark services (marks.go).
	markPrefixes map[netip.Prefix]*steerMarkValue
	markFlags    map[uint32]uint32

	fastMu sync.Mutex    // serialises changes of fast_cfg
	gen    atomic.Uint32 // fast_cfg.gen: the generation of valid flow entries

	pinPath string // SteeringOptions.PinPath
	adopted bool   // the state maps were a previous process's (Adopted)
	// moving4: the IPv4 entries of a previous govsd without flows4 are
	// being moved there from flows (moveFlows4), and its program may
	// still read them in flows.
	moving4 atomic.Bool
	moveMu  sync.Mutex // serialises finishMove4
}

// SteeringOptions size the steering program's maps.
type SteeringOptions struct {
	// MaxFlows bounds the XDP fast path's flow entries (two per
	// connection that is forwarded both ways) of each family: IPv4 and
	// IPv6 flows have a map each, of this size; 0 keeps the default, 2M.
	// The maps allocate entries as they are added.
	MaxFlows int
	// PinPath is a directory on a BPF filesystem (created if missing)
	// where the state maps (flows, flows4, fast_cfg, syncookie_keys) are
	// pinned, and reused when a previous process pinned them (Adopted),
	// and where AttachPinned pins the XDP links. "" pins nothing:
	// everything goes with the process.
	PinPath string
}

// LoadSteering loads the steering program and creates its maps with the
// default sizes. Nothing is attached yet.
func LoadSteering() (*Steering, error) { return LoadSteeringWith(SteeringOptions{}) }

// LoadSteeringWith loads the steering program with maps sized by opts. With
// a PinPath, the state maps pinned there are reused (a pinned map this
// build would create otherwise is an error wrapping ErrPinnedIncompatible)
// and FlowGeneration continues from their generation.
func LoadSteeringWith(opts SteeringOptions) (*Steering, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	spec, err := loadSteer()
	if err != nil {
		return nil, loadError("steering", err)
	}
	if opts.MaxFlows > 0 {
		// Sized alike: either family may carry all the connections.
		for _, name := range []string{steerMapFlows, steerMapFlows4} {
			spec.Maps[name].MaxEntries = uint32(min(opts.MaxFlows, 1<<30))
		}
	}
	s := &Steering{realRefs: make(map[Endpoint]int), pinPath: opts.PinPath}
	var (
		copts *ebpf.CollectionOptions
		move4 bool
	)
	if opts.PinPath != "" {
		if err := preparePinPath(opts.PinPath); err != nil {
			return nil, err
		}
		if s.adopted, move4, err = adoptStateMaps(spec, opts.PinPath); err != nil {
			return nil, err
		}
		copts = &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}}
	}
	if err := spec.LoadAndAssign(&s.objs, copts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			// Pinned in between by another process: as adoptStateMaps says.
			return nil, fmt.Errorf("%w: %w (run govsd --cleanup to remove the old state)", ErrPinnedIncompatible, err)
		}
		return nil, loadError("steering", err)
	}
	var cfg steerFastConfig
	if err := s.objs.FastCfg.Lookup(uint32(0), &cfg); err != nil {
		s.objs.Close()
		return nil, fmt.Errorf("read fast path config: %w", err)
	}
	s.gen.Store(cfg.Gen)
	if move4 {
		if err := s.moveFlows4(); err != nil {
			s.objs.Close()
			return nil, err
		}
	}
	return s, nil
}

// Program returns the steering XDP program.
func (s *Steering) Program() *ebpf.Program { return s.objs.Steer }

// Attach attaches the program to an interface and returns the mode in use,
// native or generic (ModeAuto tries native first). The link is not pinned
// (AttachPinned pins it): it goes with the process.
func (s *Steering) Attach(ifindex int, mode Mode) (Mode, error) {
	return s.attached.attach(s.objs.Steer, ifindex, mode)
}

// Detach removes the program from an interface it was attached to, also
// through a pinned link (which it unpins).
func (s *Steering) Detach(ifindex int) error {
	return s.attached.detach(ifindex)
}

// Interface is how the program serves one interface.
type Interface struct {
	// Base is the first xsks slot of its queues: a packet steered from RX
	// queue q goes to the socket in slot Base+q.
	Base uint32
	// MAC is the interface's own address. A frame unicast to another MAC
	// (the interface is promiscuous) passes to the kernel untouched
	// (Counters.ForeignMAC); broadcast and multicast frames are classified.
	MAC [6]byte
	// AcceptForeignMAC classifies frames whatever their destination MAC,
	// for setups that receive frames for other MACs on purpose (MAC-VLAN,
	// VRRP virtual MACs).
	AcceptForeignMAC bool
}

// SetInterface makes the program serve an interface, or updates how (a new
// MAC). Packets on interfaces not set pass to the kernel.
func (s *Steering) SetInterface(ifindex int, ifc Interface) error {
	if ifindex <= 0 {
		return fmt.Errorf("set interface: invalid ifindex %d", ifindex)
	}
	v := steerIfaceInfo{Base: ifc.Base, Mac: ifc.MAC}
	if ifc.AcceptForeignMAC {
		v.Flags |= ifaceAcceptForeignMAC
	}
	if err := s.objs.Ifaces.Update(uint32(ifindex), &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("set interface ifindex %d (base slot %d): %w", ifindex, ifc.Base, err)
	}
	return nil
}

// ifaceAcceptForeignMAC is IFACE_ACCEPT_FOREIGN_MAC (include/maps.h).
const ifaceAcceptForeignMAC = 0x1

// DelInterface stops serving an interface: its packets pass to the kernel.
func (s *Steering) DelInterface(ifindex int) error {
	if err := s.objs.Ifaces.Delete(uint32(ifindex)); err != nil {
		return fmt.Errorf("delete ifindex %d: %w", ifindex, err)
	}
	return nil
}

// RegisterSocket puts a bound AF_XDP socket in a slot of the xsks map.
func (s *Steering) RegisterSocket(slot uint32, fd int) error {
	if fd < 0 {
		return fmt.Errorf("register socket in slot %d: invalid fd %d", slot, fd)
	}
	if err := s.objs.Xsks.Update(slot, uint32(fd), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("register socket fd %d in slot %d: %w", fd, slot, err)
	}
	return nil
}

// UnregisterSocket empties a slot; its steered packets are then dropped
// (Counters.RedirectFailed), SYNs to VIPSynProxyCapable services answered
// with cookies. Closing the socket empties it too.
func (s *Steering) UnregisterSocket(slot uint32) error {
	if err := s.objs.Xsks.Delete(slot); err != nil {
		return fmt.Errorf("unregister socket in slot %d: %w", slot, err)
	}
	return nil
}

// AddVIP steers traffic to e (to every port of e.Proto when e.Port is 0) to
// the workers. Adding an existing endpoint updates its service id and keeps
// its VIPFlags (SetVIPFlags), so that reapplying the services does not
// disengage the SYN defence; a new endpoint starts without flags.
func (s *Steering) AddVIP(e Endpoint, serviceID uint32) error {
	key, err := e.key()
	if err != nil {
		return fmt.Errorf("add vip: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var value steerEndpointValue
	err = s.objs.Vips.Lookup(&key, &value)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("add vip %v: %w", e, err)
	}
	isNew := err != nil
	value.ServiceId = serviceID
	if err := s.objs.Vips.Update(&key, &value, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("add vip %v: %w", e, err)
	}
	if isNew {
		return s.fragAddrRef(e.Addr, 1, 0)
	}
	return nil
}

// DelVIP stops steering traffic to e.
func (s *Steering) DelVIP(e Endpoint) error {
	key, err := e.key()
	if err != nil {
		return fmt.Errorf("delete vip: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.objs.Vips.Delete(&key); err != nil {
		return fmt.Errorf("delete vip %v: %w", e, err)
	}
	return s.fragAddrRef(e.Addr, -1, 0)
}

// AddReal steers traffic from e, a real server of a NAT or full-NAT
// service, to the workers. Calls are reference counted, since several
// services may share a real server: e stays until DelReal has been called
// as often as AddReal.
func (s *Steering) AddReal(e Endpoint) error {
	key, err := e.key()
	if err != nil {
		return fmt.Errorf("add real: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.realRefs[e] == 0 {
		if err := s.objs.Reals.Update(&key, uint32(0), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("add real %v: %w", e, err)
		}
		if err := s.fragAddrRef(e.Addr, 0, 1); err != nil {
			s.objs.Reals.Delete(&key)
			return err
		}
	}
	s.realRefs[e]++
	return nil
}

// DelReal drops one reference to e, and the map entry with the last one.
func (s *Steering) DelReal(e Endpoint) error {
	key, err := e.key()
	if err != nil {
		return fmt.Errorf("delete real: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	refs := s.realRefs[e]
	if refs == 0 {
		return fmt.Errorf("delete real %v: %w", e, ebpf.ErrKeyNotExist)
	}
	if refs > 1 {
		s.realRefs[e] = refs - 1
		return nil
	}
	if err := s.objs.Reals.Delete(&key); err != nil {
		return fmt.Errorf("delete real %v: %w", e, err)
	}
	delete(s.realRefs, e)
	return s.fragAddrRef(e.Addr, 0, -1)
}

// Counters returns the packet counters summed over all CPUs.
func (s *Steering) Counters() (Counters, error) {
	r := percpu.NewReader[steerCounterId](s.objs.Counters)
	c := Counters{
		SteeredVIP:       r.Sum(steerCounterIdSteeredVip),
		SteeredReply:     r.Sum(steerCounterIdSteeredReply),
		SteeredICMP:      r.Sum(steerCounterIdSteeredIcmp),
		Passed:           r.Sum(steerCounterIdPassed),
		Malformed:        r.Sum(steerCounterIdMalformed),
		FragPassed:       r.Sum(steerCounterIdFragPassed),
		UnknownIface:     r.Sum(steerCounterIdUnknownIface),
		RedirectFailed:   r.Sum(steerCounterIdRedirectFailed),
		FastForwarded:    r.Sum(steerCounterIdFastForwarded),
		FastAborted:      r.Sum(steerCounterIdFastAborted),
		SynCookiesSent:   r.Sum(steerCounterIdSyncookieSent),
		SynThrottled:     r.Sum(steerCounterIdSynThrottled),
		SynSpread:        r.Sum(steerCounterIdSynSpread),
		SteerMetered:     r.Sum(steerCounterIdSteerMetered),
		SteeredFrag:      r.Sum(steerCounterIdSteeredFrag),
		ForeignMAC:       r.Sum(steerCounterIdForeignMac),
		FastCsumFinished: r.Sum(steerCounterIdFastCsumFinished),
	}
	if err := r.Err(); err != nil {
		return Counters{}, fmt.Errorf("steering counters: %w", err)
	}
	return c, nil
}

// Close closes the program's file descriptors: it detaches the program
// from the interfaces attached with Attach and frees the maps no one else
// holds. Pinned links and maps stay (the program keeps running on those
// interfaces, for the next process to adopt) unless Unpin came first.
func (s *Steering) Close() error {
	detachErr := s.attached.detachAll()
	if err := s.objs.Close(); err != nil {
		return errors.Join(detachErr, fmt.Errorf("close steering objects: %w", err))
	}
	return detachErr
}
