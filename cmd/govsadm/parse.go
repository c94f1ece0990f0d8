package main

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/govs/govs/control"
	"github.com/govs/govs/lvs"
)

// cmdKind is the one command of an invocation, as ipvsadm allows exactly one.
type cmdKind int

const (
	cmdNone cmdKind = iota
	cmdAddService
	cmdEditService
	cmdDelService
	cmdClear
	cmdList
	cmdAddDest
	cmdDelDest
	cmdEditDest
	cmdSetTimeouts
	cmdRestore
	cmdSave
	cmdZero
	cmdAddLaddr
	cmdDelLaddr
	cmdReload
	cmdShutdown
	cmdCounters
	cmdStartDaemon
	cmdStopDaemon
	cmdHelp
	cmdVersion
)

// cmdNames are ipvsadm's names for its commands, used in its error messages
// ("Illegal 'weight' option with the 'add-service' command").
var cmdNames = map[cmdKind]string{
	cmdAddService:  "add-service",
	cmdEditService: "edit-service",
	cmdDelService:  "delete-service",
	cmdClear:       "flush",
	cmdList:        "list",
	cmdAddDest:     "add-server",
	cmdDelDest:     "delete-server",
	cmdEditDest:    "edit-server",
	cmdSetTimeouts: "set",
	cmdRestore:     "restore",
	cmdSave:        "save",
	cmdZero:        "zero",
	cmdAddLaddr:    "add-laddr",
	cmdDelLaddr:    "del-laddr",
	cmdReload:      "reload",
	cmdShutdown:    "shutdown",
	cmdCounters:    "counters",
	cmdStartDaemon: "start-daemon",
	cmdStopDaemon:  "stop-daemon",
}

// optBit is one option class of ipvsadm's command/option table; -t and -u
// are both "service-address", -g -i -m --fullnat are "forwarding-method".
type optBit uint32

const (
	optNumeric optBit = 1 << iota
	optConnection
	optService
	optScheduler
	optPersistent
	optNetmask
	optServer
	optForward
	optWeight
	optUThreshold
	optLThreshold
	optTimeout
	optStats
	optRate
	optThresholds
	optPersistentConn
	optNoSort
	optExact
	optSchedFlags
	optLaddr
	optJSON
	optDaemon
	optMcastInterface
	optMcastGroup
	optMcastPort
	optSyncID
	optSyncKey
	optSyncPeer
	optBGP
	optProxyProtocol
	optTOA
)

// optNames are in bit order; the first ones are ipvsadm's own.
var optNames = []string{
	"numeric", "connection", "service-address", "scheduler", "persistent",
	"netmask", "real-server", "forwarding-method", "weight", "u-threshold",
	"l-threshold", "timeout", "stats", "rate", "thresholds", "persistent-conn",
	"nosort", "exact", "sched-flags", "laddr", "json", "daemon",
	"mcast-interface", "mcast-group", "mcast-port", "syncid", "sync-key",
	"sync-peer", "bgp", "proxy-protocol", "toa",
}

// cmdRule says which options a command needs, may take, and which of them
// exclude each other; every other option is illegal with it. This is
// ipvsadm's commands_v_options table ('+', ' ', '1', 'x').
type cmdRule struct {
	required, optional, exclusive optBit
}

const (
	listFormats = optNumeric | optStats | optRate | optThresholds | optPersistentConn | optNoSort | optExact | optJSON
	serviceOpts = optScheduler | optPersistent | optNetmask | optSchedFlags | optProxyProtocol | optTOA
	destOpts    = optForward | optWeight | optUThreshold | optLThreshold
)

