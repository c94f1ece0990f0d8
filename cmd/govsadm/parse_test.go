package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/govs/govs/control"
)

func testParser() *parser {
	return &parser{getenv: func(string) string { return "" }, res: fakeResolver{}}
}

var (
	vip80  = control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.100", Port: 80}
	vip53u = control.ServiceKey{Protocol: "udp", VIP: "2001:db8::100", Port: 53}
)

// want is the part of a parsed command a case checks; zero fields are
// compared too, so every case states the command completely.
type want struct {
	kind       cmdKind
	service    control.ServiceKey
	scheduler  string
	schedFlags []string
	persistent int
	netmask    string
	dest       string
	destPort   uint16
	forward    string
	weight     int
	upper      uint32
	lower      uint32
	laddr      string
	timeouts   control.Timeouts
	format     listFormat
	socket     string
	opts       optBit
}

func got(c *command) want {
	w := want{
		kind: c.kind, service: c.service, scheduler: c.scheduler, schedFlags: c.schedFlags,
		persistent: c.persistent, netmask: c.netmask, destPort: c.destPort, forward: c.forward,
		weight: c.weight, upper: c.upper, lower: c.lower, timeouts: c.timeouts, format: c.format,
		socket: c.socket, opts: c.opts,
	}
	if c.destIP.IsValid() {
		w.dest = c.destIP.String()
	}
	if c.laddr.IsValid() {
		w.laddr = c.laddr.String()
	}
	return w
}

