package daemon

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
)

func intp(v int) *int       { return &v }
func u32p(v uint32) *uint32 { return &v }
func web() control.ServiceKey {
	return control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.100", Port: 80}
}
func nokey() control.ServiceKey {
	return control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.199", Port: 80}
}

// TestCommandsApply: each govsadm command hands the data path the changed
// configuration, and nothing else changes.
func TestCommandsApply(t *testing.T) {
	d, f := newTestDaemon(t, reloadBefore)
	ssh := "ssh tcp 198.18.0.101:22 wlc Route p0s/0 la[] [198.18.1.4:22 w1 Route 0/0]"
	dns := "dns udp 198.18.0.100:53 wlc Masq p0s/0 la[] [198.18.1.1:53 w1 Masq 0/0]"
	step := func(name string, err error, want ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantSpecs(t, f.last(t), want...)
	}
	step("-E", d.EditService(control.ServiceSpec{ServiceKey: web(), Scheduler: "sh", Flags: []string{"sh-port"}, Persistent: 30, Netmask: "255.255.0.0"}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.1:8080 w3 Masq 0/0, 198.18.1.2:8080 w1 Masq 0/0, 198.18.1.3:8080 w1 Masq 0/0]", dns, ssh)
	if fl := f.last(t)[0].Flags.Names("sh"); !reflect.DeepEqual(fl, []string{"sh-port"}) {
		t.Errorf("flags %v", fl)
	}
	step("-e", d.EditDest(control.DestSpec{Service: web(), Address: "198.18.1.2", Port: 8080, Weight: intp(7), Upper: u32p(20), Lower: u32p(5)}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.1:8080 w3 Masq 0/0, 198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0]", dns, ssh)
	step("-d", d.DeleteDest(web(), "198.18.1.1", 8080),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0]", dns, ssh)
	step("-a", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.9"}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0, 198.18.1.9:80 w1 Masq 0/0]", dns, ssh)
	step("-D", d.DeleteService(control.ServiceKey{Protocol: "udp", VIP: "198.18.0.100", Port: 53}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0, 198.18.1.9:80 w1 Masq 0/0]", ssh)
	step("-A", d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "udp", VIP: "2001:db8::1", Port: 0}, Persistent: 60}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0, 198.18.1.9:80 w1 Masq 0/0]", ssh,
		"udp-[2001:db8::1]:0 udp 2001:db8::1:0 wlc Masq p1m0s/128 la[] []")
	v6 := control.ServiceKey{Protocol: "udp", VIP: "2001:db8::1", Port: 0}
	step("--add-laddr", d.AddLocalAddr(control.LocalAddr{Service: v6, Address: "2001:db8::a"}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0, 198.18.1.9:80 w1 Masq 0/0]", ssh,
		"udp-[2001:db8::1]:0 udp 2001:db8::1:0 wlc Masq p1m0s/128 la[2001:db8::a] []")
	step("-a fullnat", d.AddDest(control.DestSpec{Service: v6, Address: "2001:db8::2", Port: 53, Forward: "fnat", Weight: intp(0)}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0, 198.18.1.9:80 w1 Masq 0/0]", ssh,
		"udp-[2001:db8::1]:0 udp 2001:db8::1:0 wlc Masq p1m0s/128 la[2001:db8::a] [2001:db8::2:53 w0 FullNat 0/0]")
	step("--del-laddr", d.DeleteLocalAddr(control.LocalAddr{Service: v6, Address: "2001:db8::a"}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0, 198.18.1.9:80 w1 Masq 0/0]", ssh,
		"udp-[2001:db8::1]:0 udp 2001:db8::1:0 wlc Masq p1m0s/128 la[] [2001:db8::2:53 w0 FullNat 0/0]")
	step("-e -g", d.EditDest(control.DestSpec{Service: web(), Address: "198.18.1.9", Port: 80, Forward: "dr"}),
		"web tcp 198.18.0.100:80 sh Masq p30s/16 la[] [198.18.1.2:8080 w7 Masq 20/5, 198.18.1.3:8080 w1 Masq 0/0, 198.18.1.9:80 w1 Route 0/0]", ssh,
		"udp-[2001:db8::1]:0 udp 2001:db8::1:0 wlc Masq p1m0s/128 la[] [2001:db8::2:53 w0 FullNat 0/0]")
	step("-C", d.Clear())
	if len(d.services) != 0 {
		t.Errorf("-C left %d services", len(d.services))
	}
}