var cmdRules = map[cmdKind]cmdRule{
	cmdAddService:  {required: optService, optional: serviceOpts},
	cmdEditService: {required: optService, optional: serviceOpts},
	cmdDelService:  {required: optService},
	cmdClear:       {},
	cmdList:        {optional: listFormats, exclusive: optConnection | optService | optTimeout | optDaemon | optBGP},
	cmdAddDest:     {required: optService | optServer, optional: destOpts},
	cmdDelDest:     {required: optService | optServer},
	cmdEditDest:    {required: optService | optServer, optional: destOpts},
	cmdSetTimeouts: {},
	cmdRestore:     {},
	cmdSave:        {optional: optNumeric},
	cmdZero:        {optional: optService},
	cmdAddLaddr:    {required: optService | optLaddr},
	cmdDelLaddr:    {required: optService | optLaddr},
	cmdReload:      {},
	cmdShutdown:    {},
	cmdCounters:    {optional: optJSON},
	cmdStartDaemon: {required: optMcastInterface, optional: optMcastGroup | optMcastPort | optSyncID | optSyncKey | optSyncPeer},
	cmdStopDaemon:  {},
}

const (
	// maxTimeout is ipvsadm's MAX_TIMEOUT: 31 days.
	maxTimeout = 86400 * 31
	// defaultPersistence is IPVS_SVC_PERSISTENT_TIMEOUT, taken by a bare -p.
	defaultPersistence = 300
)

// forwardOptions are the forwarding-method options' methods.
var forwardOptions = map[string]lvs.Fwd{"g": lvs.FwdDR, "i": lvs.FwdTun, "m": lvs.FwdNAT, "fullnat": lvs.FwdFullNAT}

// listFormat selects what -L prints and how.
type listFormat struct {
	numeric, stats, rate, thresholds, persistentConn, nosort, exact, json bool
}

// command is one parsed invocation (or one line of -R input).
type command struct {
	kind   cmdKind
	opts   optBit
	socket string

	service    control.ServiceKey
	serviceIP  netip.Addr // for -f, the unspecified address of the family (-6: IPv6)
	ipv6       bool       // -6: an IPv6 firewall-mark service
	scheduler  string
	schedFlags []string
	persistent int
	netmask    string
	// proxyProtocol is --proxy-protocol's version as the API takes it
	// ("v1", "v2", "none"); toa is --toa's value. Each counts only when
	// its option was given: -E keeps what was not.
	proxyProtocol string
	toa           bool

	destIP   netip.Addr
	destPort uint16
	forward  string // lvs.Fwd.Name(), as the API takes it; "" when none was given
	weight   int
	upper    uint32
	lower    uint32

	tunType string // --tun-type: "ipip", the only one govsd has

	laddr    netip.Addr
	timeouts control.Timeouts
	format   listFormat
	daemon   control.SyncDaemon // --start-daemon / --stop-daemon
}

func (c *command) has(o optBit) bool { return c.opts&o != 0 }

// clientAddr reports whether the command turns on a PROXY protocol header
// or TOA (turning them off is fine anywhere).
func (c *command) clientAddr() bool {
	return (c.has(optProxyProtocol) && c.proxyProtocol != lvs.ProxyNone.String()) || (c.has(optTOA) && c.toa)
}

// forwards reports whether the command's forwarding method is f.
func (c *command) forwards(f lvs.Fwd) bool { return c.forward == f.Name() }

