// Package config reads and validates the YAML configuration of govsd.
//
// Load and Parse check the whole file and report every problem at once as a
// *ErrorList, one line per problem naming the file, the line and the key:
//
//	govs.yaml:14: services[1].real_servers[0].port: port mapping is not allowed with forward: dr
//
// Unknown keys, repeated keys, values of the wrong type and inconsistent
// settings are all errors; an invalid file never yields a partial Config.
// YAML anchors, aliases and merge keys (<<: *anchor) may be used to share
// settings, for example a health check.
//
// # Schema
//
// Defaults are shown as values; "required" marks keys without one.
//
//	director:                           # required
//	  interfaces: [eth0]                # required: one or more unique interface names
//	  xdp_mode: auto                    # auto | native | generic
//	  control_socket: /run/govs.sock
//	  control_group: ""                 # a group (name or gid) whose members may list through
//	                                    # the control socket (govsadm -L, -c, --stats); changes
//	                                    # always need uid 0 or CAP_NET_ADMIN; "" = nobody else
//	  metrics_listen: 127.0.0.1:9469    # host:port of the Prometheus endpoint; "" disables it
//	  conn_table_size: 1048576          # connection table entries, at least 1024
//	  timeouts:                         # idle timeouts, as ipvsadm --set; Go durations > 0
//	    tcp: 900s
//	    tcpfin: 120s
//	    udp: 300s
//	  manage_vips: false                # add the VIPs to the interfaces
//	  busy_poll: false                  # spin instead of sleeping in poll(2), and set
//	                                    # SO_PREFER_BUSY_POLL on the AF_XDP sockets
//	  worker_nice: -20                  # nice of the worker threads (0: govsd's own),
//	                                    # above ksoftirqd and threaded NAPI (0)
//	  fast_path: true                   # XDP forwards established connections itself
//	  bpf_pin_path: /sys/fs/bpf/govs    # where XDP links, flow entries, the SYN-cookie key
//	                                    # and the connection mirror are pinned, so that the
//	                                    # next govsd adopts them; "" = nothing outlives govsd
//	  expire_quiescent_template: true   # the services' default for the key of that name
//	  sloppy: false                     # the services' default for the key of that name
//	  syn_proxy_half_open: 4096         # half-open connections (all workers) above which
//	                                    # syn_proxy: auto services engage; 0 = never for this
//	  syn_proxy_syn_rate: 20000         # SYNs/s to one service above which it engages
//	                                    # (syn_proxy: auto); 0 = never for this
//	  syn_limit: 100000                 # SYNs/s per CPU the XDP program passes to the
//	                                    # workers; the rest get cookies (nat, fullnat), are
//	                                    # spread by mh's table (dr, tun with mh) or dropped
//	                                    # (dr, tun, syn_proxy: off); 0 = no limit
//	  syn_limit_burst: 10000            # token bucket depth per CPU; needs syn_limit > 0
//	                                    # (syn_proxy_syn_rate, syn_limit, syn_limit_burst: at
//	                                    # most 1073741824, the XDP bucket's arithmetic)
//	  syn_proxy_mss: 1460               # MSS in cookie SYN-ACKs, 536..65495; IPv6: 20 less
//	  steer_limit: auto                 # packets/s per RX queue of flows the workers do not
//	                                    # know yet that XDP passes to them (the rest are
//	                                    # dropped): auto adapts it to what the worker takes
//	                                    # (unlimited until its ring overflows); a number is a
//	                                    # fixed limit, 0..1073741824; 0 = no limit
//	  accept_foreign_mac: []            # interfaces (of interfaces) whose frames to other
//	                                    # hosts' MACs XDP classifies too (MAC-VLAN, keepalived
//	                                    # use_vmac); elsewhere they go to the kernel
//	                                    # (counted as xdp foreign_mac); read at start only
//	  sync:                             # optional: connection synchronisation
//	    role: master                    # required: master | backup | both
//	    interface: eth1                 # required
//	    group: 239.255.81.49            # multicast group, or
//	    peers: [198.18.1.253]           # unicast peers (exactly one of group and peers)
//	    port: 8849                      # not IPVS's 8848: the wire formats differ
//	    sync_id: 0                      # 0..255
//	    key_file: /etc/govs/sync.key    # required
//	  bgp:                              # optional: announce the VIPs
//	    asn: 65001                      # required, 1..4294967295
//	    router_id: 198.18.0.254         # required, IPv4
//	    next_hop: 198.18.0.254          # default: router_id
//	    peers:                          # required, one or more
//	      - address: 198.18.0.1         # required, unique
//	        asn: 65000                  # required; eBGP or iBGP
//	        port: 179
//	        password_file: /etc/govs/bgp.pw # TCP MD5 key (RFC 2385), 1..80 bytes, a trailing
//	                                    # newline dropped; like sync's key_file the file must
//	                                    # not be accessible to others (chmod 0600); default: none
//	        hold_time: 90s              # whole seconds, 3s..65535s; default GoBGP's 90s
//	        keepalive: 30s              # whole seconds, below hold_time; default hold_time/3
//	        multihop: 2                 # eBGP multihop TTL, 1..255; default: directly connected
//	        passive: false              # true: wait for the peer to connect; govsd then
//	                                    # listens on TCP 179 (all addresses)
//	    communities: ["65001:100"]      # "high:low", each 0..65535
//
//	marks:                              # optional list: firewall marks govsadm -A -f N may use
//	  - fwmark: 1                       # required, 1..4294967295, unique
//	    addresses: [198.18.0.100]       # required: addresses or prefixes, one family
//	    ports: [80, "8443-8444"]        # default: every port; ports or "lo-hi" ranges
//	    protocols: [tcp]                # tcp, udp or both
//
//	services:                           # optional list
//	  - name: web                       # required, unique; letters, digits, . _ -
//	    vip: 198.18.0.100               # required (unless fwmark, see below), IPv4 or IPv6
//	    port: 80                        # required, 0..65535; 0 (all ports) needs persistence
//	    protocol: tcp                   # tcp | udp
//	    scheduler: wlc                  # rr wrr lc wlc sed nq lblc lblcr dh sh mh fo ovf twos
//	    scheduler_flags: []             # sh-fallback sh-port (sh only), mh-fallback mh-port (mh only)
//	    forward: nat                    # nat | fullnat | dr | tun
//	    persistence:                    # optional: stick clients to a server (ipvsadm -p)
//	      timeout: 300s
//	      netmask: 255.255.255.255      # IPv4: dotted mask or prefix length;
//	                                    # IPv6: prefix length (64 or "/64"), default 128
//	    local_addresses: [198.18.1.250] # full-NAT source addresses: required exactly when
//	                                    # the service or one of its servers uses fullnat;
//	                                    # same family as the vip
//	    health_check: {type: none}      # see below; inherited by every real server
//	    on_failure: remove              # remove (keepalived's default) | quiesce (weight 0,
//	                                    # keepalived's inhibit_on_failure)
//	    expire_quiescent_template: true # IPVS's sysctl of that name: expire the persistence
//	                                    # templates of a server that is quiesced (failed check
//	                                    # with on_failure: quiesce, or weight set to 0), so its
//	                                    # persistent clients' next connections go elsewhere;
//	                                    # default: director.expire_quiescent_template
//	    sorry_server:                   # optional: used while no server is available
//	      address: 198.18.1.200         # required, same family as the vip
//	      port: 80                      # default: the service port (must equal it for dr/tun)
//	    check_via_vip: false            # probe servers at the VIP; only with dr or tun
//	    syn_proxy: auto                 # auto | on | off: answer SYNs with SYN cookies while
//	                                    # under SYN pressure (auto) or always (on); on needs
//	                                    # protocol tcp and forward nat or fullnat everywhere
//	    sloppy: false                   # IPVS's sloppy_tcp: a TCP packet (not SYN, not RST)
//	                                    # of an unknown connection starts one, toward dr and
//	                                    # tun servers (ECMP scale-out; always with mh);
//	                                    # default: director.sloppy; not with forward nat/fullnat
//	    proxy_protocol: none            # v1 | v2 | none: send each real server a PROXY protocol
//	                                    # header (HAProxy's v1 text or v2 binary: client and
//	                                    # VIP addresses and ports) ahead of the client's bytes,
//	                                    # even when the server speaks first; the server must
//	                                    # expect it (nginx: listen ... proxy_protocol); health
//	                                    # checks send none (use tcp, or check another port)
//	    toa: false                      # put the client's address and port in a TCP option
//	                                    # (kind 254) for the real server's toa kernel module;
//	                                    # proxy_protocol and toa: protocol tcp, not fwmark, and
//	                                    # forward fullnat for the service and every server
//	    real_servers:                   # optional list
//	      - address: 198.18.1.1         # required, same family as the vip
//	        port: 80                    # default: the service port; must equal it for dr and tun
//	        weight: 1                   # 0..2147483647 (as ipvsadm); 0 = quiescent
//	        forward: nat                # default: the service's
//	        upper_threshold: 0          # ipvsadm -x; 0 = no limit
//	        lower_threshold: 0          # ipvsadm -y; at most upper_threshold when that is set
//	        health_check: {}            # laid over the service's check key by key
//
// The syn_proxy and syn_* keys are the SYN-flood defence; the README's
// "SYN floods and overload" explains how they work together.
//
// A service is identified by vip, port and protocol; no two services may share
// them, nor two real servers of one service their address and port.
//
// # Firewall-mark services
//
// A service with fwmark instead of vip, port and protocol is a
// firewall-mark service (ipvsadm -f): it takes every packet that carries
// the mark, and its persistence binds a client to one real server across
// all the addresses, ports and protocols of the mark, as IPVS does (one
// template per client and mark). IPVS reads marks that iptables sets; the
// XDP program runs before netfilter, so here a mark is what its match says:
//
//	services:
//	  - name: web
//	    fwmark: 1                       # 1..4294967295; no vip, port or protocol keys
//	    match:                          # or the marks section's entry for fwmark 1
//	      addresses: [198.18.0.100, 198.18.2.0/24]   # addresses or prefixes, one family
//	      ports: [80, 443, "8000-8080"] # default: every port (1-65535)
//	      protocols: [tcp, udp]         # default: [tcp]
//	    scheduler: rr
//	    persistence: {timeout: 300s}
//	    real_servers:
//	      - address: 198.18.1.1         # port left out: 0, the packet's port is kept
//
// A packet matches when its destination address is in one of the
// prefixes, its destination port in one of the ranges and its protocol
// listed. Plain services are looked up first, but an overlap is refused
// anyway: no packet may match both a plain service (vip, port, protocol)
// and a mark, nor two marks. A mark's match is defined once: in the
// service or in marks. The marks section defines marks without a service,
// for govsadm -A -f N (govsd refuses -A -f N for a mark the file does not
// define). Limits (the XDP program's): at most 64 addresses or prefixes per
// mark and 8 (port range, protocol) pairs; a prefix falling inside another
// mark's prefix shares that prefix's table entry, which holds at most 16
// pairs in all. A real server's port defaults to 0: NAT and full-NAT
// rewrite the address and keep the client's destination port; a real
// server with a port maps every port of the mark to it. syn_proxy: on and
// check_via_vip are refused (the SYN proxy never engages for a mark);
// manage_vips and BGP leave a mark's addresses alone.
//
// # Health checks
//
//	health_check:
//	  type: tcp             # required in a block: tcp | http | https | udp | dns | exec | none
//	  interval: 2s
//	  timeout: 1s           # at most interval
//	  rise: 2               # successes before a server counts as healthy
//	  fall: 3               # failures before it counts as failed
//	  port: 8080            # default: the real server's port
//	  http:                 # only for http and https; optional
//	    method: GET
//	    path: /
//	    host: example.test  # default: the server's address
//	    expect_status: [200]
//	    expect_body: ok     # substring of the body; default: any body
//	  udp:                  # required for udp
//	    send: ping          # required
//	    expect: pong        # default: any reply
//	  dns:                  # required for dns
//	    query: example.test # required
//	    type: A             # A AAAA CNAME MX NS PTR SOA SRV TXT ANY
//	  exec:                 # required for exec
//	    command: [/usr/local/bin/check, "{address}", "{port}"]   # exit 0 = healthy
//
// Without a health_check a service's servers are not probed (type none). A
// real server's health_check overrides the service's key by key; when it
// changes the type (other than between http and https), the service's
// type-specific block (http, udp, dns, exec) is not inherited. The types,
// their blocks and the blocks' keys are those of the checkers registered
// in package healthcheck.
package config