func TestParseCommands(t *testing.T) {
	const sock = control.DefaultSocket
	svc := optService
	cases := []struct {
		args string
		want want
	}{
		{"", want{kind: cmdList, socket: sock}},
		{"-A -t 198.18.0.100:80 -s rr", want{kind: cmdAddService, service: vip80, scheduler: "rr", socket: sock, opts: svc | optScheduler}},
		{"-A -t 198.18.0.100:80", want{kind: cmdAddService, service: vip80, scheduler: "wlc", socket: sock, opts: svc}},
		{"-At 198.18.0.100:80", want{kind: cmdAddService, service: vip80, scheduler: "wlc", socket: sock, opts: svc}},
		{"--add-service --tcp-service=198.18.0.100:80 --scheduler sh --sched-flags sh-fallback,sh-port",
			want{kind: cmdAddService, service: vip80, scheduler: "sh", schedFlags: []string{"sh-fallback", "sh-port"}, socket: sock, opts: svc | optScheduler | optSchedFlags}},
		{"-E -t 198.18.0.100:80 -s mh -b mh-port", want{kind: cmdEditService, service: vip80, scheduler: "mh", schedFlags: []string{"mh-port"}, socket: sock, opts: svc | optScheduler | optSchedFlags}},
		{"-A -t 198.18.0.100:80 -b flag-1", want{kind: cmdAddService, service: vip80, scheduler: "wlc", schedFlags: []string{"flag-1"}, socket: sock, opts: svc | optSchedFlags}},
		{"-A -u [2001:db8::100]:53 -s rr -p", want{kind: cmdAddService, service: vip53u, scheduler: "rr", persistent: 300, socket: sock, opts: svc | optScheduler | optPersistent}},
		{"-A -t 198.18.0.100:80 -p 60 -M 255.255.255.0", want{kind: cmdAddService, service: vip80, scheduler: "wlc", persistent: 60, netmask: "255.255.255.0", socket: sock, opts: svc | optPersistent | optNetmask}},
		{"-A -t 198.18.0.100:80 -p60 -M /24", want{kind: cmdAddService, service: vip80, scheduler: "wlc", persistent: 60, netmask: "255.255.255.0", socket: sock, opts: svc | optPersistent | optNetmask}},
		{"-A -t 198.18.0.100:80 --persistent=600", want{kind: cmdAddService, service: vip80, scheduler: "wlc", persistent: 600, socket: sock, opts: svc | optPersistent}},
		{"-A -t 198.18.0.100:80 -p -s rr", want{kind: cmdAddService, service: vip80, scheduler: "rr", persistent: 300, socket: sock, opts: svc | optPersistent | optScheduler}},
		{"-A -u [2001:db8::100]:53 -p -M 64", want{kind: cmdAddService, service: vip53u, scheduler: "wlc", persistent: 300, netmask: "64", socket: sock, opts: svc | optPersistent | optNetmask}},
		{"-A -t 198.18.0.100:0 -p", want{kind: cmdAddService, service: control.ServiceKey{Protocol: "tcp", VIP: "198.18.0.100"}, scheduler: "wlc", persistent: 300, socket: sock, opts: svc | optPersistent}},
		{"-A -t 198.18.0.100:http", want{kind: cmdAddService, service: vip80, scheduler: "wlc", socket: sock, opts: svc}},
		{"-A -t web1.test:80", want{kind: cmdAddService, service: control.ServiceKey{Protocol: "tcp", VIP: "198.18.1.1", Port: 80}, scheduler: "wlc", socket: sock, opts: svc}},
		{"-A -u 2001:db8::100 -p", want{kind: cmdAddService, service: control.ServiceKey{Protocol: "udp", VIP: "2001:db8::100"}, scheduler: "wlc", persistent: 300, socket: sock, opts: svc | optPersistent}},
		{"-D -t 198.18.0.100:80", want{kind: cmdDelService, service: vip80, socket: sock, opts: svc}},
		{"--delete-service --udp-service [2001:db8::100]:domain", want{kind: cmdDelService, service: vip53u, socket: sock, opts: svc}},

		{"-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m -w 1", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 8080, forward: "nat", weight: 1, socket: sock, opts: svc | optServer | optForward | optWeight}},
		// ipvsadm's default forwarding is direct routing, which keeps the
		// service's port.
		{"-a -t 198.18.0.100:80 -r 198.18.1.1:8080", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 80, forward: "dr", weight: 1, socket: sock, opts: svc | optServer}},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -m", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 80, forward: "nat", weight: 1, socket: sock, opts: svc | optServer | optForward}},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -i -w 2", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 80, forward: "tun", weight: 2, socket: sock, opts: svc | optServer | optForward | optWeight}},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -g", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 80, forward: "dr", weight: 1, socket: sock, opts: svc | optServer | optForward}},
		{"--add-server --tcp-service 198.18.0.100:80 --real-server 198.18.1.1:8080 --fullnat --weight 0 --u-threshold 100 --l-threshold 50",
			want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 8080, forward: "fullnat", upper: 100, lower: 50, socket: sock, opts: svc | optServer | optForward | optWeight | optUThreshold | optLThreshold}},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -mw3", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 8080, forward: "nat", weight: 3, socket: sock, opts: svc | optServer | optForward | optWeight}},
		{"-a -u [2001:db8::100]:53 -r [2001:db8::1]:5353 --masquerading", want{kind: cmdAddDest, service: vip53u, dest: "2001:db8::1", destPort: 5353, forward: "nat", weight: 1, socket: sock, opts: svc | optServer | optForward}},
		{"-a -u [2001:db8::100]:53 -r 2001:db8::1 -m", want{kind: cmdAddDest, service: vip53u, dest: "2001:db8::1", destPort: 53, forward: "nat", weight: 1, socket: sock, opts: svc | optServer | optForward}},
		// --tun-type ipip is what -i does; the largest weight is ipvsadm's.
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -i --tun-type ipip", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 80, forward: "tun", weight: 1, socket: sock, opts: svc | optServer | optForward}},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -m -w 2147483647", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 80, forward: "nat", weight: 2147483647, socket: sock, opts: svc | optServer | optForward | optWeight}},
		{"-a -t 198.18.0.100:80 -r web1.test:http --ipip", want{kind: cmdAddDest, service: vip80, dest: "198.18.1.1", destPort: 80, forward: "tun", weight: 1, socket: sock, opts: svc | optServer | optForward}},
		// Tunnelling may cross address families.
		{"-a -t 198.18.0.100:80 -r [2001:db8::1]:80 -i", want{kind: cmdAddDest, service: vip80, dest: "2001:db8::1", destPort: 80, forward: "tun", weight: 1, socket: sock, opts: svc | optServer | optForward}},
		// -e sends only what is given.
		{"-e -t 198.18.0.100:80 -r 198.18.1.1:8080 -w 5", want{kind: cmdEditDest, service: vip80, dest: "198.18.1.1", destPort: 8080, weight: 5, socket: sock, opts: svc | optServer | optWeight}},
		{"--edit-server -t 198.18.0.100:80 -r 198.18.1.1:8080 -x 10", want{kind: cmdEditDest, service: vip80, dest: "198.18.1.1", destPort: 8080, upper: 10, socket: sock, opts: svc | optServer | optUThreshold}},
		{"-d -t 198.18.0.100:80 -r 198.18.1.1", want{kind: cmdDelDest, service: vip80, dest: "198.18.1.1", destPort: 80, socket: sock, opts: svc | optServer}},
		{"-d -t 198.18.0.100:80 -r 198.18.1.1:8080", want{kind: cmdDelDest, service: vip80, dest: "198.18.1.1", destPort: 8080, socket: sock, opts: svc | optServer}},

		{"-Ln", want{kind: cmdList, format: listFormat{numeric: true}, socket: sock, opts: optNumeric}},
		{"-L -n", want{kind: cmdList, format: listFormat{numeric: true}, socket: sock, opts: optNumeric}},
		{"-l", want{kind: cmdList, socket: sock}},
		{"--list --numeric --sort", want{kind: cmdList, format: listFormat{numeric: true}, socket: sock, opts: optNumeric}},
		{"-Lnc", want{kind: cmdList, format: listFormat{numeric: true}, socket: sock, opts: optNumeric | optConnection}},
		{"-Lnc --persistent-conn", want{kind: cmdList, format: listFormat{numeric: true, persistentConn: true}, socket: sock, opts: optNumeric | optConnection | optPersistentConn}},
		{"-L -n --stats --exact", want{kind: cmdList, format: listFormat{numeric: true, stats: true, exact: true}, socket: sock, opts: optNumeric | optStats | optExact}},
		{"-Ln --rate -X", want{kind: cmdList, format: listFormat{numeric: true, rate: true, exact: true}, socket: sock, opts: optNumeric | optRate | optExact}},
		{"-Ln --thresholds --nosort", want{kind: cmdList, format: listFormat{numeric: true, thresholds: true, nosort: true}, socket: sock, opts: optNumeric | optThresholds | optNoSort}},
		{"-Ln --persistent-conn --json", want{kind: cmdList, format: listFormat{numeric: true, persistentConn: true, json: true}, socket: sock, opts: optNumeric | optPersistentConn | optJSON}},
		{"-L --timeout", want{kind: cmdList, socket: sock, opts: optTimeout}},
		{"-L --bgp", want{kind: cmdList, socket: sock, opts: optBGP}},
		{"-Ln --bgp --json", want{kind: cmdList, format: listFormat{numeric: true, json: true}, socket: sock, opts: optNumeric | optBGP | optJSON}},
		{"-Ln -t 198.18.0.100:80", want{kind: cmdList, service: vip80, format: listFormat{numeric: true}, socket: sock, opts: optNumeric | svc}},
		{"-S -n", want{kind: cmdSave, format: listFormat{numeric: true}, socket: sock, opts: optNumeric}},
		{"--save", want{kind: cmdSave, socket: sock}},
		{"-R", want{kind: cmdRestore, socket: sock}},
		{"--restore", want{kind: cmdRestore, socket: sock}},
		{"-C", want{kind: cmdClear, socket: sock}},
		{"--clear", want{kind: cmdClear, socket: sock}},
		{"-Z", want{kind: cmdZero, socket: sock}},
		{"--zero -t 198.18.0.100:80", want{kind: cmdZero, service: vip80, socket: sock, opts: svc}},
		{"--set 900 120 300", want{kind: cmdSetTimeouts, timeouts: control.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}, socket: sock}},
		{"--set 0 0 60", want{kind: cmdSetTimeouts, timeouts: control.Timeouts{UDP: 60}, socket: sock}},
		{"--add-laddr -t 198.18.0.100:80 -z 198.18.1.250", want{kind: cmdAddLaddr, service: vip80, laddr: "198.18.1.250", socket: sock, opts: svc | optLaddr}},
		{"-P -t 198.18.0.100:80 --laddr=198.18.1.251", want{kind: cmdAddLaddr, service: vip80, laddr: "198.18.1.251", socket: sock, opts: svc | optLaddr}},
		{"--del-laddr -u [2001:db8::100]:53 -z 2001:db8::fa", want{kind: cmdDelLaddr, service: vip53u, laddr: "2001:db8::fa", socket: sock, opts: svc | optLaddr}},
		{"--reload", want{kind: cmdReload, socket: sock}},
		{"--shutdown", want{kind: cmdShutdown, socket: sock}},
		{"--counters --json", want{kind: cmdCounters, format: listFormat{json: true}, socket: sock, opts: optJSON}},
		{"--socket /tmp/g.sock -Ln", want{kind: cmdList, format: listFormat{numeric: true}, socket: "/tmp/g.sock", opts: optNumeric}},
		{"--socket=/tmp/g.sock", want{kind: cmdList, socket: "/tmp/g.sock"}},
		{"-h", want{kind: cmdHelp, socket: sock}},
		{"-A -t 198.18.0.100:80 --help", want{kind: cmdHelp, service: vip80, socket: sock, opts: svc}},
		{"--version", want{kind: cmdVersion, socket: sock}},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			c, err := testParser().parse(strings.Fields(tc.args))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if g := got(c); !reflect.DeepEqual(g, tc.want) {
				t.Errorf("got  %+v\nwant %+v", g, tc.want)
			}
		})
	}
}