// usageError is a refusal of the command line itself; govsadm exits 2, as
// ipvsadm's fail(2, ...) does.
type usageError struct {
	msg     string
	tryHelp bool // follow with the "Try govsadm --help" hint
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// argKind says whether an option takes a value.
type argKind int

const (
	noArg argKind = iota
	needArg
	optionalArg // only -p: the next word is taken unless it starts with '-'
	// equalsArg takes a value only as --name=value (--toa=false), never
	// the next word, so that a bare --toa is a switch wherever it stands.
	equalsArg
)

type optionDef struct {
	long  string
	short byte
	arg   argKind
	key   string
}

// optionDefs are ipvsadm's options with their long forms, govs additions,
// and ipvsadm options govsd has no counterpart for (key "unsupported").
var optionDefs = []optionDef{
	{"add-service", 'A', noArg, "A"},
	{"edit-service", 'E', noArg, "E"},
	{"delete-service", 'D', noArg, "D"},
	{"clear", 'C', noArg, "C"},
	{"list", 'L', noArg, "L"},
	{"", 'l', noArg, "L"},
	{"zero", 'Z', noArg, "Z"},
	{"add-server", 'a', noArg, "a"},
	{"edit-server", 'e', noArg, "e"},
	{"delete-server", 'd', noArg, "d"},
	{"set", 0, noArg, "set"},
	{"help", 'h', noArg, "h"},
	{"version", 'v', noArg, "v"},
	{"restore", 'R', noArg, "R"},
	{"save", 'S', noArg, "S"},
	{"add-laddr", 'P', noArg, "add-laddr"},
	{"del-laddr", 'Q', noArg, "del-laddr"},
	{"reload", 0, noArg, "reload"},
	{"shutdown", 0, noArg, "shutdown"},
	{"counters", 0, noArg, "counters"},

	{"tcp-service", 't', needArg, "t"},
	{"udp-service", 'u', needArg, "u"},
	{"scheduler", 's', needArg, "s"},
	{"sched-flags", 'b', needArg, "b"},
	{"persistent", 'p', optionalArg, "p"},
	{"netmask", 'M', needArg, "M"},
	{"real-server", 'r', needArg, "r"},
	{"gatewaying", 'g', noArg, "g"},
	{"ipip", 'i', noArg, "i"},
	{"masquerading", 'm', noArg, "m"},
	{"fullnat", 0, noArg, "fullnat"},
	{"weight", 'w', needArg, "w"},
	{"u-threshold", 'x', needArg, "x"},
	{"l-threshold", 'y', needArg, "y"},
	{"laddr", 'z', needArg, "z"},
	{"numeric", 'n', noArg, "n"},
	{"connection", 'c', noArg, "c"},
	{"timeout", 0, noArg, "timeout"},
	{"stats", 0, noArg, "stats"},
	{"rate", 0, noArg, "rate"},
	{"thresholds", 0, noArg, "thresholds"},
	{"persistent-conn", 0, noArg, "persistent-conn"},
	{"nosort", 0, noArg, "nosort"},
	{"sort", 0, noArg, "sort"},
	{"exact", 'X', noArg, "X"},
	{"json", 0, noArg, "json"},
	{"socket", 0, needArg, "socket"},
	{"proxy-protocol", 0, needArg, "proxy-protocol"},
	{"toa", 0, equalsArg, "toa"},

	{"fwmark-service", 'f', needArg, "f"},
	{"sctp-service", 0, needArg, "unsupported"},
	{"ipv6", '6', noArg, "6"},
	{"ops", 'o', noArg, "unsupported"},
	{"pe", 0, needArg, "unsupported"},
	{"start-daemon", 0, needArg, "start-daemon"},
	{"stop-daemon", 0, needArg, "stop-daemon"},
	{"daemon", 0, noArg, "daemon"},
	{"bgp", 0, noArg, "bgp"},
	{"mcast-interface", 0, needArg, "mcast-interface"},
	{"mcast-group", 0, needArg, "mcast-group"},
	{"mcast-port", 0, needArg, "mcast-port"},
	{"sync-key", 0, needArg, "sync-key"},
	{"sync-peer", 0, needArg, "sync-peer"},
	{"mcast-ttl", 0, needArg, "unsupported"},
	{"sync-maxlen", 0, needArg, "unsupported"},
	{"syncid", 0, needArg, "syncid"},
	{"tun-info", 0, noArg, "unsupported"},
	{"tun-type", 0, needArg, "tun-type"},
	{"tun-port", 0, needArg, "unsupported"},
	{"tun-nocsum", 0, noArg, "unsupported"},
	{"tun-csum", 0, noArg, "unsupported"},
	{"tun-remcsum", 0, noArg, "unsupported"},
}

// unsupportedWhy explains the ipvsadm options govsd has no counterpart for.
var unsupportedWhy = map[string]string{
	"sctp-service": "SCTP services are not supported by govsd",
	"ops":          "one-packet scheduling is not supported by govsd",
	"pe":           "persistence engines are not supported by govsd",
	"tun-port":     "govsd tunnels with IPIP only",
	"tun-nocsum":   "govsd tunnels with IPIP only",
	"tun-csum":     "govsd tunnels with IPIP only",
	"tun-remcsum":  "govsd tunnels with IPIP only",
	"tun-info":     "govsd tunnels with IPIP only",
}

func lookupLong(name string) *optionDef {
	for i := range optionDefs {
		if optionDefs[i].long == name && name != "" {
			return &optionDefs[i]
		}
	}
	return nil
}

func lookupShort(c byte) *optionDef {
	for i := range optionDefs {
		if optionDefs[i].short == c && c != 0 {
			return &optionDefs[i]
		}
	}
	return nil
}

// parser turns arguments into a command.
type parser struct {
	getenv    func(string) string
	res       resolver
	inRestore bool // parsing a line of -R input
}

// parseState is what a parse collects before the command is checked.
type parseState struct {
	p          *parser
	cmd        *command
	rawNetmask string
	rawDest    string
	rawFlags   string
	positional []string
	sawOption  bool // anything other than --socket was given
}

// parse reads one invocation: ipvsadm's options in any order, long forms
// (--weight 3, --weight=3), bundled short options (-Ln, -Lnc, -w3), and the
// three positional values of --set.
func (p *parser) parse(args []string) (*command, error) {
	st := &parseState{p: p, cmd: &command{}}
	if p.getenv != nil {
		st.cmd.socket = p.getenv("GOVS_SOCKET")
	}
	if st.cmd.socket == "" {
		st.cmd.socket = control.DefaultSocket
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			st.positional = append(st.positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			def := lookupLong(name)
			if def == nil {
				return nil, &usageError{msg: fmt.Sprintf("unknown option `--%s'", name), tryHelp: true}
			}
			display := "--" + name
			switch def.arg {
			case noArg:
				if hasVal {
					return nil, usagef("option `%s' does not take an argument", display)
				}
			case needArg:
				if !hasVal {
					if i+1 >= len(args) {
						return nil, usagef("option `%s' requires an argument", display)
					}
					i++
					val, hasVal = args[i], true
				}
			case optionalArg:
				if !hasVal && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					i++
					val, hasVal = args[i], true
				}
			}
			if done, err := st.apply(def, display, val, hasVal); err != nil {
				return nil, err
			} else if done {
				return st.cmd, nil
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				def := lookupShort(a[j])
				if def == nil {
					return nil, &usageError{msg: fmt.Sprintf("unknown option `-%c'", a[j]), tryHelp: true}
				}
				display := "-" + string(a[j])
				val, hasVal := "", false
				rest := a[j+1:]
				switch def.arg {
				case needArg:
					if rest != "" {
						val, hasVal = rest, true
					} else if i+1 < len(args) {
						i++
						val, hasVal = args[i], true
					} else {
						return nil, usagef("option `%s' requires an argument", display)
					}
					j = len(a)
				case optionalArg:
					if rest != "" {
						val, hasVal = rest, true
					} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
						i++
						val, hasVal = args[i], true
					}
					j = len(a)
				}
				if done, err := st.apply(def, display, val, hasVal); err != nil {
					return nil, err
				} else if done {
					return st.cmd, nil
				}
			}
		default:
			st.positional = append(st.positional, a)
		}
	}
	if err := st.finish(); err != nil {
		return nil, err
	}
	return st.cmd, nil
}

