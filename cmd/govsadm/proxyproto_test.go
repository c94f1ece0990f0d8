package main

import (
	"strings"
	"testing"

	"github.com/govs/govs/control"
)

// TestParseClientAddr: --proxy-protocol takes its version in every
// spelling (--proxy-protocol v2, --proxy-protocol=2), normalised to the
// API's; --toa is a switch that takes a value only after '='; both only on
// -A and -E, and only turned on for a TCP service.
func TestParseClientAddr(t *testing.T) {
	for _, tc := range []struct {
		args      string
		proxy     string
		hasProxy  bool
		toa       bool
		hasTOA    bool
		scheduler string
	}{
		{"-A -t 198.18.0.100:80 --proxy-protocol v2", "v2", true, false, false, "wlc"},
		{"-A -t 198.18.0.100:80 --proxy-protocol=V1 -s rr", "v1", true, false, false, "rr"},
		{"-E -t 198.18.0.100:80 --proxy-protocol 2 --toa", "v2", true, true, true, "wlc"},
		{"-E -t 198.18.0.100:80 --toa -s rr", "", false, true, true, "rr"},
		{"-E -t 198.18.0.100:80 --toa=false", "", false, false, true, "wlc"},
		{"-E -t 198.18.0.100:80 --toa=true --proxy-protocol none", "none", true, true, true, "wlc"},
		{"-A -t 198.18.0.100:80 -s rr", "", false, false, false, "rr"},
		// Turning them off is fine on any service.
		{"-E -u [2001:db8::100]:53 --proxy-protocol none --toa=false", "none", true, false, true, "wlc"},
		{"-E -f 1 --proxy-protocol off", "none", true, false, false, "wlc"},
	} {
		c, err := testParser().parse(strings.Fields(tc.args))
		if err != nil {
			t.Errorf("%s: %v", tc.args, err)
			continue
		}
		if c.proxyProtocol != tc.proxy || c.has(optProxyProtocol) != tc.hasProxy || c.toa != tc.toa || c.has(optTOA) != tc.hasTOA || c.scheduler != tc.scheduler {
			t.Errorf("%s: proxy %q (%v), toa %v (%v), scheduler %s; want %q (%v), %v (%v), %s", tc.args,
				c.proxyProtocol, c.has(optProxyProtocol), c.toa, c.has(optTOA), c.scheduler, tc.proxy, tc.hasProxy, tc.toa, tc.hasTOA, tc.scheduler)
		}
	}
	for _, tc := range []struct{ args, msg string }{
		{"-A -t 198.18.0.100:80 --proxy-protocol v3", "illegal proxy protocol version `v3' specified (v1, v2 or none)"},
		{"-A -t 198.18.0.100:80 --proxy-protocol=", "illegal proxy protocol version `' specified (v1, v2 or none)"},
		{"-A -t 198.18.0.100:80 --proxy-protocol", "option `--proxy-protocol' requires an argument"},
		{"-A -t 198.18.0.100:80 --toa=maybe", "illegal toa value `maybe' specified (--toa, --toa=true or --toa=false)"},
		{"-A -t 198.18.0.100:80 --toa --toa", "multiple 'toa' options specified"},
		{"-A -t 198.18.0.100:80 --proxy-protocol v1 --proxy-protocol v2", "multiple 'proxy-protocol' options specified"},
		{"-A -u 198.18.0.100:53 --proxy-protocol v2", "--proxy-protocol and --toa are only for TCP services (-t)"},
		{"-E -f 1 --toa", "--proxy-protocol and --toa are only for TCP services (-t)"},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 --toa", "Illegal 'toa' option with the 'add-server' command"},
		{"-L --proxy-protocol v2", "Illegal 'proxy-protocol' option with the 'list' command"},
		{"-D -t 198.18.0.100:80 --proxy-protocol v2", "Illegal 'proxy-protocol' option with the 'delete-service' command"},
	} {
		_, err := testParser().parse(strings.Fields(tc.args))
		if err == nil || err.Error() != tc.msg {
			t.Errorf("%s: error %v, want %q", tc.args, err, tc.msg)
		}
	}
	// A bare --toa does not take the next word: it stays an argument.
	if _, err := testParser().parse(strings.Fields("-A -t 198.18.0.100:80 --toa false")); err == nil || err.Error() != "unexpected argument false" {
		t.Errorf("--toa false: %v, want the word refused", err)
	}
}

