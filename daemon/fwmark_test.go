package daemon

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
)

const fwmarkYAML = `
director:
  interfaces: [eth0]
marks:
  - fwmark: 7
    addresses: [198.18.0.110, 198.18.0.112/31]
    ports: [80, 8443]
    protocols: [tcp, udp]
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    real_servers: [{address: 198.18.1.1, port: 8080}]
  - name: marked
    fwmark: 1
    scheduler: rr
    persistence: {timeout: 300s}
    match: {addresses: [198.18.0.120], ports: [80, 8443]}
    real_servers: [{address: 198.18.1.1}, {address: 198.18.1.2}]
`

// TestFwmarkServices: a YAML fwmark service reaches the data path with its
// match and port-0 servers and is listed as FWM; govsadm -A -f N works for
// a mark of the marks section and is refused, saying why, for any other;
// -a/-e/-d -f and -D -f work on it.
func TestFwmarkServices(t *testing.T) {
	d, f := newTestDaemon(t, fwmarkYAML)
	var sp *dataplane.ServiceSpec
	for i, s := range f.last(t) {
		if s.FwMark == 1 {
			sp = &f.last(t)[i]
		}
	}
	if sp == nil || len(sp.Match) != 2 || sp.Proto != 0 || sp.VIP.IsValid() || sp.Dests[0].Port != 0 || sp.Persistence == 0 {
		t.Fatalf("fwmark 1 spec %+v", sp)
	}
	var listed *control.Service
	for _, s := range d.Services() {
		if s.FwMark == 1 {
			listed = &s
		}
	}
	if listed == nil || listed.VIP != "" || listed.Persistent != 300 || listed.Netmask != "255.255.255.255" || len(listed.Dests) != 2 {
		t.Fatalf("listing %+v", listed)
	}

	err := d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{FwMark: 9}, Scheduler: "rr"})
	if !errors.Is(err, control.ErrInvalid) {
		t.Fatalf("-A -f 9 without a match: %v, want invalid", err)
	}
	t.Log(err)
	if err := d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{FwMark: 1}}); !errors.Is(err, control.ErrExists) {
		t.Errorf("-A -f 1 again: %v, want exists", err)
	}
	k7 := control.ServiceKey{FwMark: 7}
	if err := d.AddService(control.ServiceSpec{ServiceKey: k7, Scheduler: "rr", Persistent: 60, Netmask: "255.255.255.0"}); err != nil {
		t.Fatalf("-A -f 7: %v", err)
	}
	if err := d.AddDest(control.DestSpec{Service: k7, Address: "198.18.1.3", Forward: "nat"}); err != nil {
		t.Fatalf("-a -f 7: %v", err)
	}
	if err := d.AddDest(control.DestSpec{Service: k7, Address: "2001:db8::1", Forward: "nat"}); !errors.Is(err, control.ErrInvalid) {
		t.Errorf("-a -f 7 with an IPv6 server: %v, want invalid", err)
	}
	if err := d.EditService(control.ServiceSpec{ServiceKey: k7, Scheduler: "wlc", Persistent: 60, Netmask: "24"}); err != nil {
		t.Fatalf("-E -f 7: %v", err)
	}
	w := 5
	if err := d.EditDest(control.DestSpec{Service: k7, Address: "198.18.1.3", Weight: &w}); err != nil {
		t.Fatalf("-e -f 7: %v", err)
	}
	var got *dataplane.ServiceSpec
	for i, s := range f.last(t) {
		if s.FwMark == 7 {
			got = &f.last(t)[i]
		}
	}
	if got == nil || got.Name != "fwm-7" || got.Scheduler != "wlc" || len(got.Match) != 2*2*2 || got.PersistBits != 24 ||
		len(got.Dests) != 1 || got.Dests[0].Addr != netip.MustParseAddr("198.18.1.3") || got.Dests[0].Port != 0 || got.Dests[0].Weight != 5 {
		t.Fatalf("fwmark 7 spec %+v", got)
	}
	if err := d.DeleteDest(k7, "198.18.1.3", 0); err != nil {
		t.Errorf("-d -f 7: %v", err)
	}
	if err := d.DeleteService(k7); err != nil {
		t.Errorf("-D -f 7: %v", err)
	}
	if err := d.DeleteService(k7); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("-D -f 7 again: %v, want not found", err)
	}
}