func (st *parseState) setCommand(k cmdKind) error {
	if st.cmd.kind != cmdNone {
		return usagef("multiple commands specified")
	}
	st.cmd.kind = k
	return nil
}

func (st *parseState) setOption(o optBit) error {
	if st.cmd.opts&o != 0 {
		return usagef("multiple '%s' options specified", optName(o))
	}
	st.cmd.opts |= o
	return nil
}

func optName(o optBit) string {
	for i := range optNames {
		if o == 1<<i {
			return optNames[i]
		}
	}
	return "?"
}

// commandOptions are the options that name the command, with no more to
// check than that it is the only one.
var commandOptions = map[string]cmdKind{
	"A": cmdAddService, "E": cmdEditService, "D": cmdDelService, "C": cmdClear,
	"L": cmdList, "Z": cmdZero, "a": cmdAddDest, "e": cmdEditDest, "d": cmdDelDest,
	"set": cmdSetTimeouts, "S": cmdSave, "add-laddr": cmdAddLaddr, "del-laddr": cmdDelLaddr,
	"reload": cmdReload, "shutdown": cmdShutdown, "counters": cmdCounters,
}

// switchOptions are the options that take no value and are only recorded.
var switchOptions = map[string]optBit{
	"n": optNumeric, "c": optConnection, "timeout": optTimeout, "daemon": optDaemon, "bgp": optBGP,
	"stats": optStats, "rate": optRate, "thresholds": optThresholds, "persistent-conn": optPersistentConn,
	"nosort": optNoSort, "X": optExact, "json": optJSON,
}

