package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/govs/govs/control"
	"github.com/govs/govs/lvs"
)

// proxyYAML has a full-NAT service with each of the client-address keys
// set, IPv4 and IPv6, next to a NAT service without them.
const proxyYAML = `
director:
  interfaces: [eth0]
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    forward: fullnat
    local_addresses: [198.18.2.1]
    proxy_protocol: v2
    real_servers:
      - {address: 198.18.1.1, port: 8080}
  - name: web6
    vip: 2001:db8::100
    port: 443
    forward: fullnat
    local_addresses: [2001:db8:2::1]
    proxy_protocol: v1
    toa: true
    real_servers:
      - {address: 2001:db8:1::1, port: 8443}
  - name: dns
    vip: 198.18.0.100
    port: 53
    protocol: udp
    real_servers:
      - {address: 198.18.1.1, port: 53}
`

// TestClientAddrSpecs: proxy_protocol and toa go from the file into the
// data path's specs and come back in the listing (v1 / v2 and true; the
// empty string and false, left out of the JSON, for none).
func TestClientAddrSpecs(t *testing.T) {
	d, f := newTestDaemon(t, proxyYAML)
	wantSpecs(t, f.last(t),
		"web tcp 198.18.0.100:80 wlc FullNat p0s/0 la[198.18.2.1] [198.18.1.1:8080 w1 FullNat 0/0] proxy-protocol v2",
		"web6 tcp 2001:db8::100:443 wlc FullNat p0s/0 la[2001:db8:2::1] [2001:db8:1::1:8443 w1 FullNat 0/0] proxy-protocol v1 toa",
		"dns udp 198.18.0.100:53 wlc Masq p0s/0 la[] [198.18.1.1:53 w1 Masq 0/0]")
	ls := d.Services()
	for i, want := range []struct {
		proxy string
		toa   bool
	}{{"v2", false}, {"v1", true}, {"", false}} {
		if ls[i].ProxyProtocol != want.proxy || ls[i].TOA != want.toa {
			t.Errorf("%s: listed proxy_protocol %q, toa %v; want %q, %v", ls[i].Name, ls[i].ProxyProtocol, ls[i].TOA, want.proxy, want.toa)
		}
	}
}

func boolp(v bool) *bool { return &v }

