package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/bpf/percpu"
)

// The SYN defence of the steering program (include/synproxy.h): a TCP SYN
// to a virtual service is counted per service and then, by the service's
// VIPFlags and a per-CPU token bucket, answered with a SYN cookie (redirected back out of its interface),
// admitted to the workers or dropped. The workers check the cookies with
// packet.CheckSynCookie, with the key given to SetSynCookieKey.

// VIPFlags are the SYN defence's settings of a virtual service endpoint.
type VIPFlags uint32

const (
	// VIPSynProxyCapable lets the program answer the service's SYNs with
	// cookies once they pass the SYN rate limit (SetSynLimit), instead of
	// dropping them: a TCP service forwarding by NAT or full-NAT, whose
	// syn_proxy mode is auto or on.
	VIPSynProxyCapable VIPFlags = 0x1
	// VIPSynProxyOn answers every SYN of the service with a cookie: the
	// defence is engaged (mode on, or auto under SYN pressure).
	VIPSynProxyOn VIPFlags = 0x2
)

// Limits of SetSynLimit: burst * 1e9 must fit the program's 64-bit credit.
const maxSynLimit = 1 << 30

// synServices is SYN_SERVICES in maps.h: service ids with a SYN counter.
const synServices = 16384

// SetVIPFlags sets the SYN defence flags of virtual service endpoint e,
// which must have been added with AddVIP (an error wrapping
// ebpf.ErrKeyNotExist otherwise). AddVIP keeps the flags of an existing
// endpoint, so that a service update does not disengage the defence.
func (s *Steering) SetVIPFlags(e Endpoint, f VIPFlags) error {
	key, err := e.key()
	if err != nil {
		return fmt.Errorf("set vip flags: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var value steerEndpointValue
	if err := s.objs.Vips.Lookup(&key, &value); err != nil {
		return fmt.Errorf("set flags of vip %v: %w", e, err)
	}
	value.Flags = uint32(f)
	if err := s.objs.Vips.Update(&key, &value, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("set flags of vip %v: %w", e, err)
	}
	return nil
}

// VIPFlags returns the SYN defence flags of virtual service endpoint e.
func (s *Steering) VIPFlags(e Endpoint) (VIPFlags, error) {
	key, err := e.key()
	if err != nil {
		return 0, fmt.Errorf("vip flags: %w", err)
	}
	var value steerEndpointValue
	if err := s.objs.Vips.Lookup(&key, &value); err != nil {
		return 0, fmt.Errorf("flags of vip %v: %w", e, err)
	}
	return VIPFlags(value.Flags), nil
}

// SetSynCookieKey sets the secret of the SYN cookies the program mints
// (packet.SynCookieKey). The director draws it at start; until then the
// key is all zeros, which makes cookies forgeable.
func (s *Steering) SetSynCookieKey(k [16]byte) error {
	v := steerSyncookieKey{K0: binary.LittleEndian.Uint64(k[0:8]), K1: binary.LittleEndian.Uint64(k[8:16])}
	if err := s.objs.SyncookieKeys.Update(uint32(0), &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("set syn cookie key: %w", err)
	}
	return nil
}

// SetSynProxyMSS sets the MSS the program's SYN-ACKs announce over IPv4 and
// IPv6; 0 keeps the default, 1460 and 1440. The real servers' path must
// take segments of that size, since the client's MSS toward the director
// is what it will send them. A value below 536 is refused (RFC 9293's
// minimum for IPv4).
func (s *Steering) SetSynProxyMSS(mss4, mss6 uint16) error {
	for _, m := range []uint16{mss4, mss6} {
		if m != 0 && m < 536 {
			return fmt.Errorf("set syn proxy mss: %d is below 536", m)
		}
	}
	return s.updateSynConfig(func(c *steerSynConfig) { c.Mss4, c.Mss6 = mss4, mss6 })
}

// SetSynLimit sets the rate at which each CPU admits SYNs (to services whose
// SYNs are not all answered with cookies) to the workers, and the depth of
// its token bucket; perSecond 0 lifts the limit. A SYN over the limit is
// answered with a cookie when its service is VIPSynProxyCapable and dropped
// otherwise (Counters.SynThrottled). burst 0 means one second's worth,
// perSecond. Both are at most 2^30.
func (s *Steering) SetSynLimit(perSecond, burst uint64) error {
	if perSecond > maxSynLimit || burst > maxSynLimit {
		return fmt.Errorf("set syn limit %d/s burst %d: above %d", perSecond, burst, maxSynLimit)
	}
	if burst == 0 {
		burst = perSecond
	}
	return s.updateSynConfig(func(c *steerSynConfig) { c.Rate, c.Burst = perSecond, burst })
}

// updateSynConfig changes syn_cfg under s.mu. The program may read the
// entry while it changes: a mix of old and new settings for a packet or
// two is harmless.
func (s *Steering) updateSynConfig(change func(*steerSynConfig)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c steerSynConfig
	if err := s.objs.SynCfg.Lookup(uint32(0), &c); err != nil {
		return fmt.Errorf("read syn config: %w", err)
	}
	change(&c)
	if err := s.objs.SynCfg.Update(uint32(0), &c, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write syn config: %w", err)
	}
	return nil
}

// ServiceSYNs returns how many TCP SYNs to service serviceID the program
// has seen, summed over CPUs: the control plane's SYN rate is the
// difference of two readings. Only ids below 16384 are counted.
func (s *Steering) ServiceSYNs(serviceID uint32) (uint64, error) {
	if serviceID >= synServices {
		return 0, fmt.Errorf("service %d syns: %w", serviceID, errServiceID)
	}
	n, err := percpu.Sum(s.objs.ServiceSyns, serviceID)
	if err != nil {
		return 0, fmt.Errorf("service %d syns: %w", serviceID, err)
	}
	return n, nil
}

var errServiceID = errors.New("service id out of the counted range (below 16384)")