// apply handles one option; done reports that parsing ends here (help,
// version). The options with values are handled by kind: the service's,
// the real server's, the sync daemon's.
func (st *parseState) apply(def *optionDef, display, val string, hasVal bool) (done bool, err error) {
	if def.key != "socket" {
		st.sawOption = true
	}
	if k, ok := commandOptions[def.key]; ok {
		return false, st.setCommand(k)
	}
	if o, ok := switchOptions[def.key]; ok {
		return false, st.setOption(o)
	}
	switch def.key {
	case "h", "v":
		if st.p.inRestore {
			return false, usagef("%s is not allowed in restore input", display)
		}
		st.cmd.kind = cmdHelp
		if def.key == "v" {
			st.cmd.kind = cmdVersion
		}
		return true, nil
	case "R":
		if st.p.inRestore {
			return false, usagef("-R is not allowed in restore input")
		}
		return false, st.setCommand(cmdRestore)
	case "t", "u", "f", "6", "s", "b", "p", "M", "z", "proxy-protocol", "toa":
		return false, st.applyService(def.key, val, hasVal)
	case "r", "g", "i", "m", "fullnat", "w", "x", "y", "tun-type":
		return false, st.applyDest(def.key, display, val)
	case "start-daemon", "stop-daemon", "mcast-interface", "mcast-group", "mcast-port", "syncid", "sync-key", "sync-peer":
		return false, st.applySync(def.key, val)
	case "sort":
		// Sorting is the default; ipvsadm keeps --sort for old scripts.
	case "socket":
		if st.p.inRestore {
			return false, usagef("--socket is not allowed in restore input")
		}
		if val == "" {
			return false, usagef("option `--socket' requires a path")
		}
		st.cmd.socket = val
	case "unsupported":
		why := unsupportedWhy[def.long]
		if why == "" {
			why = "not supported by govsd's sync daemon (messages are sized to the path MTU, TTL is 1)"
		}
		return false, usagef("option `%s': %s", display, why)
	default:
		return false, usagef("option `%s' is not implemented", display)
	}
	return false, nil
}