func TestParseSocketFromEnvironment(t *testing.T) {
	p := &parser{getenv: func(k string) string {
		if k == "GOVS_SOCKET" {
			return "/run/other.sock"
		}
		return ""
	}}
	c, err := p.parse([]string{"-Ln"})
	if err != nil || c.socket != "/run/other.sock" {
		t.Fatalf("socket %q, err %v; want $GOVS_SOCKET", c.socket, err)
	}
	c, err = p.parse([]string{"-Ln", "--socket", "/run/flag.sock"})
	if err != nil || c.socket != "/run/flag.sock" {
		t.Fatalf("socket %q, err %v; want --socket over $GOVS_SOCKET", c.socket, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		args    string
		msg     string
		tryHelp bool
	}{
		// ipvsadm's command/option table, checked in its order.
		{"-a -t 198.18.0.100:80", "You need to supply the 'real-server' option for the 'add-server' command", false},
		{"-a -r 198.18.1.1", "You need to supply the 'service-address' option for the 'add-server' command", false},
		{"-A -r 198.18.1.1", "You need to supply the 'service-address' option for the 'add-service' command", false},
		{"-A -t 198.18.0.100:80 -w 3", "Illegal 'weight' option with the 'add-service' command", false},
		{"-A -t 198.18.0.100:80 -r 198.18.1.1", "Illegal 'real-server' option with the 'add-service' command", false},
		{"-D -t 198.18.0.100:80 -s rr", "Illegal 'scheduler' option with the 'delete-service' command", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -p", "Illegal 'persistent' option with the 'add-server' command", false},
		{"-d -t 198.18.0.100:80 -r 198.18.1.1 -w 2", "Illegal 'weight' option with the 'delete-server' command", false},
		{"-C -n", "Illegal 'numeric' option with the 'flush' command", false},
		{"-S -c", "Illegal 'connection' option with the 'save' command", false},
		{"-A -t 198.18.0.100:80 --json", "Illegal 'json' option with the 'add-service' command", false},
		{"-Z -r 198.18.1.1", "Illegal 'real-server' option with the 'zero' command", false},
		{"--set 1 2 3 -n", "Illegal 'numeric' option with the 'set' command", false},
		{"--add-laddr -t 198.18.0.100:80", "You need to supply the 'laddr' option for the 'add-laddr' command", false},
		{"--reload -n", "Illegal 'numeric' option with the 'reload' command", false},
		{"-L -c --timeout", "The option 'timeout' conflicts with the 'connection' option in the 'list' command", false},
		{"-L -c -t 198.18.0.100:80", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", false},
		{"-L -c --stats", "options conflicts in the list command", false},
		{"-L --timeout --rate", "options conflicts in the list command", false},
		{"-L --timeout --persistent-conn", "options conflicts in the list command", false},
		{"-A -t 198.18.0.100:80 -D", "multiple commands specified", false},
		{"-Ln -S", "multiple commands specified", false},
		{"-A -t 198.18.0.100:80 -u 198.18.0.100:53", "multiple 'service-address' options specified", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -g -m", "multiple 'forwarding-method' options specified", false},
		{"-Lnn", "multiple 'numeric' options specified", false},

		// Addresses.
		{"-A -t 300.1.1.1:80", "illegal virtual server address[:port] specified", false},
		{"-A -t 198.18.0.100:65536", "illegal virtual server address[:port] specified", false},
		{"-A -t 80", "illegal virtual server address[:port] specified", false},
		{"-A -t 198.18.0.100:nosuchport", "illegal virtual server address[:port] specified", false},
		{"-A -t nosuchhost:80", "illegal virtual server address[:port] specified", false},
		{"-A -t [2001:db8::1:80", "illegal virtual server address[:port] specified", false},
		{"-A -t [198.18.0.100]:80", "illegal virtual server address[:port] specified", false},
		{"-A -t [2001:db8::1]80", "illegal virtual server address[:port] specified", false},
		{"-A -t fe80::1%eth0", "illegal virtual server address[:port] specified", false},
		{"-A -t :80", "illegal virtual server address[:port] specified", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1:-1", "illegal real server address[:port] specified", false},
		{"-a -t 198.18.0.100:80 -r bad..addr", "illegal real server address[:port] specified", false},
		{"-a -t 198.18.0.100:80 -r [2001:db8::1]:80 -m", "Different address family is allowed only for tunneling servers", false},
		{"-a -t 198.18.0.100:80 -r [2001:db8::1]:80", "Different address family is allowed only for tunneling servers", false},
		{"--add-laddr -t 198.18.0.100:80 -z 198.18.1", "illegal local address specified", false},

		// Values.
		{"-A -t 198.18.0.100", "Zero port specified for non-persistent service", false},
		{"-E -t 198.18.0.100:0 -s rr", "Zero port specified for non-persistent service", false},
		{"-A -t 198.18.0.100:80 -p 0", "invalid timeout value `0' specified", false},
		{"-A -t 198.18.0.100:80 -p 2678401", "invalid timeout value `2678401' specified", false},
		{"-A -t 198.18.0.100:80 -p=5", "invalid timeout value `=5' specified", false},
		{"-A -t 198.18.0.100:80 -s", "option `-s' requires an argument", false},
		{"-A -t 198.18.0.100:80 -s rr -b sh-port", "incompatible scheduler flag `sh-port'", false},
		{"-A -t 198.18.0.100:80 -b mh-fallback", "incompatible scheduler flag `mh-fallback'", false},
		{"-A -t 198.18.0.100:80 -s sh -b sh-port,bogus", "invalid scheduler flag `bogus'", false},
		{"-A -t 198.18.0.100:80 -p -M 255.0.255.0", "illegal virtual server persistent mask specified", false},
		{"-A -t 198.18.0.100:80 -p -M 33", "illegal virtual server persistent mask specified", false},
		{"-A -t [2001:db8::1]:80 -p -M 129", "illegal ipv6 netmask specified", false},
		{"-A -t [2001:db8::1]:80 -p -M 255.255.255.0", "illegal ipv6 netmask specified", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -w 2147483648", "illegal weight specified", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -w -1", "illegal weight specified", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -w x", "illegal weight specified", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -x -1", "illegal u_threshold specified", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -y 1.5", "illegal l_threshold specified", false},
		{"--set 900 120", "--set option requires 3 timeout values", false},
		{"--set 900 120 x", "invalid timeout value `x' specified", false},
		{"--set 900 120 2678401", "invalid timeout value `2678401' specified", false},
		{"--set 1 2 3 4", "unexpected argument 4", false},
		{"-L foo", "unexpected argument foo", false},

		// The command line itself.
		{"-n", "no command specified", true},
		{"--json", "no command specified", true},
		{"198.18.0.100", "no command specified", true},
		{"--bogus", "unknown option `--bogus'", true},
		{"-Lq", "unknown option `-q'", true},
		{"-A -t", "option `-t' requires an argument", false},
		{"--list=x", "option `--list' does not take an argument", false},
		{"--socket", "option `--socket' requires an argument", false},
		{"-A -f 0", "illegal virtual server firewall-mark specified", false},
		{"-A --sctp-service 198.18.0.100:80", "option `--sctp-service': SCTP services are not supported by govsd", false},
		{"--start-daemon master", "You need to supply the 'mcast-interface' option for the 'start-daemon' command", false},
		{"--start-daemon master --mcast-interface eth1 --sync-peer 198.18.1.2 --mcast-group 239.255.81.49", "--mcast-group and --sync-peer exclude each other (multicast or unicast sync)", false},
		{"--start-daemon master --mcast-interface eth1 --mcast-group 239.255.81.49 --sync-peer 198.18.1.2", "--mcast-group and --sync-peer exclude each other (multicast or unicast sync)", false},
		{"--start-daemon master --mcast-interface eth1 --sync-peer 239.255.81.49", `illegal sync-peer address "239.255.81.49" specified`, false},
		{"--start-daemon master --mcast-interface eth1 --sync-peer 0.0.0.0", `illegal sync-peer address "0.0.0.0" specified`, false},
		{"--start-daemon master --mcast-interface eth1 --sync-peer fe80::1%eth1", `illegal sync-peer address "fe80::1%eth1" specified`, false},
		{"--start-daemon master --mcast-interface eth1 --sync-peer dira", `illegal sync-peer address "dira" specified`, false},
		{"--start-daemon master --mcast-interface eth1 --sync-peer 198.18.1.2 --sync-peer ::ffff:198.18.1.2", "sync-peer 198.18.1.2 specified twice", false},
		{"-L --daemon --sync-peer 198.18.1.2", "Illegal 'sync-peer' option with the 'list' command", false},
		{"-L --bgp --daemon", "The option 'bgp' conflicts with the 'daemon' option in the 'list' command", false},
		{"-L --bgp -c", "The option 'bgp' conflicts with the 'connection' option in the 'list' command", false},
		{"-A -t 198.18.0.100:80 --bgp", "Illegal 'bgp' option with the 'add-service' command", false},
		{"--start-daemon master --mcast-interface eth1 --mcast-ttl 2", "option `--mcast-ttl': not supported by govsd's sync daemon (messages are sized to the path MTU, TTL is 1)", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -i --tun-type gue", "option `--tun-type': tunnel type gue is not supported: govsd tunnels with IPIP only (--tun-type ipip)", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -i --tun-type gre", "option `--tun-type': tunnel type gre is not supported: govsd tunnels with IPIP only (--tun-type ipip)", false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -i --tun-type vxlan", `illegal tunnel type "vxlan" specified (govsd tunnels with ipip)`, false},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1 -m --tun-type ipip", "--tun-type is only for tunnelling servers (-i)", false},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			c, err := testParser().parse(strings.Fields(tc.args))
			if err == nil {
				t.Fatalf("parsed as %+v; want error %q", got(c), tc.msg)
			}
			var u *usageError
			if !errors.As(err, &u) {
				t.Fatalf("error %v is not a usage error", err)
			}
			if u.msg != tc.msg || u.tryHelp != tc.tryHelp {
				t.Errorf("error %q (try help %v); want %q (%v)", u.msg, u.tryHelp, tc.msg, tc.tryHelp)
			}
		})
	}
}

func TestParseRestoreLine(t *testing.T) {
	p := &parser{res: fakeResolver{}, inRestore: true}
	for args, msg := range map[string]string{
		"-R":                 "-R is not allowed in restore input",
		"--socket /x -C":     "--socket is not allowed in restore input",
		"-A -t 198.18.0.100": "Zero port specified for non-persistent service",
	} {
		if _, err := p.parse(strings.Fields(args)); err == nil || err.Error() != msg {
			t.Errorf("%s: error %v; want %q", args, err, msg)
		}
	}
	if _, err := p.parse(strings.Fields("-A -t 198.18.0.100:80 -s rr")); err != nil {
		t.Errorf("a -S line: %v", err)
	}
}

func TestLargeNum(t *testing.T) {
	cases := []struct {
		n           uint64
		short, full string
	}{
		{0, "        0", "        0"},
		{99_999_999, " 99999999", " 99999999"},
		{100_000_000, "  100000K", " 100000000"},
		{999_999_999, "  999999K", " 999999999"},
		{1_000_000_000, "    1000M", " 1000000000"},
		{99_999_999_999, "   99999M", " 99999999999"},
		{100_000_000_000, "     100G", " 100000000000"},
		{100_000_000_000_000, "     100T", " 100000000000000"},
		{18446744073709551615, "18446744T", " 18446744073709551615"},
	}
	for _, tc := range cases {
		if got := largeNum(tc.n, false); got != tc.short {
			t.Errorf("largeNum(%d) = %q; want %q", tc.n, got, tc.short)
		}
		if got := largeNum(tc.n, true); got != tc.full {
			t.Errorf("largeNum(%d, exact) = %q; want %q", tc.n, got, tc.full)
		}
	}
}

func TestSchedFlagNames(t *testing.T) {
	cases := []struct {
		sched string
		in    []string
		want  []string
	}{
		{"sh", []string{"sh-fallback", "sh-port"}, []string{"sh-fallback", "sh-port"}},
		{"mh", []string{"sh-fallback"}, []string{"mh-fallback"}},
		{"wlc", []string{"sh-fallback", "sh-port"}, []string{"flag-1", "flag-2"}},
		{"rr", []string{"flag-3"}, []string{"flag-3"}},
		{"sh", []string{"flag-1", "sh-fallback"}, []string{"sh-fallback"}},
	}
	for _, tc := range cases {
		if got := schedFlagNames(tc.sched, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("schedFlagNames(%s, %v) = %v; want %v", tc.sched, tc.in, got, tc.want)
		}
	}
}

// --start-daemon: multicast by default, unicast with one --sync-peer per
// peer (govs's syntax; ipvsadm has none).
func TestParseSyncDaemon(t *testing.T) {
	cases := []struct {
		args string
		want control.SyncDaemon
		opts optBit
	}{
		{"--start-daemon master --mcast-interface eth1",
			control.SyncDaemon{Role: "master", Interface: "eth1"}, optMcastInterface},
		{"--start-daemon backup --mcast-interface eth1 --syncid 7 --mcast-group 239.255.81.50 --mcast-port 9000 --sync-key /k",
			control.SyncDaemon{Role: "backup", Interface: "eth1", SyncID: 7, Group: "239.255.81.50", Port: 9000, KeyFile: "/k"},
			optMcastInterface | optSyncID | optMcastGroup | optMcastPort | optSyncKey},
		{"--start-daemon master --mcast-interface eth1 --sync-peer 198.18.1.12",
			control.SyncDaemon{Role: "master", Interface: "eth1", Peers: []string{"198.18.1.12"}}, optMcastInterface | optSyncPeer},
		{"--start-daemon backup --sync-peer=198.18.1.11 --mcast-interface eth1 --sync-peer ::ffff:198.18.1.13 --sync-peer 2001:db8::11 --syncid 3",
			control.SyncDaemon{Role: "backup", Interface: "eth1", SyncID: 3, Peers: []string{"198.18.1.11", "198.18.1.13", "2001:db8::11"}},
			optMcastInterface | optSyncPeer | optSyncID},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			c, err := testParser().parse(strings.Fields(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if c.kind != cmdStartDaemon || c.opts != tc.opts || !reflect.DeepEqual(c.daemon, tc.want) {
				t.Errorf("parsed kind %v, opts %b, daemon %+v; want opts %b, daemon %+v", c.kind, c.opts, c.daemon, tc.opts, tc.want)
			}
		})
	}
}
