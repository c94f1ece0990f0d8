package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/govs/govs/control"
	"github.com/govs/govs/lvs"
)

// fakeBackend is govsd's control API in memory: the real control.Handler
// served on a unix socket in the test's directory, over a table kept here
// with the daemon's refusals (404 for a missing service or member, 409 for
// a duplicate, 400 for a bad request).
type fakeBackend struct {
	mu        sync.Mutex
	services  []control.Service
	timeouts  control.Timeouts
	conns     []control.Connection
	tmpls     []control.Connection
	counters  control.Counters
	reloads   int
	shutdowns int
	zeroed    []string
	daemons   []control.SyncDaemon
	bgp       control.BGP
}

func (b *fakeBackend) BGP() control.BGP {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bgp
}

func (b *fakeBackend) SyncDaemons() []control.SyncDaemon {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]control.SyncDaemon(nil), b.daemons...)
}

func (b *fakeBackend) StartSyncDaemon(sd control.SyncDaemon) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.daemons {
		if d.Role == sd.Role {
			return fmt.Errorf("%w: the %s sync daemon is already running", control.ErrExists, sd.Role)
		}
	}
	b.daemons = append(b.daemons, sd)
	return nil
}

func (b *fakeBackend) StopSyncDaemon(role string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, d := range b.daemons {
		if d.Role == role {
			b.daemons = append(b.daemons[:i], b.daemons[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w: no %s sync daemon is running", control.ErrNotFound, role)
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{timeouts: control.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}}
}

// serve starts the API for b and returns the socket's path.
func serve(t *testing.T, b *fakeBackend) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "govs.sock")
	srv, err := control.Listen(path, b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return path
}

func (b *fakeBackend) Info() control.Info {
	return control.Info{Version: "1.2.1", ConnTable: 4096, Config: "/etc/govs/govs.yaml"}
}

func (b *fakeBackend) Services() []control.Service {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]control.Service, len(b.services))
	for i, s := range b.services {
		s.Dests = slices.Clone(s.Dests)
		s.LocalAddresses = slices.Clone(s.LocalAddresses)
		s.Flags = slices.Clone(s.Flags)
		out[i] = s
	}
	return out
}