// applyService handles the options that say which service and how it
// schedules: -t -u -f -6 -s -b -p -M, -z, a local address of it, and
// --proxy-protocol and --toa, how its full-NAT real servers learn the
// client's address.
func (st *parseState) applyService(key, val string, hasVal bool) error {
	c := st.cmd
	switch key {
	case "t", "u":
		if err := st.setOption(optService); err != nil {
			return err
		}
		proto := lvs.ProtoTCP
		if key == "u" {
			proto = lvs.ProtoUDP
		}
		ip, port, _, ok := st.p.parseAddrPort(val, proto.Name())
		if !ok {
			return usagef("illegal virtual server address[:port] specified")
		}
		c.service = control.ServiceKey{Protocol: proto.Name(), VIP: ip.String(), Port: port}
		c.serviceIP = ip
	case "f":
		if err := st.setOption(optService); err != nil {
			return err
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n == 0 {
			return usagef("illegal virtual server firewall-mark specified")
		}
		c.service = control.ServiceKey{FwMark: uint32(n)}
		c.serviceIP = netip.IPv4Unspecified()
	case "6":
		c.ipv6 = true
	case "s":
		if err := st.setOption(optScheduler); err != nil {
			return err
		}
		if val == "" {
			return usagef("illegal scheduler specified")
		}
		c.scheduler = val
	case "b":
		if err := st.setOption(optSchedFlags); err != nil {
			return err
		}
		st.rawFlags = val
	case "p":
		if err := st.setOption(optPersistent); err != nil {
			return err
		}
		c.persistent = defaultPersistence
		if hasVal {
			n, ok := parseNumber(val, 1, maxTimeout)
			if !ok {
				return usagef("invalid timeout value `%s' specified", val)
			}
			c.persistent = n
		}
	case "M":
		if err := st.setOption(optNetmask); err != nil {
			return err
		}
		st.rawNetmask = val
	case "z":
		if err := st.setOption(optLaddr); err != nil {
			return err
		}
		ip, err := netip.ParseAddr(val)
		if err != nil || ip.Zone() != "" {
			return usagef("illegal local address specified")
		}
		c.laddr = ip.Unmap()
	case "proxy-protocol":
		if err := st.setOption(optProxyProtocol); err != nil {
			return err
		}
		v, err := lvs.ParseProxyProtocol(val)
		if err != nil || val == "" {
			return usagef("illegal proxy protocol version `%s' specified (v1, v2 or none)", val)
		}
		c.proxyProtocol = v.String()
	case "toa":
		if err := st.setOption(optTOA); err != nil {
			return err
		}
		c.toa = true
		if hasVal {
			v, err := strconv.ParseBool(val)
			if err != nil {
				return usagef("illegal toa value `%s' specified (--toa, --toa=true or --toa=false)", val)
			}
			c.toa = v
		}
	}
	return nil
}

// applyDest handles the options of a real server: -r, the forwarding
// method, -w -x -y and --tun-type.
func (st *parseState) applyDest(key, display, val string) error {
	c := st.cmd
	switch key {
	case "r":
		if err := st.setOption(optServer); err != nil {
			return err
		}
		st.rawDest = val
	case "g", "i", "m", "fullnat":
		if err := st.setOption(optForward); err != nil {
			return err
		}
		c.forward = forwardOptions[key].Name()
	case "w":
		if err := st.setOption(optWeight); err != nil {
			return err
		}
		n, ok := parseNumber(val, 0, math.MaxInt32)
		if !ok {
			return usagef("illegal weight specified")
		}
		c.weight = n
	case "x":
		if err := st.setOption(optUThreshold); err != nil {
			return err
		}
		n, ok := parseNumber(val, 0, math.MaxInt32)
		if !ok {
			return usagef("illegal u_threshold specified")
		}
		c.upper = uint32(n)
	case "y":
		if err := st.setOption(optLThreshold); err != nil {
			return err
		}
		n, ok := parseNumber(val, 0, math.MaxInt32)
		if !ok {
			return usagef("illegal l_threshold specified")
		}
		c.lower = uint32(n)
	case "tun-type":
		switch strings.ToLower(val) {
		case "ipip":
			c.tunType = "ipip"
		case "gue", "gre":
			return usagef("option `%s': tunnel type %s is not supported: govsd tunnels with IPIP only (--tun-type ipip)", display, val)
		default:
			return usagef("illegal tunnel type %q specified (govsd tunnels with ipip)", val)
		}
	}
	return nil
}

// applySync handles the sync daemon's options (--start-daemon and
// --stop-daemon are commands that take the role).
func (st *parseState) applySync(key, val string) error {
	c := st.cmd
	switch key {
	case "start-daemon", "stop-daemon":
		if val != "master" && val != "backup" {
			return usagef("illegal start_daemon specified")
		}
		c.daemon.Role = val
		if key == "start-daemon" {
			return st.setCommand(cmdStartDaemon)
		}
		return st.setCommand(cmdStopDaemon)
	case "mcast-interface":
		c.daemon.Interface = val
		return st.setOption(optMcastInterface)
	case "mcast-group":
		a, err := netip.ParseAddr(val)
		if err != nil || !a.IsMulticast() {
			return usagef("invalid mcast-group address")
		}
		if c.has(optSyncPeer) {
			return usagef("--mcast-group and --sync-peer exclude each other (multicast or unicast sync)")
		}
		c.daemon.Group = a.String()
		return st.setOption(optMcastGroup)
	case "mcast-port":
		n, ok := parseNumber(val, 1, 65535)
		if !ok {
			return usagef("illegal mcast-port specified")
		}
		c.daemon.Port = uint16(n)
		return st.setOption(optMcastPort)
	case "syncid":
		n, ok := parseNumber(val, 0, 255)
		if !ok {
			return usagef("illegal syncid specified")
		}
		c.daemon.SyncID = uint8(n)
		return st.setOption(optSyncID)
	case "sync-key":
		c.daemon.KeyFile = val
		return st.setOption(optSyncKey)
	case "sync-peer":
		// govs: unicast sync, one --sync-peer per peer (ipvsadm has no
		// syntax for it); instead of --mcast-group.
		if c.has(optMcastGroup) {
			return usagef("--mcast-group and --sync-peer exclude each other (multicast or unicast sync)")
		}
		a, err := netip.ParseAddr(val)
		if err != nil || a.Zone() != "" || a.IsMulticast() || a.IsUnspecified() {
			return usagef("illegal sync-peer address %q specified", val)
		}
		a = a.Unmap()
		if slices.Contains(c.daemon.Peers, a.String()) {
			return usagef("sync-peer %s specified twice", a)
		}
		c.daemon.Peers = append(c.daemon.Peers, a.String())
		c.opts |= optSyncPeer // repeatable
	}
	return nil
}

// finish checks the whole command as ipvsadm's process_options does, in its
// order: positional values, scheduler flags, the command/option table, then
// the per-command rules.
func (st *parseState) finish() error {
	c := st.cmd
	if c.kind == cmdNone {
		if !st.sawOption && len(st.positional) == 0 {
			// ipvsadm with no arguments lists the table.
			c.kind = cmdList
		} else {
			return &usageError{msg: "no command specified", tryHelp: true}
		}
	}
	if c.kind == cmdSetTimeouts {
		if len(st.positional) < 3 {
			return usagef("--set option requires 3 timeout values")
		}
		var v [3]int
		for i := range v {
			n, ok := parseNumber(st.positional[i], 0, maxTimeout)
			if !ok {
				return usagef("invalid timeout value `%s' specified", st.positional[i])
			}
			v[i] = n
		}
		c.timeouts = control.Timeouts{TCP: v[0], TCPFin: v[1], UDP: v[2]}
		st.positional = st.positional[3:]
	}
	if len(st.positional) > 0 {
		return usagef("unexpected argument %s", st.positional[0])
	}
	if c.has(optSchedFlags) {
		sched := c.scheduler
		if sched == "" {
			sched = lvs.DefaultScheduler
		}
		flags, err := parseSchedFlags(sched, st.rawFlags)
		if err != nil {
			return err
		}
		c.schedFlags = flags
	}
	if err := checkOptions(c.kind, c.opts); err != nil {
		return err
	}

	if c.ipv6 {
		if c.service.FwMark == 0 {
			return usagef("-6 used before -f")
		}
		c.serviceIP = netip.IPv6Unspecified()
	}
	switch c.kind {
	case cmdAddService, cmdEditService:
		if c.service.Port == 0 && c.service.FwMark == 0 && !c.has(optPersistent) {
			return usagef("Zero port specified for non-persistent service")
		}
		if c.scheduler == "" {
			c.scheduler = lvs.DefaultScheduler
		}
		if c.clientAddr() && c.service.Protocol != lvs.ProtoTCP.Name() {
			// UDP has no stream to put a header in, no options to carry
			// TOA; a mark's packets have no one protocol.
			return usagef("--proxy-protocol and --toa are only for TCP services (-t)")
		}
		if c.has(optNetmask) {
			mask, err := parseNetmask(st.rawNetmask, c.serviceIP.Is6())
			if err != nil {
				return err
			}
			c.netmask = mask
		}
	case cmdAddDest, cmdEditDest, cmdDelDest:
		proto := c.service.Protocol
		if proto == "" {
			proto = lvs.ProtoTCP.Name() // an fwmark service: named ports as TCP's
		}
		ip, port, hasPort, ok := st.p.parseAddrPort(st.rawDest, proto)
		if !ok {
			return usagef("illegal real server address[:port] specified")
		}
		c.destIP, c.destPort = ip, port
		if !hasPort {
			// ipvsadm: "the port specified in the service address will
			// be used if port is not specified".
			c.destPort = c.service.Port
		}
		if c.kind == cmdAddDest && c.forward == "" {
			// ipvsadm's default forwarding method is direct routing (-g).
			c.forward = lvs.FwdDR.Name()
		}
		if c.kind != cmdDelDest && (c.forwards(lvs.FwdDR) || c.forwards(lvs.FwdTun)) {
			// Direct routing and tunnelling cannot map ports: the
			// server's port is the service's, whatever was given.
			c.destPort = c.service.Port
		}
		if c.kind != cmdDelDest && c.forward != "" && !c.forwards(lvs.FwdTun) && c.destIP.Is6() != c.serviceIP.Is6() {
			return usagef("Different address family is allowed only for tunneling servers")
		}
		if c.kind == cmdAddDest && !c.has(optWeight) {
			c.weight = 1
		}
		if c.tunType != "" && c.kind != cmdDelDest && !c.forwards(lvs.FwdTun) {
			return usagef("--tun-type is only for tunnelling servers (-i)")
		}
	case cmdList:
		conflicting := c.has(optConnection|optTimeout) && c.has(optStats|optRate|optThresholds)
		if conflicting || (c.has(optTimeout) && c.has(optPersistentConn)) {
			return usagef("options conflicts in the list command")
		}
	}
	c.format = listFormat{
		numeric:        c.has(optNumeric),
		stats:          c.has(optStats),
		rate:           c.has(optRate),
		thresholds:     c.has(optThresholds),
		persistentConn: c.has(optPersistentConn),
		nosort:         c.has(optNoSort),
		exact:          c.has(optExact),
		json:           c.has(optJSON),
	}
	return nil
}

// checkOptions is ipvsadm's generic_opt_check: options are examined in
// table order and the first problem is reported.
func checkOptions(k cmdKind, opts optBit) error {
	rule := cmdRules[k]
	count, last := 0, ""
	for i, name := range optNames {
		bit := optBit(1) << i
		if opts&bit == 0 {
			if rule.required&bit != 0 {
				return usagef("You need to supply the '%s' option for the '%s' command", name, cmdNames[k])
			}
			continue
		}
		if (rule.required|rule.optional|rule.exclusive)&bit == 0 {
			return usagef("Illegal '%s' option with the '%s' command", name, cmdNames[k])
		}
		if rule.exclusive&bit != 0 {
			count++
			if count > 1 {
				return usagef("The option '%s' conflicts with the '%s' option in the '%s' command", name, last, cmdNames[k])
			}
			last = name
		}
	}
	return nil
}

// parseSchedFlags checks -b's comma-separated list as ipvsadm does: a
// scheduler's flags only go with it (lvs.SchedulerFlags); IPVS's numbered
// flag-1, flag-2 and flag-3 go with any.
func parseSchedFlags(sched, arg string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(arg, ",") {
		if f == "" {
			if arg == "" {
				return nil, usagef("invalid scheduler flag `%s'", f)
			}
			continue // strtok skips empty fields
		}
		switch owner, named := lvs.SchedulerOfFlag(f); {
		case f == "flag-1" || f == "flag-2" || f == "flag-3":
		case !named:
			return nil, usagef("invalid scheduler flag `%s'", f)
		case owner != sched:
			return nil, usagef("incompatible scheduler flag `%s'", f)
		}
		if !contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