// TestClientAddrCommands: -A sets them, -L lists them after everything
// ipvsadm prints and only when set, -S writes them on the -A line, -E
// without them keeps them and with none / --toa=false drops them.
func TestClientAddrCommands(t *testing.T) {
	b := newFakeBackend()
	socket := serve(t, b)
	for _, args := range [][]string{
		{"-A", "-t", "198.18.0.100:80", "-s", "rr", "-p", "60", "--proxy-protocol", "v2", "--toa"},
		{"--add-laddr", "-t", "198.18.0.100:80", "-z", "198.18.1.250"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.1.3:8081", "--fullnat"},
		{"-A", "-t", "[2001:db8::100]:443", "--proxy-protocol=v1"},
		{"-A", "-t", "198.18.0.101:80", "-s", "rr"},
	} {
		mustRun(t, socket, args...)
	}
	wantList := `Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 rr persistent 60 proxy-protocol v2 toa
  -> 198.18.1.3:8081              FullNat 1      0          0         
TCP  198.18.0.101:80 rr
TCP  [2001:db8::100]:443 wlc proxy-protocol v1
`
	if got := mustRun(t, socket, "-Ln"); !strings.HasSuffix(got, wantList) {
		t.Errorf("-Ln:\n%s\nwant it to end\n%s", got, wantList)
	}
	if got := mustRun(t, socket, "-Ln", "-t", "198.18.0.100:80"); !strings.Contains(got, "\nTCP  198.18.0.100:80 rr persistent 60 proxy-protocol v2 toa\n") {
		t.Errorf("-Ln -t:\n%s", got)
	}
	// --stats and --rate have numbers where the flags go: nothing added.
	if got := mustRun(t, socket, "-Ln", "--stats"); strings.Contains(got, "proxy") || strings.Contains(got, "toa") {
		t.Errorf("-Ln --stats:\n%s", got)
	}
	json := mustRun(t, socket, "-Ln", "--json")
	if !strings.Contains(json, `"proxy_protocol": "v2",`) || !strings.Contains(json, `"toa": true,`) || strings.Count(json, `"proxy_protocol"`) != 2 {
		t.Errorf("-Ln --json:\n%s", json)
	}
	wantSave := `-A -t 198.18.0.100:80 -s rr -p 60 --proxy-protocol v2 --toa
--add-laddr -t 198.18.0.100:80 -z 198.18.1.250
-a -t 198.18.0.100:80 -r 198.18.1.3:8081 --fullnat -w 1
-A -t 198.18.0.101:80 -s rr
-A -t [2001:db8::100]:443 -s wlc --proxy-protocol v1
`
	saved := mustRun(t, socket, "-S", "-n")
	if saved != wantSave {
		t.Errorf("-S:\n%s\nwant\n%s", saved, wantSave)
	}

	// -S, -C, -R: the same table.
	mustRun(t, socket, "-C")
	if r := runAdm(t, socket, saved, "-R"); r.code != 0 {
		t.Fatalf("-R: exit %d: %s", r.code, r.stderr)
	}
	if got := mustRun(t, socket, "-S", "-n"); got != saved {
		t.Errorf("after -R, -S gives\n%s\nwant\n%s", got, saved)
	}

	// -E: left out, they stay; given, they change.
	mustRun(t, socket, "-E", "-t", "198.18.0.100:80", "-s", "wrr")
	mustRun(t, socket, "-E", "-t", "[2001:db8::100]:443", "--proxy-protocol", "none")
	mustRun(t, socket, "-E", "-t", "198.18.0.101:80", "--toa")
	want := `-A -t 198.18.0.100:80 -s wrr --proxy-protocol v2 --toa
--add-laddr -t 198.18.0.100:80 -z 198.18.1.250
-a -t 198.18.0.100:80 -r 198.18.1.3:8081 --fullnat -w 1
-A -t 198.18.0.101:80 -s wlc --toa
-A -t [2001:db8::100]:443 -s wlc
`
	if got := mustRun(t, socket, "-S", "-n"); got != want {
		t.Errorf("after -E:\n%s\nwant\n%s", got, want)
	}
	mustRun(t, socket, "-E", "-t", "198.18.0.100:80", "--toa=false")
	if got := mustRun(t, socket, "-S", "-n"); !strings.HasPrefix(got, "-A -t 198.18.0.100:80 -s wlc --proxy-protocol v2\n") {
		t.Errorf("after -E --toa=false:\n%s", got)
	}
	var sent []control.Service
	for _, s := range b.Services() {
		if s.TOA || s.ProxyProtocol != "" {
			sent = append(sent, s)
		}
	}
	if len(sent) != 2 {
		t.Errorf("services with a header or toa: %+v", sent)
	}
}

// TestClientAddrRefused: govsd's refusal of the options (a real server that
// is not full-NAT) comes out in its own words, exit status 1, and changes
// nothing; a version govsadm would not send is refused by the API itself.
func TestClientAddrRefused(t *testing.T) {
	b := newFakeBackend()
	socket := serve(t, b)
	mustRun(t, socket, "-A", "-t", "198.18.0.100:80", "-s", "rr")
	mustRun(t, socket, "-a", "-t", "198.18.0.100:80", "-r", "198.18.1.1:8080", "-m")
	r := runAdm(t, socket, "", "-E", "-t", "198.18.0.100:80", "-s", "rr", "--proxy-protocol=v2")
	if want := "invalid: the proxy protocol and toa need full-NAT real servers (--fullnat): 198.18.1.1 uses Masq\n"; r.code != exitError || r.stderr != want {
		t.Errorf("-E --proxy-protocol=v2 on a NAT service: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
	if got := mustRun(t, socket, "-S", "-n"); strings.Contains(got, "proxy") {
		t.Errorf("a refused -E changed the service:\n%s", got)
	}
	c := control.NewClient(socket)
	err := c.EditService(control.ServiceSpec{ServiceKey: control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.100", Port: 80}, ProxyProtocol: "v9"})
	if err == nil || !strings.Contains(err.Error(), `unknown proxy protocol version "v9"`) {
		t.Errorf("proxy_protocol v9 through the API: %v", err)
	}
}