func (b *fakeBackend) find(k control.ServiceKey) (int, error) {
	if k.FwMark != 0 {
		for i, s := range b.services {
			if s.FwMark == k.FwMark {
				return i, nil
			}
		}
		return -1, fmt.Errorf("%w: no such service", control.ErrNotFound)
	}
	vip, err := netip.ParseAddr(k.VIP)
	if err != nil {
		return -1, fmt.Errorf("%w: bad address %q", control.ErrInvalid, k.VIP)
	}
	for i, s := range b.services {
		if s.FwMark == 0 && strings.EqualFold(s.Protocol, k.Protocol) && s.Port == k.Port && s.VIP == vip.Unmap().String() {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w: no such service", control.ErrNotFound)
}

func (b *fakeBackend) setSpec(s *control.Service, cs control.ServiceSpec) error {
	if cs.Port == 0 && cs.FwMark == 0 && cs.Persistent <= 0 {
		return fmt.Errorf("%w: port 0 needs persistence", control.ErrInvalid)
	}
	s.Scheduler = cs.Scheduler
	if s.Scheduler == "" {
		s.Scheduler = "wlc"
	}
	if err := cs.Check(); err != nil {
		return err
	}
	// As the daemon: left out, the PROXY protocol and TOA keep their
	// value; set, they need full-NAT real servers.
	proxy, toa := s.ProxyProtocol, s.TOA
	if cs.TOA != nil {
		toa = *cs.TOA
	}
	if cs.ProxyProtocol != "" {
		v, _ := lvs.ParseProxyProtocol(cs.ProxyProtocol)
		proxy = ""
		if v != lvs.ProxyNone {
			proxy = v.String()
		}
	}
	for _, d := range s.Dests {
		if (proxy != "" || toa) && d.Forward != "FullNat" {
			return fmt.Errorf("%w: the proxy protocol and toa need full-NAT real servers (--fullnat): %s uses %s", control.ErrInvalid, d.Address, d.Forward)
		}
	}
	s.ProxyProtocol, s.TOA = proxy, toa
	s.Flags, s.Persistent, s.Netmask = cs.Flags, cs.Persistent, ""
	if cs.Persistent > 0 {
		s.Netmask = cs.Netmask
		if s.Netmask == "" {
			s.Netmask = "255.255.255.255"
			if strings.Contains(s.VIP, ":") || s.IPv6 {
				s.Netmask = "128"
			}
		}
	}
	return nil
}

func (b *fakeBackend) AddService(cs control.ServiceSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.find(cs.ServiceKey); err == nil {
		return fmt.Errorf("%w: service exists", control.ErrExists)
	}
	var s control.Service
	if cs.FwMark != 0 {
		// The fake's marks: 1-99 IPv4, 100 and above IPv6.
		s = control.Service{FwMark: cs.FwMark, IPv6: cs.FwMark >= 100}
	} else {
		vip, err := netip.ParseAddr(cs.VIP)
		if err != nil {
			return fmt.Errorf("%w: bad vip", control.ErrInvalid)
		}
		s = control.Service{Protocol: strings.ToUpper(cs.Protocol), VIP: vip.Unmap().String(), Port: cs.Port}
	}
	if err := b.setSpec(&s, cs); err != nil {
		return err
	}
	b.services = append(b.services, s)
	return nil
}

func (b *fakeBackend) EditService(cs control.ServiceSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, err := b.find(cs.ServiceKey)
	if err != nil {
		return err
	}
	return b.setSpec(&b.services[i], cs)
}

func (b *fakeBackend) DeleteService(k control.ServiceKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, err := b.find(k)
	if err != nil {
		return err
	}
	b.services = slices.Delete(b.services, i, i+1)
	return nil
}

func (b *fakeBackend) Clear() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.services = nil
	return nil
}

var fwdWords = map[string]string{"nat": "Masq", "dr": "Route", "tun": "Tunnel", "fullnat": "FullNat"}

func (b *fakeBackend) dest(cd control.DestSpec) (svc, dst int, port uint16, err error) {
	svc, err = b.find(cd.Service)
	if err != nil {
		return -1, -1, 0, err
	}
	port = cd.Port
	if port == 0 {
		port = cd.Service.Port
	}
	a, err := netip.ParseAddr(cd.Address)
	if err != nil {
		return -1, -1, 0, fmt.Errorf("%w: bad address", control.ErrInvalid)
	}
	for j, d := range b.services[svc].Dests {
		if d.Address == a.Unmap().String() && d.Port == port {
			return svc, j, port, nil
		}
	}
	return svc, -1, port, nil
}

func (b *fakeBackend) edit(s *control.Service, d *control.Dest, cd control.DestSpec) error {
	if cd.Forward != "" {
		w, ok := fwdWords[cd.Forward]
		if !ok {
			return fmt.Errorf("%w: forward %q", control.ErrInvalid, cd.Forward)
		}
		d.Forward = w
	}
	if (d.Forward == "Route" || d.Forward == "Tunnel") && d.Port != s.Port {
		return fmt.Errorf("%w: port mapping is not possible with %s", control.ErrInvalid, d.Forward)
	}
	if d.Forward == "FullNat" && len(s.LocalAddresses) == 0 {
		return fmt.Errorf("%w: full-NAT needs a local address first (--add-laddr)", control.ErrInvalid)
	}
	if cd.Weight != nil {
		d.Weight = *cd.Weight
	}
	if cd.Upper != nil {
		d.UpperThresh = *cd.Upper
	}
	if cd.Lower != nil {
		d.LowerThresh = *cd.Lower
	}
	return nil
}

func (b *fakeBackend) AddDest(cd control.DestSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, j, port, err := b.dest(cd)
	if err != nil {
		return err
	}
	if j >= 0 {
		return fmt.Errorf("%w: destination exists", control.ErrExists)
	}
	a, _ := netip.ParseAddr(cd.Address)
	d := control.Dest{Address: a.Unmap().String(), Port: port, Forward: "Masq", Weight: 1, Up: true}
	if err := b.edit(&b.services[i], &d, cd); err != nil {
		return err
	}
	b.services[i].Dests = append(b.services[i].Dests, d)
	return nil
}

func (b *fakeBackend) EditDest(cd control.DestSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, j, _, err := b.dest(cd)
	if err != nil {
		return err
	}
	if j < 0 {
		return fmt.Errorf("%w: no such destination", control.ErrNotFound)
	}
	d := b.services[i].Dests[j]
	if err := b.edit(&b.services[i], &d, cd); err != nil {
		return err
	}
	b.services[i].Dests[j] = d
	return nil
}

func (b *fakeBackend) DeleteDest(k control.ServiceKey, addr string, port uint16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, j, _, err := b.dest(control.DestSpec{Service: k, Address: addr, Port: port})
	if err != nil {
		return err
	}
	if j < 0 {
		return fmt.Errorf("%w: no such destination", control.ErrNotFound)
	}
	b.services[i].Dests = slices.Delete(b.services[i].Dests, j, j+1)
	return nil
}

func (b *fakeBackend) AddLocalAddr(l control.LocalAddr) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, err := b.find(l.Service)
	if err != nil {
		return err
	}
	if slices.Contains(b.services[i].LocalAddresses, l.Address) {
		return fmt.Errorf("%w: local address exists", control.ErrExists)
	}
	b.services[i].LocalAddresses = append(b.services[i].LocalAddresses, l.Address)
	return nil
}

