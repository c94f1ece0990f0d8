package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/config"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
	"github.com/govs/govs/version"
)

// service is a virtual service as the operator wants it (from the YAML file
// or govsadm); what the data path runs is derived from it and the health of
// its real servers by effectiveSpecs.
type service struct {
	spec        dataplane.ServiceSpec // configured weights
	checks      []config.HealthCheck  // per real server, parallel to spec.Dests
	onFailure   config.OnFailure
	sorry       *config.SorryServer
	checkViaVIP bool
	// expireQuiescent is expire_quiescent_template: the persistence
	// templates of a server that becomes quiescent are expired.
	expireQuiescent bool
}

func (s *service) key() control.ServiceKey {
	if s.spec.FwMark != 0 {
		return control.ServiceKey{FwMark: s.spec.FwMark}
	}
	return control.ServiceKey{Protocol: s.spec.Proto.Name(), VIP: s.spec.VIP.String(), Port: s.spec.Port}
}

// destKey names a real server of a service for health state.
func destKey(s *dataplane.ServiceSpec, d *dataplane.DestSpec) string {
	return s.Name + "/" + netip.AddrPortFrom(d.Addr, d.Port).String()
}

// servicesFromConfig turns the YAML's services into the daemon's.
func servicesFromConfig(cfg *config.Config) ([]*service, error) {
	specs, err := Specs(cfg)
	if err != nil {
		return nil, err
	}
	out := make([]*service, len(specs))
	for i := range specs {
		cs := &cfg.Services[i]
		s := &service{spec: specs[i], onFailure: cs.OnFailure, sorry: cs.SorryServer, checkViaVIP: cs.CheckViaVIP,
			expireQuiescent: cs.ExpireQuiescentTemplate}
		for j := range cs.RealServers {
			s.checks = append(s.checks, cs.RealServers[j].HealthCheck)
		}
		out[i] = s
	}
	return out, nil
}

// effectiveSpecs applies health: a down server is quiesced (weight 0) or
// left out, per on_failure; with every server down, the sorry server takes
// the service's new connections.
func (d *Daemon) effectiveSpecs() []dataplane.ServiceSpec {
	out := make([]dataplane.ServiceSpec, 0, len(d.services))
	for _, s := range d.services {
		sp := s.spec
		sp.Dests = nil
		anyUp := false
		for i := range s.spec.Dests {
			ds := s.spec.Dests[i]
			if d.isUp(destKey(&s.spec, &ds)) {
				anyUp = true
			} else if s.onFailure == config.OnFailureRemove {
				continue
			} else {
				ds.Weight = 0
			}
			sp.Dests = append(sp.Dests, ds)
		}
		if !anyUp && s.sorry != nil && len(s.spec.Dests) > 0 {
			fwd := sp.Fwd
			sp.Dests = append(sp.Dests, dataplane.DestSpec{Addr: s.sorry.Address, Port: s.sorry.Port, Weight: 1, Fwd: fwd})
		}
		out = append(out, sp)
	}
	return out
}

func (d *Daemon) isUp(key string) bool {
	up, known := d.up[key]
	return up || !known
}

// apply pushes the effective configuration to the data path and the
// routes to BGP, then expires the persistence templates of the servers it
// quiesced. Callers hold d.mu.
func (d *Daemon) apply() error {
	specs := d.effectiveSpecs()
	if err := d.dp.Apply(specs); err != nil {
		return err
	}
	d.syncRoutes()
	d.expireQuiescent(specs)
	return nil
}

// quiescedKey names a real server of a service for expireQuiescent.
type quiescedKey struct {
	fwmark uint32
	vip    netip.Addr
	port   uint16
	proto  lvs.Proto
	dest   netip.AddrPort
}

