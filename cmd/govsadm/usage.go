package main

const versionText = "govsadm (ipvsadm v1.31 command line, IPVS v" + ipvsVersion + " listings)"

const usageText = `govsadm: control govsd with ipvsadm's commands and options
Usage:
  govsadm -A|E -t|u service-address|-f fwmark [-6] [-s scheduler] [-b sched-flags] [-p [timeout]] [-M netmask]
               [--proxy-protocol v1|v2|none] [--toa[=false]]
  govsadm -D -t|u service-address|-f fwmark
  govsadm -C
  govsadm -R
  govsadm -S [-n]
  govsadm -a|e -t|u service-address|-f fwmark -r server-address [options]
  govsadm -d -t|u service-address|-f fwmark -r server-address
  govsadm --add-laddr|--del-laddr -t|u service-address -z local-address
  govsadm -L|l [-n] [-c|-t|u service-address|-f fwmark|--timeout] [--stats|--rate|--thresholds|--persistent-conn]
               [--exact] [--nosort] [--json]
  govsadm -Z [-t|u service-address]
  govsadm --set tcp tcpfin udp
  govsadm --start-daemon master|backup --mcast-interface IF [--syncid N]
          [--mcast-group ADDR | --sync-peer ADDR [--sync-peer ADDR]...] [--mcast-port PORT] [--sync-key FILE]
  govsadm --stop-daemon master|backup
  govsadm -L --daemon
  govsadm -L --bgp [--json]
  govsadm --reload
  govsadm --shutdown
  govsadm --counters [--json]
  govsadm -h|-v

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options (options left out take their defaults,
                              but --proxy-protocol and --toa keep their values)
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin (every line is checked before any is applied)
  --save            -S        save rules to stdout, in the syntax -R reads
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server (only the options given change)
  --delete-server   -d        delete real server
  --add-laddr       -P        add a full-NAT local address to a service (govs)
  --del-laddr       -Q        delete a full-NAT local address of a service (govs)
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values (seconds; 0 keeps a value)
  --start-daemon STATE        start the connection synchronisation daemon (master or backup)
  --stop-daemon STATE         stop the connection synchronisation daemon
  --reload                    make govsd re-read its configuration file (govs)
  --shutdown                  stop govsd for good: detach XDP, remove its pinned state and VIPs (govs)
  --counters                  print govsd's counters: data path, XDP, SYN proxy, AF_XDP rings (govs)
  --help            -h        display this help message
  --version         -v        display the version

Options:
  --tcp-service  -t service-address   service-address is host[:port], e.g. 198.18.0.100:80
  --udp-service  -u service-address   or [2001:db8::100]:80
  --fwmark-service -f fwmark          a firewall-mark service; the mark's match (addresses,
                                      ports, protocols) must be in govsd's configuration
  --ipv6         -6                   with -f: the mark is IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|mh|fo|ovf|twos,
                                      the default scheduler is wlc.
  --sched-flags  -b flags             comma-separated scheduler flags: sh-fallback,sh-port (sh),
                                      mh-fallback,mh-port (mh), flag-1,flag-2,flag-3
  --persistent   -p [timeout]         persistent service (default timeout 300 seconds)
  --netmask      -M netmask           persistent granularity mask: dotted IPv4 mask (or prefix
                                      length), IPv6 prefix length 1..128
  --real-server  -r server-address    server-address is host[:port]; without a port, the
                                      service's port
  --gatewaying   -g                   gatewaying (direct routing) (default, as in ipvsadm)
  --ipip         -i                   ipip encapsulation (tunneling)
  --tun-type     ipip                 tunnel type: ipip (gue and gre are not supported)
  --masquerading -m                   masquerading (NAT)
  --fullnat                           full NAT: source and destination rewritten (govs); the
                                      service needs local addresses (--add-laddr)
  --weight       -w weight            capacity of real server, 0..2147483647 (default 1)
  --u-threshold  -x uthreshold        upper threshold of connections (0: none)
  --l-threshold  -y lthreshold        lower threshold of connections (0: none)
  --laddr        -z local-address     full-NAT local address for --add-laddr/--del-laddr
  --proxy-protocol v1|v2|none         a PROXY protocol header (v1 text, v2 binary) with the
                                      client's address and port, sent to each real server
                                      ahead of the client's bytes (govs; default none)
  --toa[=false]                       the client's address and port in a TCP option (kind
                                      254) for the real servers' toa module (govs). Both
                                      need a TCP service (-t) whose real servers are all
                                      full-NAT (--fullnat); -L lists them after the
                                      scheduler ("rr proxy-protocol v2 toa")
  --connection   -c                   output of current connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact        -X                   expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info (with -c:
                                      include persistence templates)
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --numeric      -n                   numeric output of addresses and ports (govsadm always
                                      prints numbers; -n is accepted)
  --json                              listings (-L, -Lc, -L --timeout, -L --bgp, --counters) as JSON
  --daemon                            output of daemon information (with -L): mode, group
                                      or peers, sent/received/rejected counts
  --bgp                               output of the BGP speaker (with -L, govs): peers with
                                      their session state, announced prefixes
  --mcast-interface IF                sync daemon's interface
  --mcast-group ADDR                  sync daemon's multicast group (default 239.255.81.49;
                                      not IPVS's 224.0.0.81: the formats differ)
  --mcast-port PORT                   sync daemon's port (default 8849; IPVS's is 8848)
  --syncid N                          sync daemon's id, 0..255 (default 0)
  --sync-key FILE                     shared HMAC key of the sync daemons (govs; default
                                      director.sync.key_file)
  --sync-peer ADDR                    unicast sync instead of multicast (govs): a peer
                                      director's address; repeat for each peer. A master
                                      sends to every peer, a backup accepts only them
  --socket PATH                       govsd's control socket; default $GOVS_SOCKET, else
                                      /run/govs.sock

Short options may be bundled (-Ln, -Lnc, -w3). Without -g, -i, -m or --fullnat
a real server added with -a uses direct routing (-g), as with ipvsadm; direct
routing and tunnelling keep the service's port.
Not supported: --sctp-service, -o/--ops, --pe,
--mcast-ttl, --sync-maxlen, --tun-type gue/gre and the other --tun-* options.
Exit status: 0 on success, 2 for a refused command line, 1 when govsd refuses
the command or cannot be reached.
`