// TestCommandRefusals: every command refuses bad input with the error that
// picks govsadm's status (400, 404 or 409), and then nothing is applied and
// nothing changes.
func TestCommandRefusals(t *testing.T) {
	d, f := newTestDaemon(t, reloadBefore)
	if err := d.AddLocalAddr(control.LocalAddr{Service: web(), Address: "198.18.2.1"}); err != nil {
		t.Fatal(err)
	}
	before := specLines(f.last(t))
	n := f.applies()
	ssh := control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.101", Port: 22}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"-A existing", d.AddService(control.ServiceSpec{ServiceKey: web()}), control.ErrExists},
		{"-A bad vip", d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "tcp", VIP: "198.18.0", Port: 80}}), control.ErrInvalid},
		{"-A zoned vip", d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "tcp", VIP: "fe80::1%eth0", Port: 80}}), control.ErrInvalid},
		{"-A bad protocol", d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "sctp", VIP: "198.18.0.110", Port: 80}}), control.ErrInvalid},
		{"-A bad scheduler", d.AddService(control.ServiceSpec{ServiceKey: nokey(), Scheduler: "fastest"}), control.ErrInvalid},
		{"-A bad flag", d.AddService(control.ServiceSpec{ServiceKey: nokey(), Flags: []string{"turbo"}}), control.ErrInvalid},
		{"-A port 0 without -p", d.AddService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.110"}}), control.ErrInvalid},
		{"-A bad netmask", d.AddService(control.ServiceSpec{ServiceKey: nokey(), Persistent: 10, Netmask: "255.0.255.0"}), control.ErrInvalid},
		{"-A netmask too long", d.AddService(control.ServiceSpec{ServiceKey: nokey(), Persistent: 10, Netmask: "33"}), control.ErrInvalid},
		{"-E unknown", d.EditService(control.ServiceSpec{ServiceKey: nokey()}), control.ErrNotFound},
		{"-E bad scheduler", d.EditService(control.ServiceSpec{ServiceKey: web(), Scheduler: "fastest"}), control.ErrInvalid},
		{"-D unknown", d.DeleteService(nokey()), control.ErrNotFound},
		{"-D bad vip", d.DeleteService(control.ServiceKey{Protocol: "tcp", VIP: "x", Port: 80}), control.ErrInvalid},
		{"-D bad protocol", d.DeleteService(control.ServiceKey{Protocol: "icmp", VIP: "198.18.0.100", Port: 80}), control.ErrInvalid},
		{"-a unknown service", d.AddDest(control.DestSpec{Service: nokey(), Address: "198.18.1.1"}), control.ErrNotFound},
		{"-a existing", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.1", Port: 8080}), control.ErrExists},
		{"-a bad address", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1"}), control.ErrInvalid},
		{"-a other family", d.AddDest(control.DestSpec{Service: web(), Address: "2001:db8::1"}), control.ErrInvalid},
		{"-a bad method", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.8", Forward: "teleport"}), control.ErrInvalid},
		{"-a weight too big", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.8", Weight: intp(1 << 31)}), control.ErrInvalid},
		{"-a weight negative", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.8", Weight: intp(-1)}), control.ErrInvalid},
		{"-a dr port mapping", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.8", Port: 8080, Forward: "dr"}), control.ErrInvalid},
		{"-a tun port mapping", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.8", Port: 8080, Forward: "ipip"}), control.ErrInvalid},
		{"-a fullnat without laddr", d.AddDest(control.DestSpec{Service: ssh, Address: "198.18.1.8", Forward: "fullnat"}), control.ErrInvalid},
		{"-a lower above upper", d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.8", Upper: u32p(10), Lower: u32p(11)}), control.ErrInvalid},
		{"-e unknown server", d.EditDest(control.DestSpec{Service: web(), Address: "198.18.1.8", Port: 8080}), control.ErrNotFound},
		{"-e unknown service", d.EditDest(control.DestSpec{Service: nokey(), Address: "198.18.1.1", Port: 8080}), control.ErrNotFound},
		{"-e bad weight", d.EditDest(control.DestSpec{Service: web(), Address: "198.18.1.1", Port: 8080, Weight: intp(1 << 31)}), control.ErrInvalid},
		{"-d unknown server", d.DeleteDest(web(), "198.18.1.8", 8080), control.ErrNotFound},
		{"-d bad address", d.DeleteDest(web(), "nonsense", 8080), control.ErrInvalid},
		{"-d unknown service", d.DeleteDest(nokey(), "198.18.1.1", 8080), control.ErrNotFound},
		{"--add-laddr existing", d.AddLocalAddr(control.LocalAddr{Service: web(), Address: "198.18.2.1"}), control.ErrExists},
		{"--add-laddr other family", d.AddLocalAddr(control.LocalAddr{Service: web(), Address: "2001:db8::1"}), control.ErrInvalid},
		{"--add-laddr unknown service", d.AddLocalAddr(control.LocalAddr{Service: nokey(), Address: "198.18.2.2"}), control.ErrNotFound},
		{"--del-laddr unknown", d.DeleteLocalAddr(control.LocalAddr{Service: web(), Address: "198.18.2.2"}), control.ErrNotFound},
		{"--del-laddr bad", d.DeleteLocalAddr(control.LocalAddr{Service: web(), Address: "x"}), control.ErrInvalid},
		{"--del-laddr unknown service", d.DeleteLocalAddr(control.LocalAddr{Service: nokey(), Address: "198.18.2.1"}), control.ErrNotFound},
		{"--set negative", d.SetTimeouts(control.Timeouts{TCP: -1}), control.ErrInvalid},
		{"-Z unknown", d.Zero(&control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.199", Port: 80}), control.ErrNotFound},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
		for _, other := range []error{control.ErrInvalid, control.ErrNotFound, control.ErrExists} {
			if other != c.want && errors.Is(c.err, other) {
				t.Errorf("%s: %v is also %v", c.name, c.err, other)
			}
		}
	}
	if f.applies() != n {
		t.Errorf("%d applies for refused commands", f.applies()-n)
	}
	wantSpecs(t, d.effectiveSpecs(), before...)
	if len(f.timeouts) != 0 {
		t.Errorf("a refused --set reached the data path: %v", f.timeouts)
	}

	// The data path refusing a change: 400, and the old configuration stays.
	f.applyErr = errors.New("no scheduler slot")
	if err := d.AddDest(control.DestSpec{Service: web(), Address: "198.18.1.8"}); !errors.Is(err, control.ErrInvalid) {
		t.Errorf("a change the data path refuses: %v, want ErrInvalid", err)
	}
	wantSpecs(t, d.effectiveSpecs(), before...)
}

// TestTimeoutsInfoConnections: --set, the header line and -c.
func TestTimeoutsInfoConnections(t *testing.T) {
	d, f := newTestDaemon(t, reloadBefore)
	if err := d.SetTimeouts(control.Timeouts{TCP: 100, TCPFin: 0, UDP: 7}); err != nil {
		t.Fatal(err)
	}
	if got := d.Timeouts(); got != (control.Timeouts{TCP: 100, TCPFin: 120, UDP: 7}) {
		t.Errorf("timeouts %+v, want tcp 100, tcpfin unchanged 120, udp 7", got)
	}
	if len(f.timeouts) != 1 || f.timeouts[0] != d.timeouts {
		t.Errorf("data path timeouts %+v", f.timeouts)
	}
	if in := d.Info(); in.Version == "" || in.Config != d.path || in.ConnTable != d.cfg.Director.ConnTableSize {
		t.Errorf("info %+v", in)
	}
	ap := netip.MustParseAddrPort
	f.conns = []dataplane.Conn{
		{Proto: 6, State: "ESTABLISHED", Expires: 899500 * time.Millisecond, Client: ap("198.18.3.1:40000"), Virtual: ap("198.18.0.100:80"), Dest: ap("198.18.1.1:8080")},
		{Proto: 17, State: "UDP", Expires: time.Second, Client: ap("198.18.3.1:5353"), Virtual: ap("198.18.0.100:53"), Dest: ap("198.18.1.1:53"), Local: ap("198.18.2.1:61000")},
	}
	f.tmpls = []dataplane.Template{
		{Proto: 6, Client: netip.MustParseAddr("198.18.3.0"), Virtual: ap("198.18.0.100:80"), Dest: ap("198.18.1.1:8080"), Expires: 60 * time.Second},
		{Proto: 6, Client: netip.MustParseAddr("198.18.3.0"), Virtual: ap("198.18.0.100:0"), Dest: ap("198.18.1.1:0"), Expires: 2 * time.Second},
	}
	got, err := d.Connections(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []control.Connection{
		{Protocol: "TCP", Expire: 899500, State: "ESTABLISHED", Source: "198.18.3.1:40000", Virtual: "198.18.0.100:80", Dest: "198.18.1.1:8080"},
		{Protocol: "UDP", Expire: 1000, State: "UDP", Source: "198.18.3.1:5353", Virtual: "198.18.0.100:53", Dest: "198.18.1.1:53", Local: "198.18.2.1:61000"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("connections\n got %+v\nwant %+v", got, want)
	}
	got, err = d.Connections(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want,
		control.Connection{Protocol: "TCP", Expire: 60000, State: "NONE", Source: "198.18.3.0:0", Virtual: "198.18.0.100:80", Dest: "198.18.1.1:8080", Template: true},
		control.Connection{Protocol: "IP", Expire: 2000, State: "NONE", Source: "198.18.3.0:0", Virtual: "198.18.0.100:0", Dest: "198.18.1.1:0", Template: true})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("connections with templates\n got %+v\nwant %+v", got, want)
	}
	f.connErr = errors.New("worker stuck")
	if _, err := d.Connections(context.Background(), false); err == nil {
		t.Error("a failed listing gave no error")
	}
}