// expireQuiescent expires, as IPVS's expire_quiescent_template does, the
// persistence templates of every real server that specs make quiescent
// (weight 0, from a failed check with on_failure: quiesce, or set by the
// operator) and that was not quiescent in the previous apply, in services
// with persistence and expire_quiescent_template. Without it a persistent
// client keeps going to a quiesced server while its template lives. The
// workers delete them in the background. Callers hold d.mu.
func (d *Daemon) expireQuiescent(specs []dataplane.ServiceSpec) {
	expire := map[quiescedKey]bool{} // the services with the switch on (no dest)
	for _, s := range d.services {
		if s.expireQuiescent {
			expire[quiescedKey{fwmark: s.spec.FwMark, vip: s.spec.VIP, port: s.spec.Port, proto: s.spec.Proto}] = true
		}
	}
	now := map[quiescedKey]bool{}
	var todo []quiescedKey
	for i := range specs {
		sp := &specs[i]
		if sp.Persistence <= 0 || !expire[quiescedKey{fwmark: sp.FwMark, vip: sp.VIP, port: sp.Port, proto: sp.Proto}] {
			continue
		}
		for _, ds := range sp.Dests {
			if ds.Weight != 0 {
				continue
			}
			k := quiescedKey{sp.FwMark, sp.VIP, sp.Port, sp.Proto, netip.AddrPortFrom(ds.Addr, ds.Port)}
			now[k] = true
			if !d.quiesced[k] {
				todo = append(todo, k)
			}
		}
	}
	first := d.quiesced == nil
	d.quiesced = now
	if first || len(todo) == 0 {
		// The first apply runs before the workers (no templates yet).
		return
	}
	dp, log := d.dp, d.log
	go func() {
		for _, k := range todo {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var n int
			var err error
			if k.fwmark != 0 {
				n, err = dp.ExpireMarkTemplates(ctx, k.fwmark, k.dest)
			} else {
				n, err = dp.ExpireTemplates(ctx, k.vip, k.port, k.proto, k.dest)
			}
			cancel()
			switch {
			case err != nil:
				log.Warn("expire_quiescent_template: templates not expired", "service", netip.AddrPortFrom(k.vip, k.port).String(),
					"server", k.dest.String(), "err", err)
			case n > 0:
				log.Info("persistence templates of a quiesced server expired", "service", netip.AddrPortFrom(k.vip, k.port).String(),
					"server", k.dest.String(), "templates", n)
			}
		}
	}()
}

// change runs f on a copy of the services and applies the result; if f or
// the data path refuses it, nothing changes.
func (d *Daemon) change(f func(svcs []*service) ([]*service, error)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.services
	cp := make([]*service, len(old))
	for i, s := range old {
		c := *s
		c.spec.Dests = append([]dataplane.DestSpec(nil), s.spec.Dests...)
		c.spec.LocalAddrs = append([]netip.Addr(nil), s.spec.LocalAddrs...)
		c.checks = append([]config.HealthCheck(nil), s.checks...)
		cp[i] = &c
	}
	next, err := f(cp)
	if err != nil {
		return err
	}
	d.services = next
	if err := d.apply(); err != nil {
		d.services = old
		return fmt.Errorf("%w: %v", control.ErrInvalid, err)
	}
	d.setHealthTargets()
	if err := d.syncVIPs(); err != nil {
		d.log.Error("manage_vips", "err", err)
	}
	return nil
}