// TestClientAddrCommands: govsadm's --proxy-protocol and --toa on -A and
// -E. A service made with -A takes them and its real servers must then be
// full-NAT; -E without them keeps them, with none / false drops them.
func TestClientAddrCommands(t *testing.T) {
	d, f := newTestDaemon(t, proxyYAML)
	web, web6 := web(), control.ServiceKey{Protocol: "tcp", VIP: "2001:db8::100", Port: 443}
	api := control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.102", Port: 443}
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	line := func(i int) string {
		t.Helper()
		return specLines(f.last(t))[i]
	}

	// -E without the options keeps them, as the file set them.
	step("-E", d.EditService(control.ServiceSpec{ServiceKey: web, Scheduler: "rr"}))
	if got, want := line(0), "web tcp 198.18.0.100:80 rr FullNat p0s/0 la[198.18.2.1] [198.18.1.1:8080 w1 FullNat 0/0] proxy-protocol v2"; got != want {
		t.Errorf("-E without --proxy-protocol:\n  %s\nwant\n  %s", got, want)
	}
	step("-E --proxy-protocol v1 --toa", d.EditService(control.ServiceSpec{ServiceKey: web, Scheduler: "rr", ProxyProtocol: "v1", TOA: boolp(true)}))
	if got := line(0); !strings.HasSuffix(got, "] proxy-protocol v1 toa") {
		t.Errorf("-E --proxy-protocol v1 --toa: %s", got)
	}
	step("-E --proxy-protocol none --toa=false", d.EditService(control.ServiceSpec{ServiceKey: web6, ProxyProtocol: "none", TOA: boolp(false)}))
	if got := line(1); strings.Contains(got, "proxy-protocol") || strings.Contains(got, "toa") {
		t.Errorf("-E --proxy-protocol none --toa=false: %s", got)
	}

	// A new service: -A with them, a local address, full-NAT servers.
	step("-A --proxy-protocol v2", d.AddService(control.ServiceSpec{ServiceKey: api, Scheduler: "rr", ProxyProtocol: "v2"}))
	step("--add-laddr", d.AddLocalAddr(control.LocalAddr{Service: api, Address: "198.18.2.9"}))
	step("-a --fullnat", d.AddDest(control.DestSpec{Service: api, Address: "198.18.1.7", Port: 8443, Forward: "fullnat", Weight: intp(1)}))
	if got, want := line(3), "tcp-198.18.0.102:443 tcp 198.18.0.102:443 rr FullNat p0s/0 la[198.18.2.9] [198.18.1.7:8443 w1 FullNat 0/0] proxy-protocol v2"; got != want {
		t.Errorf("-A --proxy-protocol v2, -a --fullnat:\n  %s\nwant\n  %s", got, want)
	}
	if ls := d.Services(); ls[3].ProxyProtocol != "v2" || ls[3].TOA {
		t.Errorf("listed %+v", ls[3])
	}
	// Without a forwarding method (the API's default), a real server of
	// such a service is full-NAT.
	step("-a (API default)", d.AddDest(control.DestSpec{Service: api, Address: "198.18.1.8", Port: 8443}))
	if got := line(3); !strings.Contains(got, "198.18.1.8:8443 w1 FullNat") {
		t.Errorf("a real server added without a method: %s", got)
	}

	before := specLines(f.last(t))
	n := f.applies()
	dns := control.ServiceKey{Protocol: "udp", VIP: "198.18.0.100", Port: 53}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"-A bad version", d.AddService(control.ServiceSpec{ServiceKey: nokey(), ProxyProtocol: "v3"}), "unknown proxy protocol version"},
		{"-A udp", d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "udp", VIP: "198.18.0.103", Port: 53}, TOA: boolp(true)}), "only for tcp services"},
		{"-E udp", d.EditService(control.ServiceSpec{ServiceKey: dns, ProxyProtocol: "v1"}), "only for tcp services"},
		{"-a -m", d.AddDest(control.DestSpec{Service: api, Address: "198.18.1.9", Forward: "nat"}), "need full-NAT real servers (--fullnat), not nat"},
		{"-e -m", d.EditDest(control.DestSpec{Service: api, Address: "198.18.1.7", Port: 8443, Forward: "masq"}), "need full-NAT real servers (--fullnat), not nat"},
	} {
		if !errors.Is(c.err, control.ErrInvalid) || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", c.name, c.err, c.want)
		}
	}
	if f.applies() != n {
		t.Errorf("%d applies for refused commands", f.applies()-n)
	}
	wantSpecs(t, d.effectiveSpecs(), before...)
}

// TestClientAddrRefusals: on the NAT services of reloadBefore, the options
// are refused with the real server at fault, and an fwmark service refuses
// them; nothing reaches the data path.
func TestClientAddrRefusals(t *testing.T) {
	d, f := newTestDaemon(t, reloadBefore+`marks:
  - {fwmark: 1, addresses: [198.18.0.110], protocols: [tcp]}
`)
	n := f.applies()
	before := specLines(f.last(t))
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"-E nat servers", d.EditService(control.ServiceSpec{ServiceKey: web(), ProxyProtocol: "v2"}),
			"need full-NAT real servers (--fullnat): 198.18.1.1:8080 uses nat"},
		{"-E toa dr server", d.EditService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.101", Port: 22}, TOA: boolp(true)}),
			"198.18.1.4:22 uses dr"},
		{"-A -f", d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{FwMark: 1}, ProxyProtocol: "v1"}), "not available for fwmark services"},
		{"-A junk", d.AddService(control.ServiceSpec{ServiceKey: nokey(), ProxyProtocol: "yes"}), `unknown proxy protocol version "yes"`},
	}
	for _, c := range cases {
		if !errors.Is(c.err, control.ErrInvalid) || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", c.name, c.err, c.want)
		}
	}
	if f.applies() != n {
		t.Errorf("%d applies for refused commands", f.applies()-n)
	}
	wantSpecs(t, d.effectiveSpecs(), before...)
	// none and false are fine anywhere.
	if err := d.EditService(control.ServiceSpec{ServiceKey: web(), ProxyProtocol: "none", TOA: boolp(false)}); err != nil {
		t.Errorf("-E --proxy-protocol none --toa=false on a NAT service: %v", err)
	}
	if got := specLines(f.last(t))[0]; strings.Contains(got, "proxy") || d.services[0].spec.Fwd != lvs.FwdNAT {
		t.Errorf("after none/false: %s, forward %v", got, d.services[0].spec.Fwd)
	}
}
