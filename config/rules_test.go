package config

import (
	"errors"
	"strings"
	"testing"
)

// dir is a minimal valid director section on line 1.
const dir = "director: {interfaces: [eth0]}\n"

// svc returns a config whose only service starts on line 3 with name, vip
// and port on lines 3-5; each extra line is indented into the service and
// lands on line 6, 7, ...
func svc(lines ...string) string {
	var b strings.Builder
	b.WriteString(dir)
	b.WriteString("services:\n  - name: web\n    vip: 198.18.0.100\n    port: 80\n")
	for _, l := range lines {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// svc6 is svc with an IPv6 vip.
func svc6(lines ...string) string {
	return strings.Replace(svc(lines...), "198.18.0.100", "2001:db8::100", 1)
}

// mustFail parses in and returns the reported problems, failing the test when
// the configuration is accepted or the error is not an *ErrorList.
func mustFail(t *testing.T, in string) *ErrorList {
	t.Helper()
	cfg, err := Parse([]byte(in), "govs.yaml")
	if err == nil {
		t.Fatalf("accepted invalid config:\n%s", in)
	}
	if cfg != nil {
		t.Errorf("got a Config together with an error")
	}
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want *ErrorList: %v", err, err)
	}
	for _, e := range list.Errors {
		if e.File != "govs.yaml" {
			t.Errorf("error %q names file %q", e, e.File)
		}
	}
	return list
}

func TestRules(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string // each must be a substring of one reported line
	}{
		// File structure.
		{"yaml syntax", "director:\n  interfaces: [eth0\n", []string{"invalid YAML: did not find expected ',' or ']'"}},
		{"yaml tab", "director:\n\tinterfaces: [eth0]\n", []string{"govs.yaml:2: invalid YAML: found character that cannot start any token"}},
		{"empty file", "", []string{"govs.yaml: the file is empty"}},
		{"comment only", "# nothing\n", []string{"the file is empty"}},
		{"two documents", dir + "---\n" + dir, []string{"govs.yaml:2: only one YAML document is allowed"}},
		{"top level not a mapping", "- a\n", []string{"govs.yaml:1: want a mapping, got a list"}},
		{"unknown key with hint", dir + "service: []\n", []string{`govs.yaml:2: service: unknown key (did you mean "services"?)`}},
		{"unknown key without hint", dir + "zzzzzzzz: 1\n", []string{"govs.yaml:2: zzzzzzzz: unknown key (valid keys: director, marks, services)"}},
		{"duplicate key", "director:\n  interfaces: [eth0]\n  interfaces: [eth1]\n", []string{"govs.yaml:3: director.interfaces: duplicate key (first at line 2)"}},
		{"non-string key", "director:\n  interfaces: [eth0]\n  ? [a]\n  : 1\n", []string{"govs.yaml:3: director: keys must be plain strings"}},
		{"null value", svc("protocol:"), []string{"govs.yaml:6: services[0].protocol: want one of tcp, udp, got no value"}},

		// Director.
		{"director missing", "services: []\n", []string{"govs.yaml:1: director: missing (required)"}},
		{"interfaces missing", "director: {xdp_mode: auto}\n", []string{"govs.yaml:1: director.interfaces: missing (required)"}},
		{"interfaces empty", "director: {interfaces: []}\n", []string{"govs.yaml:1: director.interfaces: at least one interface is required"}},
		{"interfaces duplicate", "director:\n  interfaces:\n    - eth0\n    - eth0\n", []string{`govs.yaml:4: director.interfaces[1]: duplicate interface "eth0" (first at line 3)`}},
		{"interface name invalid", "director: {interfaces: [a/b, averyveryverylongname]}\n", []string{
			`director.interfaces[0]: "a/b" is not a valid interface name`,
			`director.interfaces[1]: "averyveryverylongname" is not a valid interface name`}},
		{"interfaces not a list", "director: {interfaces: eth0}\n", []string{`director.interfaces: want a list, got "eth0"`}},
		{"accept_foreign_mac not served", "director:\n  interfaces: [eth0]\n  accept_foreign_mac: [eth1]\n",
			[]string{`govs.yaml:3: director.accept_foreign_mac[0]: "eth1" is not one of director.interfaces`}},
		{"accept_foreign_mac duplicate", "director:\n  interfaces: [eth0]\n  accept_foreign_mac:\n    - eth0\n    - eth0\n",
			[]string{`govs.yaml:5: director.accept_foreign_mac[1]: duplicate interface "eth0" (first at line 4)`}},
		{"accept_foreign_mac not a list", "director:\n  interfaces: [eth0]\n  accept_foreign_mac: true\n",
			[]string{`govs.yaml:3: director.accept_foreign_mac: want a list, got true`}},
		{"accept_foreign_mac invalid name", "director: {interfaces: [eth0], accept_foreign_mac: [a/b]}\n",
			[]string{`govs.yaml:1: director.accept_foreign_mac[0]: "a/b" is not a valid interface name`}},
		{"xdp_mode invalid", "director:\n  interfaces: [eth0]\n  xdp_mode: natve\n", []string{`govs.yaml:3: director.xdp_mode: "natve" is not valid (did you mean "native"?)`}},
		{"metrics_listen invalid", "director:\n  interfaces: [eth0]\n  metrics_listen: localhost\n", []string{`govs.yaml:3: director.metrics_listen: want host:port`}},
		{"metrics_listen bad port", "director:\n  interfaces: [eth0]\n  metrics_listen: \":0\"\n", []string{`director.metrics_listen: ":0": port must be 1..65535`}},
		{"control_socket empty", "director:\n  interfaces: [eth0]\n  control_socket: \"\"\n", []string{"govs.yaml:3: director.control_socket: must not be empty"}},
		{"control_socket too long", "director:\n  interfaces: [eth0]\n  control_socket: /" + strings.Repeat("s", 120) + "\n", []string{"director.control_socket: socket path is longer than 107 bytes"}},
		{"conn_table_size small", "director:\n  interfaces: [eth0]\n  conn_table_size: 1000\n", []string{"govs.yaml:3: director.conn_table_size: 1000 is out of range 1024..2147483647"}},
		{"conn_table_size not int", "director:\n  interfaces: [eth0]\n  conn_table_size: 1.5e6\n", []string{"director.conn_table_size: want an integer, got 1.5e6"}},
		{"timeout bare number", "director:\n  interfaces: [eth0]\n  timeouts: {tcp: 900}\n", []string{"govs.yaml:3: director.timeouts.tcp: want a duration like 30s or 5m, got 900"}},
		{"timeout zero", "director:\n  interfaces: [eth0]\n  timeouts: {udp: 0s}\n", []string{"director.timeouts.udp: must be greater than 0"}},
		{"timeout negative", "director:\n  interfaces: [eth0]\n  timeouts: {tcpfin: -1s}\n", []string{"director.timeouts.tcpfin: must be greater than 0"}},
		{"timeout unknown", "director:\n  interfaces: [eth0]\n  timeouts: {tcp_fin: 1s}\n", []string{`director.timeouts.tcp_fin: unknown key (did you mean "tcpfin"?)`}},
		{"bool not bool", "director:\n  interfaces: [eth0]\n  manage_vips: yes\n", []string{`govs.yaml:3: director.manage_vips: want true or false, got "yes"`}},
		{"busy_poll not bool", "director:\n  interfaces: [eth0]\n  busy_poll: 1\n", []string{"director.busy_poll: want true or false, got 1"}},
		{"worker_nice out of range", "director:\n  interfaces: [eth0]\n  worker_nice: -21\n", []string{"director.worker_nice"}},
		{"fast_path not bool", "director:\n  interfaces: [eth0]\n  fast_path: on\n", []string{"director.fast_path: want true or false, got \"on\""}},

		// Director sync.
		{"sync group and peers", syncCfg("group: 224.0.0.81", "peers: [198.18.1.253]"), []string{"govs.yaml:9: director.sync.peers: give either group (multicast) or peers (unicast), not both"}},
		{"sync neither", syncCfg(), []string{"govs.yaml:4: director.sync: either group (multicast) or peers (unicast) is required"}},
		{"sync group unicast", syncCfg("group: 198.18.0.1"), []string{"govs.yaml:8: director.sync.group: 198.18.0.1 is not a multicast address"}},
		{"sync peer multicast", syncCfg("peers: [224.0.0.1]"), []string{"director.sync.peers[0]: 224.0.0.1 is not a unicast address"}},
		{"sync peers empty", syncCfg("peers: []"), []string{"director.sync.peers: at least one address is required"}},
		{"sync peers duplicate", syncCfg("peers: [198.18.1.1, 198.18.1.1]"), []string{"director.sync.peers[1]: duplicate address 198.18.1.1 (first at line 8)"}},
		{"sync id", syncCfg("group: 224.0.0.81", "sync_id: 256"), []string{"govs.yaml:9: director.sync.sync_id: 256 is out of range 0..255"}},
		{"sync port", strings.Replace(syncCfg("group: 224.0.0.81"), "port: 8848", "port: 0", 1), []string{"govs.yaml:7: director.sync.port: 0 is out of range 1..65535"}},
		{"sync key_file missing", "director:\n  interfaces: [eth0]\n  sync: {role: both, interface: eth1, group: 224.0.0.81}\n",
			[]string{"govs.yaml:3: director.sync.key_file: missing (required)"}},
		{"sync role", "director:\n  interfaces: [eth0]\n  sync: {role: primary, interface: eth1, group: 224.0.0.81, key_file: k}\n",
			[]string{`director.sync.role: "primary" is not valid (valid: master, backup, both)`}},
		{"sync interface missing", "director:\n  interfaces: [eth0]\n  sync: {role: master, group: 224.0.0.81, key_file: k}\n",
			[]string{"director.sync.interface: missing (required)"}},

		// Director BGP.
		{"bgp asn zero", bgpCfg("asn: 0"), []string{"govs.yaml:4: director.bgp.asn: 0 is out of range 1..4294967295"}},
		{"bgp asn too big", bgpCfg("asn: 4294967296"), []string{"director.bgp.asn: 4294967296 is out of range 1..4294967295"}},
		{"bgp router_id v6", bgpCfg("router_id: 2001:db8::1"), []string{"govs.yaml:5: director.bgp.router_id: router_id must be a non-zero IPv4 address, got 2001:db8::1"}},
		{"bgp required", "director:\n  interfaces: [eth0]\n  bgp: {}\n", []string{
			"govs.yaml:3: director.bgp.asn: missing (required)",
			"govs.yaml:3: director.bgp.router_id: missing (required)",
			"govs.yaml:3: director.bgp.peers: missing (required)"}},
		{"bgp peer asn missing", bgpCfg("peers: [{address: 198.18.0.1}]"), []string{"govs.yaml:6: director.bgp.peers[0].asn: missing (required)"}},
		{"bgp peer duplicate", bgpCfg("peers: [{address: 198.18.0.1, asn: 1}, {address: 198.18.0.1, asn: 2}]"), []string{"director.bgp.peers[1].address: duplicate peer 198.18.0.1 (first at line 6)"}},
		{"bgp peer port", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, port: 70000}]"), []string{"director.bgp.peers[0].port: 70000 is out of range 1..65535"}},
		{"bgp hold_time short", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, hold_time: 2s}]"), []string{"govs.yaml:6: director.bgp.peers[0].hold_time: 2s is out of range 3s..18h12m15s"}},
		{"bgp hold_time long", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, hold_time: 65536s}]"), []string{"director.bgp.peers[0].hold_time: 18h12m16s is out of range 3s..18h12m15s"}},
		{"bgp hold_time fraction", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, hold_time: 9500ms}]"), []string{"director.bgp.peers[0].hold_time: 9.5s: BGP timers are whole seconds"}},
		{"bgp hold_time zero", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, hold_time: 0s}]"), []string{"director.bgp.peers[0].hold_time: must be greater than 0"}},
		{"bgp keepalive not below hold_time", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, hold_time: 9s, keepalive: 9s}]"), []string{"govs.yaml:6: director.bgp.peers[0].keepalive: 9s must be below hold_time (9s)"}},
		{"bgp keepalive not below default", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, keepalive: 2m}]"), []string{"director.bgp.peers[0].keepalive: 2m0s must be below the default hold_time (1m30s)"}},
		{"bgp multihop zero", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, multihop: 0}]"), []string{"director.bgp.peers[0].multihop: 0 is out of range 1..255"}},
		{"bgp multihop big", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, multihop: 256}]"), []string{"director.bgp.peers[0].multihop: 256 is out of range 1..255"}},
		{"bgp passive not bool", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, passive: maybe}]"), []string{"director.bgp.peers[0].passive:"}},
		{"bgp password_file empty", bgpCfg(`peers: [{address: 198.18.0.1, asn: 1, password_file: ""}]`), []string{"director.bgp.peers[0].password_file:"}},
		{"bgp password inline", bgpCfg("peers: [{address: 198.18.0.1, asn: 1, password: x}]"), []string{"director.bgp.peers[0].password:"}},
		{"bgp community", bgpCfg(`communities: ["65001:100", "65536:1", "abc"]`), []string{
			`govs.yaml:7: director.bgp.communities[1]: "65536:1": each half must be a number in 0..65535`,
			`director.bgp.communities[2]: "abc": want "high:low"`}},
		{"bgp next_hop", bgpCfg("next_hop: 0.0.0.0"), []string{"director.bgp.next_hop: 0.0.0.0 is not a unicast address"}},

		// Service basics.
		{"service name missing", dir + "services:\n  - vip: 198.18.0.100\n    port: 80\n", []string{"govs.yaml:3: services[0].name: missing (required)"}},
		{"service name invalid", strings.Replace(svc(), "name: web", "name: my web", 1), []string{`govs.yaml:3: services[0].name: "my web": names are 1-63 letters`}},
		{"service vip missing", dir + "services:\n  - name: web\n    port: 80\n", []string{"govs.yaml:3: services[0].vip: missing (required)"}},
		{"service port missing", dir + "services:\n  - name: web\n    vip: 198.18.0.100\n", []string{"govs.yaml:3: services[0].port: missing (required)"}},
		{"service vip invalid", strings.Replace(svc(), "198.18.0.100", "198.18.0.300", 1), []string{`govs.yaml:4: services[0].vip: "198.18.0.300" is not an IP address`}},
		{"service vip zone", strings.Replace(svc(), "198.18.0.100", "fe80::1%eth0", 1), []string{`services[0].vip: "fe80::1%eth0": zones are not supported`}},
		{"service vip 4in6", strings.Replace(svc(), "198.18.0.100", "\"::ffff:198.18.0.100\"", 1), []string{`services[0].vip: "::ffff:198.18.0.100": write IPv4 addresses as 198.18.0.100`}},
		{"service vip multicast", strings.Replace(svc(), "198.18.0.100", "224.0.0.1", 1), []string{"services[0].vip: 224.0.0.1 is not a unicast address"}},
		{"service port range", strings.Replace(svc(), "port: 80", "port: 65536", 1), []string{"govs.yaml:5: services[0].port: 65536 is out of range 0..65535"}},
		{"service port string", strings.Replace(svc(), "port: 80", `port: "80"`, 1), []string{`govs.yaml:5: services[0].port: want an integer, got "80"`}},
		{"service port 0 without persistence", strings.Replace(svc(), "port: 80", "port: 0", 1), []string{"govs.yaml:5: services[0].port: port 0 (all ports) is only allowed with persistence"}},
		{"protocol", svc("protocol: sctp"), []string{`govs.yaml:6: services[0].protocol: "sctp" is not valid (valid: tcp, udp)`}},
		{"scheduler", svc("scheduler: wrrr"), []string{`govs.yaml:6: services[0].scheduler: "wrrr" is not valid (did you mean "wrr"?)`}},
		{"scheduler unknown", svc("scheduler: random"), []string{`services[0].scheduler: "random" is not valid (valid: rr, wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos)`}},
		{"scheduler flag unknown", svc("scheduler: sh", "scheduler_flags: [sh-prt, bogus]"), []string{
			`govs.yaml:7: services[0].scheduler_flags[0]: unknown scheduler flag "sh-prt" (did you mean "sh-port"?)`,
			`services[0].scheduler_flags[1]: unknown scheduler flag "bogus" (valid: sh-fallback, sh-port, mh-fallback, mh-port)`}},
		{"scheduler flag wrong scheduler", svc("scheduler: mh", "scheduler_flags: [sh-port]"), []string{`govs.yaml:7: services[0].scheduler_flags[0]: flag "sh-port" is only valid with scheduler: sh (this service uses mh)`}},
		{"scheduler flag default scheduler", svc("scheduler_flags: [mh-port]"), []string{`flag "mh-port" is only valid with scheduler: mh (this service uses wlc)`}},
		{"scheduler flag duplicate", svc("scheduler: sh", "scheduler_flags: [sh-port, sh-port]"), []string{`services[0].scheduler_flags[1]: duplicate scheduler flag "sh-port"`}},
		{"forward", svc("forward: direct"), []string{`govs.yaml:6: services[0].forward: "direct" is not valid (valid: nat, fullnat, dr, tun)`}},
		{"on_failure", svc("on_failure: drop"), []string{`services[0].on_failure: "drop" is not valid (valid: remove, quiesce)`}},
		{"unknown service key", svc("schedular: rr"), []string{`govs.yaml:6: services[0].schedular: unknown key (did you mean "scheduler"?)`}},
		{"duplicate service key", svc("port: 81"), []string{"govs.yaml:6: services[0].port: duplicate key (first at line 5)"}},
		{"duplicate service", dir + "services:\n  - {name: a, vip: 198.18.0.100, port: 80}\n  - {name: b, vip: 198.18.0.100, port: 80}\n",
			[]string{`govs.yaml:4: services[1]: duplicate service 198.18.0.100:80/tcp (first: services[0] "a" at line 3)`}},
		{"duplicate service name", dir + "services:\n  - {name: a, vip: 198.18.0.100, port: 80}\n  - {name: a, vip: 198.18.0.100, port: 81}\n",
			[]string{`govs.yaml:4: services[1].name: duplicate service name "a" (first: services[0] at line 3)`}},
		{"services not a list", dir + "services: {name: a}\n", []string{"govs.yaml:2: services: want a list, got a mapping"}},

		// Persistence.
		{"persistence timeout", svc("persistence: {timeout: 0s}"), []string{"govs.yaml:6: services[0].persistence.timeout: must be greater than 0"}},
		{"persistence netmask gap", svc("persistence: {netmask: 255.0.255.0}"), []string{"services[0].persistence.netmask: 255.0.255.0 is not a contiguous netmask"}},
		{"persistence netmask v4 range", svc("persistence: {netmask: 33}"), []string{"services[0].persistence.netmask: prefix length 33 is out of range 0..32 for an IPv4 service"}},
		{"persistence netmask v6 dotted", svc6("persistence: {netmask: 255.255.255.0}"), []string{"services[0].persistence.netmask: IPv6 services take a prefix length like 64, not a dotted mask"}},
		{"persistence netmask v6 range", svc6(`persistence: {netmask: "/129"}`), []string{"prefix length 129 is out of range 0..128 for an IPv6 service"}},
		{"persistence netmask junk", svc("persistence: {netmask: wide}"), []string{`services[0].persistence.netmask: want a dotted mask like 255.255.255.0 or a prefix length 0..32, got "wide"`}},
		{"persistence unknown", svc("persistence: {timout: 1s}"), []string{`services[0].persistence.timout: unknown key (did you mean "timeout"?)`}},

		// Full-NAT local addresses.
		{"fullnat without local addresses", svc("forward: fullnat"), []string{"govs.yaml:3: services[0].local_addresses: required because forward: fullnat is used (line 6)"}},
		{"server fullnat without local addresses", svc("real_servers:", "  - {address: 198.18.1.1, forward: fullnat}"), []string{"govs.yaml:3: services[0].local_addresses: required because forward: fullnat is used (line 7)"}},
		{"local addresses without fullnat", svc("local_addresses: [198.18.1.250]"), []string{"govs.yaml:6: services[0].local_addresses: only used with forward: fullnat"}},
		{"local addresses family", svc("forward: fullnat", "local_addresses: [2001:db8::1]"), []string{"govs.yaml:7: services[0].local_addresses[0]: 2001:db8::1: local addresses must have the family of the vip 198.18.0.100"}},
		{"local addresses empty", svc("forward: fullnat", "local_addresses: []"), []string{"services[0].local_addresses: at least one address is required"}},

		// check_via_vip.
		{"check_via_vip with nat", svc("check_via_vip: true"), []string{"govs.yaml:6: services[0].check_via_vip: only meaningful with forward: dr or tun (the service uses nat)"}},
		{"check_via_vip server nat", svc("forward: dr", "check_via_vip: true", "real_servers:", "  - {address: 198.18.1.1, forward: nat}"),
			[]string{"govs.yaml:9: services[0].real_servers[0].forward: check_via_vip is set on the service, but is only meaningful with forward: dr or tun"}},

		// Sorry server.
		{"sorry server family", svc("sorry_server: {address: 2001:db8::1}"), []string{"govs.yaml:6: services[0].sorry_server.address: 2001:db8::1: address family differs from the vip 198.18.0.100"}},
		{"sorry server port mapping dr", svc("forward: dr", "sorry_server: {address: 198.18.1.200, port: 8080}"), []string{"govs.yaml:7: services[0].sorry_server.port: port mapping is not allowed with forward: dr"}},
		{"sorry server address missing", svc("sorry_server: {port: 80}"), []string{"services[0].sorry_server.address: missing (required)"}},

		// Real servers.
		{"server port mapping dr", svc("forward: dr", "real_servers:", "  - address: 198.18.1.1", "    port: 8080"),
			[]string{"govs.yaml:9: services[0].real_servers[0].port: port mapping is not allowed with forward: dr"}},
		{"server port mapping tun override", svc("real_servers:", "  - {address: 198.18.1.1, port: 8080, forward: tun}"),
			[]string{"govs.yaml:7: services[0].real_servers[0].port: port mapping is not allowed with forward: tun"}},
		{"server address missing", svc("real_servers:", "  - {port: 80}"), []string{"govs.yaml:7: services[0].real_servers[0].address: missing (required)"}},
		{"server family", svc("real_servers:", "  - {address: 2001:db8::1}"), []string{"govs.yaml:7: services[0].real_servers[0].address: 2001:db8::1: address family differs from the vip 198.18.0.100"}},
		{"server duplicate", svc("real_servers:", "  - {address: 198.18.1.1}", "  - {address: 198.18.1.1, port: 80}"),
			[]string{"govs.yaml:8: services[0].real_servers[1]: duplicate real server 198.18.1.1:80 (first at line 7)"}},
		{"server port 0", svc("real_servers:", "  - {address: 198.18.1.1, port: 0}"), []string{"services[0].real_servers[0].port: port 0 is only allowed when the service port is 0"}},
		{"server weight", svc("real_servers:", "  - {address: 198.18.1.1, weight: 2147483648}"), []string{"services[0].real_servers[0].weight: 2147483648 is out of range 0..2147483647"}},
		{"server weight negative", svc("real_servers:", "  - {address: 198.18.1.1, weight: -1}"), []string{"services[0].real_servers[0].weight: -1 is out of range 0..2147483647"}},
		{"server thresholds", svc("real_servers:", "  - {address: 198.18.1.1, upper_threshold: 10, lower_threshold: 11}"), []string{"services[0].real_servers[0].lower_threshold: 11 is above upper_threshold 10"}},
		{"server forward", svc("real_servers:", "  - {address: 198.18.1.1, forward: ipip}"), []string{`services[0].real_servers[0].forward: "ipip" is not valid (valid: nat, fullnat, dr, tun)`}},
		{"server unknown key", svc("real_servers:", "  - {address: 198.18.1.1, wieght: 2}"), []string{`govs.yaml:7: services[0].real_servers[0].wieght: unknown key (did you mean "weight"?)`}},
		{"server not a mapping", svc("real_servers:", "  - 198.18.1.1"), []string{`govs.yaml:7: services[0].real_servers[0]: want a mapping, got "198.18.1.1"`}},

		// Health checks.
		{"check type missing", svc("health_check: {interval: 5s}"), []string{"govs.yaml:6: services[0].health_check.type: missing (required)"}},
		{"check type invalid", svc("health_check: {type: icmp}"), []string{`services[0].health_check.type: "icmp" is not valid (valid: none, tcp, http, https, udp, dns, exec)`}},
		{"check timeout above interval", svc("health_check: {type: tcp, interval: 1s, timeout: 2s}"), []string{"services[0].health_check.timeout: timeout 2s is longer than the interval 1s"}},
		{"check interval below default timeout", svc("health_check: {type: tcp, interval: 500ms}"), []string{"services[0].health_check.interval: interval 500ms is shorter than the timeout 1s"}},
		{"check rise", svc("health_check: {type: tcp, rise: 0}"), []string{"services[0].health_check.rise: 0 is out of range 1..2147483647"}},
		{"check port", svc("health_check: {type: tcp, port: 0}"), []string{"services[0].health_check.port: 0 is out of range 1..65535"}},
		{"check udp block missing", svc("health_check: {type: udp}"), []string{"govs.yaml:6: services[0].health_check.udp: missing (required with type: udp)"}},
		{"check udp send missing", svc("health_check: {type: udp, udp: {expect: pong}}"), []string{"services[0].health_check.udp.send: missing (required)"}},
		{"check dns block missing", svc("health_check: {type: dns}"), []string{"services[0].health_check.dns: missing (required with type: dns)"}},
		{"check dns query missing", svc("health_check: {type: dns, dns: {type: A}}"), []string{"services[0].health_check.dns.query: missing (required)"}},
		{"check dns type", svc("health_check: {type: dns, dns: {query: example.test, type: AXFR}}"), []string{`services[0].health_check.dns.type: "AXFR" is not a supported query type`}},
		{"check dns query invalid", svc("health_check: {type: dns, dns: {query: a..b}}"), []string{`services[0].health_check.dns.query: "a..b" is not a valid domain name`}},
		{"check exec missing", svc("health_check: {type: exec}"), []string{"services[0].health_check.exec: missing (required with type: exec)"}},
		{"check exec empty", svc("health_check: {type: exec, exec: {command: []}}"), []string{"services[0].health_check.exec.command: must name a program"}},
		{"check block for other type", svc("health_check:", "  type: tcp", "  http: {path: /}"), []string{"govs.yaml:8: services[0].health_check.http: only used with type: http or https (this check is tcp)"}},
		{"check http status", svc("health_check: {type: http, http: {expect_status: [200, 700]}}"), []string{"services[0].health_check.http.expect_status[1]: 700 is out of range 100..599"}},
		{"check http method", svc("health_check: {type: http, http: {method: get}}"), []string{`services[0].health_check.http.method: "get" is not an HTTP method`}},
		{"check http path", svc("health_check: {type: https, http: {path: healthz}}"), []string{`services[0].health_check.http.path: "healthz": the path must start with /`}},
		{"check unknown key", svc("health_check: {type: tcp, intervall: 1s}"), []string{`services[0].health_check.intervall: unknown key (did you mean "interval"?)`}},
		{"server check without type", svc("real_servers:", "  - {address: 198.18.1.1, health_check: {port: 81}}"),
			[]string{"govs.yaml:7: services[0].real_servers[0].health_check.type: missing (required: the service has no health_check to inherit it from)"}},
		{"server check changes type", svc("health_check: {type: http, http: {path: /x}}", "real_servers:", "  - {address: 198.18.1.1, health_check: {type: udp}}"),
			[]string{"govs.yaml:8: services[0].real_servers[0].health_check.udp: missing (required with type: udp)"}},
		{"server check bad override", svc("health_check: {type: tcp}", "real_servers:", "  - {address: 198.18.1.1, health_check: {timeout: 5s}}"),
			[]string{"govs.yaml:8: services[0].real_servers[0].health_check.timeout: timeout 5s is longer than the interval 2s"}},
		{"check needs port with port 0 service", strings.Replace(svc("persistence: {}", "health_check: {type: tcp}", "real_servers:", "  - {address: 198.18.1.1}"), "port: 80", "port: 0", 1),
			[]string{"govs.yaml:9: services[0].real_servers[0]: the tcp health check needs a port: the real server's port is 0, set health_check.port"}},

		// Anchors and merge keys keep their checks.
		{"merge unknown key", dir + "x-check: &hc {type: tcp, bogus: 1}\n", []string{"x-check: unknown key"}},
		{"merged bad value", svc("health_check: {<<: {type: tcp, rise: 0}}"), []string{"services[0].health_check.rise: 0 is out of range"}},
		{"merge not a mapping", svc("health_check: {<<: 1, type: tcp}"), []string{"services[0].health_check: merge key (<<) wants a mapping or a list of mappings, got 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			list := mustFail(t, tc.in)
			msg := list.Error()
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("missing %q in:\n%s", want, msg)
				}
			}
		})
	}
}