func (b *fakeBackend) DeleteLocalAddr(l control.LocalAddr) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, err := b.find(l.Service)
	if err != nil {
		return err
	}
	j := slices.Index(b.services[i].LocalAddresses, l.Address)
	if j < 0 {
		return fmt.Errorf("%w: no such local address", control.ErrNotFound)
	}
	b.services[i].LocalAddresses = slices.Delete(b.services[i].LocalAddresses, j, j+1)
	return nil
}

func (b *fakeBackend) Zero(k *control.ServiceKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if k == nil {
		b.zeroed = append(b.zeroed, "all")
		return nil
	}
	if _, err := b.find(*k); err != nil {
		return err
	}
	b.zeroed = append(b.zeroed, k.Protocol+" "+k.VIP)
	return nil
}

func (b *fakeBackend) Timeouts() control.Timeouts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timeouts
}

func (b *fakeBackend) SetTimeouts(t control.Timeouts) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range []struct{ set, cur *int }{{&t.TCP, &b.timeouts.TCP}, {&t.TCPFin, &b.timeouts.TCPFin}, {&t.UDP, &b.timeouts.UDP}} {
		if *p.set != 0 {
			*p.cur = *p.set
		}
	}
	return nil
}

func (b *fakeBackend) Connections(_ context.Context, templates bool) ([]control.Connection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.conns)
	if templates {
		out = append(out, b.tmpls...)
	}
	return out, nil
}

func (b *fakeBackend) Counters() (control.Counters, error) { return b.counters, nil }

func (b *fakeBackend) Shutdown() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shutdowns++
	return nil
}

func (b *fakeBackend) Handover() error { return errors.New("not in govsadm's tests") }

func (b *fakeBackend) Reload() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloads++
	return nil
}

// fakeResolver answers the few names the tests use, so that nothing
// reaches DNS.
type fakeResolver struct{}

func (fakeResolver) lookupIPv4(host string) (netip.Addr, error) {
	if host == "web1.test" {
		return netip.MustParseAddr("198.18.1.1"), nil
	}
	return netip.Addr{}, fmt.Errorf("no such host %s", host)
}

func (fakeResolver) lookupPort(proto, service string) (int, error) {
	switch service {
	case "http":
		return 80, nil
	case "domain":
		return 53, nil
	}
	return 0, fmt.Errorf("unknown port %s/%s", proto, service)
}

// result is what one govsadm run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runAdm runs govsadm against the socket with the given stdin.
func runAdm(t *testing.T, socket, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string {
			if k == "GOVS_SOCKET" {
				return socket
			}
			return ""
		},
		res: fakeResolver{},
	}
	code := a.run(args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// mustRun runs govsadm and fails the test unless it succeeds.
func mustRun(t *testing.T, socket string, args ...string) string {
	t.Helper()
	r := runAdm(t, socket, "", args...)
	if r.code != 0 {
		t.Fatalf("govsadm %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}