func findService(svcs []*service, k control.ServiceKey) (int, error) {
	if k.FwMark != 0 {
		for i, s := range svcs {
			if s.spec.FwMark == k.FwMark {
				return i, nil
			}
		}
		return -1, fmt.Errorf("%w: no such service FWM %d", control.ErrNotFound, k.FwMark)
	}
	vip, err := netip.ParseAddr(k.VIP)
	if err != nil {
		return -1, fmt.Errorf("%w: bad address %q", control.ErrInvalid, k.VIP)
	}
	proto, err := parseProto(k.Protocol)
	if err != nil {
		return -1, err
	}
	for i, s := range svcs {
		if s.spec.FwMark == 0 && s.spec.VIP == vip && s.spec.Port == k.Port && s.spec.Proto == proto {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: no such service %s %s", control.ErrNotFound, strings.ToUpper(k.Protocol), net.JoinHostPort(k.VIP, strconv.Itoa(int(k.Port))))
}

// parseProto parses the API's protocol of a service (tcp or udp).
func parseProto(p string) (lvs.Proto, error) {
	proto, err := lvs.ParseProto(p)
	if err != nil {
		return 0, fmt.Errorf("%w: protocol %q (tcp or udp)", control.ErrInvalid, p)
	}
	return proto, nil
}

// parseFwd parses the API's forwarding method: its configuration name,
// ipvsadm's column or one of the usual aliases (lvs.ParseFwd).
func parseFwd(s string) (lvs.Fwd, error) {
	f, err := lvs.ParseFwd(s)
	if err != nil {
		return 0, fmt.Errorf("%w: forwarding method %q (nat, fullnat, dr or tun)", control.ErrInvalid, s)
	}
	return f, nil
}

// serviceSpec validates a govsadm service spec into s; marks are the
// YAML's firewall marks, which give an fwmark service its match.
func serviceSpec(cs control.ServiceSpec, s *dataplane.ServiceSpec, marks []config.Mark) error {
	var err error
	if cs.FwMark != 0 {
		err = markServiceSpec(cs, s, marks)
	} else {
		err = addrServiceSpec(cs, s)
	}
	if err != nil {
		return err
	}
	return clientAddrSpec(cs, s)
}

// clientAddrSpec applies -A/-E's --proxy-protocol and --toa to s (left
// out, they keep their value) and refuses them where the director cannot
// send them, as config does for the file: a TCP service, not fwmark, whose
// real servers all forward by full-NAT. Such a service's own forwarding
// method, the default of its real servers and its sorry server's, becomes
// full-NAT (one made with -A has nat, which govsadm's real servers never
// take: -a always names one).
func clientAddrSpec(cs control.ServiceSpec, s *dataplane.ServiceSpec) error {
	if cs.ProxyProtocol != "" {
		v, err := lvs.ParseProxyProtocol(cs.ProxyProtocol)
		if err != nil {
			return fmt.Errorf("%w: %v", control.ErrInvalid, err)
		}
		s.ProxyProtocol = v
	}
	if cs.TOA != nil {
		s.TOA = *cs.TOA
	}
	if s.ProxyProtocol == lvs.ProxyNone && !s.TOA {
		return nil
	}
	switch {
	case s.FwMark != 0:
		return fmt.Errorf("%w: the proxy protocol and toa are not available for fwmark services", control.ErrInvalid)
	case s.Proto != lvs.ProtoTCP:
		return fmt.Errorf("%w: the proxy protocol and toa are only for tcp services", control.ErrInvalid)
	}
	for _, ds := range s.Dests {
		if ds.Fwd != lvs.FwdFullNAT {
			return fmt.Errorf("%w: the proxy protocol and toa need full-NAT real servers (--fullnat): %s uses %s",
				control.ErrInvalid, netip.AddrPortFrom(ds.Addr, ds.Port), ds.Fwd.Name())
		}
	}
	s.Fwd = lvs.FwdFullNAT
	return nil
}

// addrServiceSpec is serviceSpec for ipvsadm -A/-E -t|-u VIP:port.
func addrServiceSpec(cs control.ServiceSpec, s *dataplane.ServiceSpec) error {
	vip, err := netip.ParseAddr(cs.VIP)
	if err != nil || vip.Zone() != "" {
		return fmt.Errorf("%w: bad virtual address %q", control.ErrInvalid, cs.VIP)
	}
	proto, err := parseProto(cs.Protocol)
	if err != nil {
		return err
	}
	schedName := cs.Scheduler
	if schedName == "" {
		schedName = lvs.DefaultScheduler
	}
	flags, err := sched.ParseFlags(cs.Flags)
	if err != nil {
		return fmt.Errorf("%w: %v", control.ErrInvalid, err)
	}
	if _, err := sched.New(schedName, flags); err != nil {
		return fmt.Errorf("%w: %v", control.ErrInvalid, err)
	}
	if cs.Port == 0 && cs.Persistent <= 0 {
		return fmt.Errorf("%w: port 0 (all ports) needs persistence (-p)", control.ErrInvalid)
	}
	s.VIP, s.Port, s.Proto, s.Scheduler, s.Flags = vip.Unmap(), cs.Port, proto, schedName, flags
	if s.Name == "" {
		s.Name = fmt.Sprintf("%s-%s", proto.Name(), netip.AddrPortFrom(s.VIP, cs.Port))
	}
	s.Persistence, s.PersistBits = 0, 0
	if cs.Persistent > 0 {
		s.Persistence = time.Duration(cs.Persistent) * time.Second
		bits := vip.BitLen()
		if cs.Netmask != "" {
			if bits, err = maskBits(cs.Netmask, vip.Is4()); err != nil {
				return err
			}
		}
		s.PersistBits = bits
	}
	return nil
}

func maskBits(m string, v4 bool) (int, error) {
	if n, err := strconv.Atoi(strings.TrimPrefix(m, "/")); err == nil {
		if (v4 && n >= 0 && n <= 32) || (!v4 && n >= 0 && n <= 128) {
			return n, nil
		}
	}
	if v4 {
		if ip, err := netip.ParseAddr(m); err == nil && ip.Is4() {
			b := ip.As4()
			ones, bits := net.IPMask(b[:]).Size()
			if bits == 32 {
				return ones, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: bad netmask %q", control.ErrInvalid, m)
}

// Info implements control.Backend.
func (d *Daemon) Info() control.Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	return control.Info{Version: control.IPVSVersion, GovsVersion: version.String(), ConnTable: d.cfg.Director.ConnTableSize, Config: d.path}
}

// AddService implements control.Backend (ipvsadm -A).
func (d *Daemon) AddService(cs control.ServiceSpec) error {
	return d.change(func(svcs []*service) ([]*service, error) {
		if _, err := findService(svcs, cs.ServiceKey); err == nil {
			if cs.FwMark != 0 {
				return nil, fmt.Errorf("%w: service FWM %d already exists", control.ErrExists, cs.FwMark)
			}
			return nil, fmt.Errorf("%w: service %s already exists", control.ErrExists, net.JoinHostPort(cs.VIP, strconv.Itoa(int(cs.Port))))
		}
		s := &service{spec: dataplane.ServiceSpec{Fwd: lvs.FwdNAT}}
		if err := serviceSpec(cs, &s.spec, d.cfg.Marks); err != nil {
			return nil, err
		}
		d.log.Info("service added", "service", s.spec.Name, "scheduler", s.spec.Scheduler)
		return append(svcs, s), nil
	})
}

// EditService implements control.Backend (ipvsadm -E).
func (d *Daemon) EditService(cs control.ServiceSpec) error {
	return d.change(func(svcs []*service) ([]*service, error) {
		i, err := findService(svcs, cs.ServiceKey)
		if err != nil {
			return nil, err
		}
		if err := serviceSpec(cs, &svcs[i].spec, d.cfg.Marks); err != nil {
			return nil, err
		}
		d.log.Info("service edited", "service", svcs[i].spec.Name, "scheduler", svcs[i].spec.Scheduler)
		return svcs, nil
	})
}

// DeleteService implements control.Backend (ipvsadm -D).
func (d *Daemon) DeleteService(k control.ServiceKey) error {
	return d.change(func(svcs []*service) ([]*service, error) {
		i, err := findService(svcs, k)
		if err != nil {
			return nil, err
		}
		d.log.Info("service deleted", "service", svcs[i].spec.Name)
		return append(svcs[:i], svcs[i+1:]...), nil
	})
}

// Clear implements control.Backend (ipvsadm -C).
func (d *Daemon) Clear() error {
	return d.change(func([]*service) ([]*service, error) {
		d.log.Info("all services cleared")
		return nil, nil
	})
}

func findDest(s *service, addr netip.Addr, port uint16) int {
	for i, ds := range s.spec.Dests {
		if ds.Addr == addr && ds.Port == port {
			return i
		}
	}
	return -1
}

func destAddr(s *service, addr string, port uint16) (netip.Addr, uint16, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, 0, fmt.Errorf("%w: bad real server address %q", control.ErrInvalid, addr)
	}
	a = a.Unmap()
	if a.Is4() != familyAddr(&s.spec).Is4() {
		return netip.Addr{}, 0, fmt.Errorf("%w: real server %s is not of the service's address family", control.ErrInvalid, a)
	}
	if port == 0 {
		port = s.spec.Port
	}
	return a, port, nil
}

// serviceAndDest finds the service a govsadm real-server command names and
// parses the real server's address (a port of 0 means the service's).
func serviceAndDest(svcs []*service, k control.ServiceKey, address string, port uint16) (*service, netip.Addr, uint16, error) {
	i, err := findService(svcs, k)
	if err != nil {
		return nil, netip.Addr{}, 0, err
	}
	addr, port, err := destAddr(svcs[i], address, port)
	return svcs[i], addr, port, err
}

// editDest applies a govsadm dest spec to ds.
func editDest(s *service, cd control.DestSpec, ds *dataplane.DestSpec) error {
	if cd.Forward != "" {
		f, err := parseFwd(cd.Forward)
		if err != nil {
			return err
		}
		ds.Fwd = f
	}
	if ds.Fwd.InputOnly() && ds.Port != s.spec.Port && s.spec.Port != 0 {
		return fmt.Errorf("%w: port mapping is not possible with %s forwarding", control.ErrInvalid, ds.Fwd)
	}
	if ds.Fwd == lvs.FwdFullNAT && len(s.spec.LocalAddrs) == 0 {
		return fmt.Errorf("%w: full-NAT needs a local address first (--add-laddr)", control.ErrInvalid)
	}
	if ds.Fwd != lvs.FwdFullNAT && (s.spec.ProxyProtocol != lvs.ProxyNone || s.spec.TOA) {
		return fmt.Errorf("%w: the service sends the proxy protocol or toa, which need full-NAT real servers (--fullnat), not %s",
			control.ErrInvalid, ds.Fwd.Name())
	}
	if cd.Weight != nil {
		if *cd.Weight < 0 || *cd.Weight > config.MaxWeight {
			return fmt.Errorf("%w: weight %d out of range 0-%d", control.ErrInvalid, *cd.Weight, config.MaxWeight)
		}
		ds.Weight = *cd.Weight
	}
	if cd.Upper != nil {
		ds.Upper = *cd.Upper
	}
	if cd.Lower != nil {
		ds.Lower = *cd.Lower
	}
	if ds.Upper > 0 && ds.Lower > ds.Upper {
		return fmt.Errorf("%w: lower threshold %d above upper %d", control.ErrInvalid, ds.Lower, ds.Upper)
	}
	return nil
}

// AddDest implements control.Backend (ipvsadm -a).
func (d *Daemon) AddDest(cd control.DestSpec) error {
	return d.change(func(svcs []*service) ([]*service, error) {
		s, addr, port, err := serviceAndDest(svcs, cd.Service, cd.Address, cd.Port)
		if err != nil {
			return nil, err
		}
		if findDest(s, addr, port) >= 0 {
			return nil, fmt.Errorf("%w: destination %s already exists", control.ErrExists, netip.AddrPortFrom(addr, port))
		}
		ds := dataplane.DestSpec{Addr: addr, Port: port, Weight: 1, Fwd: s.spec.Fwd}
		if err := editDest(s, cd, &ds); err != nil {
			return nil, err
		}
		s.spec.Dests = append(s.spec.Dests, ds)
		s.checks = append(s.checks, config.HealthCheck{})
		d.log.Info("real server added", "service", s.spec.Name, "server", netip.AddrPortFrom(addr, port).String(), "weight", ds.Weight)
		return svcs, nil
	})
}

// EditDest implements control.Backend (ipvsadm -e).
func (d *Daemon) EditDest(cd control.DestSpec) error {
	return d.change(func(svcs []*service) ([]*service, error) {
		s, addr, port, err := serviceAndDest(svcs, cd.Service, cd.Address, cd.Port)
		if err != nil {
			return nil, err
		}
		j := findDest(s, addr, port)
		if j < 0 {
			return nil, fmt.Errorf("%w: no such destination %s", control.ErrNotFound, netip.AddrPortFrom(addr, port))
		}
		if err := editDest(s, cd, &s.spec.Dests[j]); err != nil {
			return nil, err
		}
		d.log.Info("real server edited", "service", s.spec.Name, "server", netip.AddrPortFrom(addr, port).String(), "weight", s.spec.Dests[j].Weight)
		return svcs, nil
	})
}

// DeleteDest implements control.Backend (ipvsadm -d). The server drains:
// its established connections go on until they end.
func (d *Daemon) DeleteDest(k control.ServiceKey, address string, port uint16) error {
	return d.change(func(svcs []*service) ([]*service, error) {
		s, addr, port, err := serviceAndDest(svcs, k, address, port)
		if err != nil {
			return nil, err
		}
		j := findDest(s, addr, port)
		if j < 0 {
			return nil, fmt.Errorf("%w: no such destination %s", control.ErrNotFound, netip.AddrPortFrom(addr, port))
		}
		s.spec.Dests = append(s.spec.Dests[:j], s.spec.Dests[j+1:]...)
		if j < len(s.checks) {
			s.checks = append(s.checks[:j], s.checks[j+1:]...)
		}
		d.log.Info("real server deleted (draining)", "service", s.spec.Name, "server", netip.AddrPortFrom(addr, port).String())
		return svcs, nil
	})
}

// AddLocalAddr implements control.Backend (--add-laddr).
func (d *Daemon) AddLocalAddr(l control.LocalAddr) error {
	return d.change(func(svcs []*service) ([]*service, error) {
		i, err := findService(svcs, l.Service)
		if err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(l.Address)
		if err != nil || a.Unmap().Is4() != familyAddr(&svcs[i].spec).Is4() {
			return nil, fmt.Errorf("%w: bad local address %q for this service", control.ErrInvalid, l.Address)
		}
		for _, la := range svcs[i].spec.LocalAddrs {
			if la == a.Unmap() {
				return nil, fmt.Errorf("%w: local address %s already exists", control.ErrExists, a)
			}
		}
		svcs[i].spec.LocalAddrs = append(svcs[i].spec.LocalAddrs, a.Unmap())
		return svcs, nil
	})
}

// DeleteLocalAddr implements control.Backend (--del-laddr).
func (d *Daemon) DeleteLocalAddr(l control.LocalAddr) error {
	return d.change(func(svcs []*service) ([]*service, error) {
		i, err := findService(svcs, l.Service)
		if err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(l.Address)
		if err != nil {
			return nil, fmt.Errorf("%w: bad local address %q", control.ErrInvalid, l.Address)
		}
		s := svcs[i]
		for j, la := range s.spec.LocalAddrs {
			if la == a.Unmap() {
				s.spec.LocalAddrs = append(s.spec.LocalAddrs[:j], s.spec.LocalAddrs[j+1:]...)
				return svcs, nil
			}
		}
		return nil, fmt.Errorf("%w: no such local address %s", control.ErrNotFound, a)
	})
}

// Zero implements control.Backend (ipvsadm -Z).
func (d *Daemon) Zero(k *control.ServiceKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var vip netip.Addr
	var proto lvs.Proto
	if k != nil {
		i, err := findService(d.services, *k)
		if err != nil {
			return err
		}
		vip, proto = d.services[i].spec.VIP, d.services[i].spec.Proto
	}
	for _, svc := range d.dp.Services() {
		if k != nil && (svc.FwMark != k.FwMark || svc.VIP.Netip() != vip || svc.Port != k.Port || svc.Proto != proto) {
			continue
		}
		for _, dst := range svc.Dests {
			dst.Zero()
		}
	}
	return nil
}

// Timeouts implements control.Backend.
func (d *Daemon) Timeouts() control.Timeouts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return control.Timeouts{
		TCP:    int(d.timeouts.For(conntrack.StateEstablished) / time.Second),
		TCPFin: int(d.timeouts.For(conntrack.StateFinWait) / time.Second),
		UDP:    int(d.timeouts.For(conntrack.StateUDP) / time.Second),
	}
}

// SetTimeouts implements control.Backend (ipvsadm --set).
func (d *Daemon) SetTimeouts(t control.Timeouts) error {
	if t.TCP < 0 || t.TCPFin < 0 || t.UDP < 0 {
		return fmt.Errorf("%w: negative timeout", control.ErrInvalid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timeouts.Set(time.Duration(t.TCP)*time.Second, time.Duration(t.TCPFin)*time.Second, time.Duration(t.UDP)*time.Second)
	d.dp.SetTimeouts(d.timeouts)
	d.log.Info("timeouts set", "tcp", t.TCP, "tcpfin", t.TCPFin, "udp", t.UDP)
	return nil
}

// Connections implements control.Backend.
func (d *Daemon) Connections(ctx context.Context, templates bool) ([]control.Connection, error) {
	conns, err := d.dp.Connections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]control.Connection, 0, len(conns))
	for _, c := range conns {
		cc := control.Connection{
			Protocol: c.Proto.String(),
			Expire:   c.Expires.Milliseconds(),
			State:    c.State,
			Source:   c.Client.String(),
			Virtual:  c.Virtual.String(),
			Dest:     c.Dest.String(),
		}
		if c.Local.IsValid() {
			cc.Local = c.Local.String()
		}
		out = append(out, cc)
	}
	if templates {
		tmpls, err := d.dp.Templates(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range tmpls {
			proto := t.Proto.String()
			if t.Virtual.Port() == 0 {
				proto = "IP"
			}
			out = append(out, control.Connection{
				Protocol: proto,
				Expire:   t.Expires.Milliseconds(),
				State:    "NONE",
				Source:   netip.AddrPortFrom(t.Client, 0).String(),
				Virtual:  t.Virtual.String(),
				Dest:     t.Dest.String(),
				Template: true,
			})
		}
	}
	return out, nil
}
