// Command govsadm controls a running govsd the way ipvsadm controls IPVS: it
// takes ipvsadm's commands and options and prints ipvsadm's tables, so that
// scripts and habits written for ipvsadm keep working.
//
//	govsadm -A -t 198.18.0.100:80 -s rr
//	govsadm -a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m -w 1
//	govsadm -L -n [--stats|--rate|--thresholds|--persistent-conn] [--exact]
//	govsadm -L -n -c                   connection table
//	govsadm -S -n > rules; govsadm -R < rules
//	govsadm --add-laddr -t 198.18.0.100:80 -z 198.18.1.250
//	govsadm -E -t 198.18.0.100:80 -s rr --proxy-protocol v2 --toa
//	govsadm -L --bgp [--json]          BGP peers, session states, announced prefixes
//	govsadm --reload                   re-read govsd's configuration file
//	govsadm --shutdown                 stop govsd for good (SIGTERM keeps its state for the next one)
//
// It talks to govsd's control API (package control) on the unix socket
// named by --socket, else $GOVS_SOCKET, else /run/govs.sock.
//
// The code is split as ipvsadm's own flow is: parse.go turns the arguments
// into a command (checking ipvsadm's table of legal command/option
// combinations), addr.go reads addresses, ports and masks, exec.go carries it out against the API and turns API
// refusals into ipvsadm's messages, print.go prints the listings, save.go
// writes -S rules and reads -R input, and usage.go is the --help text.
//
// Where govsadm departs from ipvsadm it says so in --help: names are never
// resolved on output (listings are always numeric), -e changes only the
// options given, -R checks every line before applying any, -S also saves
// thresholds, full-NAT local addresses and the client-address options, and
// the forwarding method --fullnat, the service options --proxy-protocol
// and --toa (listed after the scheduler, "proxy-protocol v2 toa", only
// when set), the commands --add-laddr, --del-laddr, --reload, --shutdown
// and --counters and the listing -L --bgp are govs additions.
package main