// syncCfg is a director with a sync block; its extra lines start at line 8.
func syncCfg(lines ...string) string {
	s := "director:\n  interfaces: [eth0]\n  sync:\n    role: master\n    interface: eth1\n    key_file: /etc/govs/sync.key\n    port: 8848\n"
	for _, l := range lines {
		s += "    " + l + "\n"
	}
	return s
}

// bgpCfg is a director with a BGP block; each given line replaces the default
// line with the same key (asn on line 4, router_id 5, peers 6) or is appended.
func bgpCfg(lines ...string) string {
	def := []string{"asn: 65001", "router_id: 198.18.0.254", "peers: [{address: 198.18.0.1, asn: 65000}]"}
	for _, l := range lines {
		key, _, _ := strings.Cut(l, ":")
		replaced := false
		for i, d := range def {
			if strings.HasPrefix(d, key+":") {
				def[i], replaced = l, true
			}
		}
		if !replaced {
			def = append(def, l)
		}
	}
	s := "director:\n  interfaces: [eth0]\n  bgp:\n"
	for _, l := range def {
		s += "    " + l + "\n"
	}
	return s
}

func TestMultipleErrorsReportedTogether(t *testing.T) {
	in := `director:
  interfaces: [eth0, eth0]
  xdp_mod: native
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    forward: dr
    real_servers:
      - address: 198.18.1.1
        port: 8080
      - address: 2001:db8::1
  - name: dns
    vip: 198.18.0.101
    port: 53
    protocol: udp
    health_check: {type: dns}
`
	list := mustFail(t, in)
	want := []string{
		`govs.yaml:2: director.interfaces[1]: duplicate interface "eth0" (first at line 2)`,
		`govs.yaml:3: director.xdp_mod: unknown key (did you mean "xdp_mode"?)`,
		`govs.yaml:11: services[0].real_servers[0].port: port mapping is not allowed with forward: dr`,
		`govs.yaml:12: services[0].real_servers[1].address: 2001:db8::1: address family differs from the vip 198.18.0.100`,
		`govs.yaml:17: services[1].health_check.dns: missing (required with type: dns)`,
	}
	if got := list.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	e := list.Errors[2]
	if e.File != "govs.yaml" || e.Line != 11 || e.Column != 15 || e.Key != "services[0].real_servers[0].port" {
		t.Errorf("error fields: %+v", *e)
	}
	var one *Error
	if !errors.As(error(list), &one) || one != list.Errors[0] {
		t.Errorf("errors.As does not reach the first *Error")
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Key: "a.b", Msg: "bad"}, "f.yaml:3: a.b: bad"},
		{Error{File: "f.yaml", Line: 3, Msg: "bad"}, "f.yaml:3: bad"},
		{Error{File: "f.yaml", Msg: "bad"}, "f.yaml: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"interval", "timeout", "rise", "fall", "real_servers"}
	for word, want := range map[string]string{
		"intervall":    "interval",
		"Timeout":      "timeout",
		"real-servers": "real_servers",
		"real_server":  "real_servers",
		"raise":        "rise",
		"xyzzy":        "",
		"a":            "",
	} {
		if got := closest(word, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", word, got, want)
		}
	}
}
