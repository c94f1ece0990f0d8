package config

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/govs/govs/healthcheck"
	"github.com/govs/govs/lvs"
)

// Config is a validated govsd configuration with every default applied.
type Config struct {
	Director Director
	Services []Service
	// Marks are the firewall marks with their matches, sorted by mark:
	// those of the marks section and those of fwmark services' own match
	// sections. govsadm -A -f N may create a service for any of them.
	Marks []Mark
}

// Mark returns the definition of firewall mark id, or nil.
func (c *Config) Mark(id uint32) *Mark {
	for i := range c.Marks {
		if c.Marks[i].FwMark == id {
			return &c.Marks[i]
		}
	}
	return nil
}

// Director is the machine-wide part of the configuration.
type Director struct {
	Interfaces []string
	// AcceptForeignMAC lists the interfaces (of Interfaces) on which the
	// XDP program classifies frames unicast to any MAC, not only to the
	// interface's own (director.accept_foreign_mac): for MAC-VLAN or VRRP
	// virtual MACs (keepalived use_vmac). Elsewhere such frames, which
	// only a promiscuous interface receives, go to the kernel.
	AcceptForeignMAC []string
	XDPMode          XDPMode
	ControlSocket    string
	// MetricsListen is the host:port of the Prometheus endpoint; "" disables it.
	MetricsListen string
	ConnTableSize int
	Timeouts      Timeouts
	ManageVIPs    bool
	// ControlGroup names a group (name or number) whose members may list
	// through the control socket (govsadm -L, --stats, -c, --counters);
	// "" lets only uid 0 and holders of CAP_NET_ADMIN use it. Changes
	// always need uid 0 or CAP_NET_ADMIN.
	ControlGroup string
	// ExpireQuiescentTemplate is the services' default for their
	// expire_quiescent_template key.
	ExpireQuiescentTemplate bool
	// BusyPoll makes the workers spin instead of sleeping in poll(2).
	BusyPoll bool
	// WorkerNice is the nice value of the workers' threads (-20..19; 0
	// keeps govsd's own): above the kernel's receive processing
	// (ksoftirqd and threaded NAPI run at 0), so that under overload the
	// core goes to the workers rather than to copying frames into rings
	// they have no time to drain (receive livelock).
	WorkerNice int
	// FastPath lets the XDP program forward established connections
	// itself (default true); false sends every packet to the workers.
	FastPath bool
	// Sloppy is the services' default for their sloppy key.
	Sloppy bool
	// BPFPinPath is the bpffs directory where govsd pins its XDP links,
	// the fast path's flow map, the SYN-cookie key and the connection
	// mirror, so that they outlive the process and the next govsd adopts
	// them (restart, crash, upgrade); "" pins nothing and everything goes
	// with the process.
	BPFPinPath string
	SynGuard   SynGuard
	// SteerLimit is the steering meter (director.steer_limit): how many
	// packets of flows the workers do not know yet the XDP program passes
	// to each RX queue's worker per second.
	SteerLimit SteerLimit
	Sync       *Sync // nil: no connection synchronisation
	BGP        *BGP  // nil: no BGP announcements
}

// SynGuard is the SYN-flood defence (the director keys syn_proxy_* and
// syn_limit*): when services with syn_proxy: auto start answering SYNs with
// cookies, and how many SYNs the XDP program lets through to the workers.
type SynGuard struct {
	// HalfOpen is the number of half-open connections, summed over the
	// workers, above which every auto service engages; 0 disables this
	// trigger.
	HalfOpen int
	// SynRate is the SYNs per second to one service above which that auto
	// service engages; 0 disables this trigger.
	SynRate uint64
	// Limit is the SYNs per second per CPU that the XDP program passes to
	// the workers (the rest get cookies or are dropped); 0 = no limit.
	Limit uint64
	// Burst is the token bucket's depth, in SYNs per CPU.
	Burst uint64
	// MSS is the MSS announced in cookie SYN-ACKs over IPv4; IPv6 gets 20
	// less (the larger header).
	MSS uint16
}

// SteerLimit is director.steer_limit: auto (the default) adapts each RX
// queue's limit to what its worker can take; a number is a fixed limit in
// packets per second per queue; 0 meters nothing.
type SteerLimit struct {
	Auto bool
	PPS  uint64 // without Auto; 0: off
}

func (l SteerLimit) String() string {
	if l.Auto {
		return "auto"
	}
	return strconv.FormatUint(l.PPS, 10)
}

// Timeouts are the connection idle timeouts, as ipvsadm --set.
type Timeouts struct {
	TCP    time.Duration
	TCPFin time.Duration
	UDP    time.Duration
}

// DefaultSyncGroup is the sync daemon's multicast group when govsadm
// --start-daemon names none.
var DefaultSyncGroup = netip.MustParseAddr("239.255.81.49")

// MaxWeight is the largest real server weight, as ipvsadm's (INT_MAX).
const MaxWeight = 1<<31 - 1

// Defaults of the director section.
const (
	DefaultControlSocket = "/run/govs.sock"
	DefaultMetricsListen = "127.0.0.1:9469"
	DefaultConnTableSize = 1 << 20
	DefaultWorkerNice    = -20
	DefaultBPFPinPath    = "/sys/fs/bpf/govs"
	MinConnTableSize     = 1024
	DefaultTimeoutTCP    = 900 * time.Second
	DefaultTimeoutTCPFin = 120 * time.Second
	DefaultTimeoutUDP    = 300 * time.Second
	// The sync daemon's defaults: not IPVS's 224.0.0.81:8848, since the
	// wire formats differ and a kernel IPVS sync daemon may share the LAN.
	// The default group (DefaultSyncGroup) is in 239.255.0.0/16, the IPv4
	// organisation-local scope (RFC 2365); messages go out with TTL 1.
	DefaultSyncPort = 8849
	DefaultBGPPort  = 179

	// A BGP peer's hold_time is 3 s..65535 s (RFC 4271 4.2); without one
	// GoBGP offers 90 s.
	MinBGPHoldTime     = 3 * time.Second
	MaxBGPHoldTime     = 65535 * time.Second
	DefaultBGPHoldTime = 90 * time.Second

	// MaxBGPPasswordLen is the longest TCP MD5 key Linux accepts
	// (TCP_MD5SIG_MAXKEYLEN).
	MaxBGPPasswordLen = 80

	// The SYN-flood defence's defaults. 4096 half-open connections is far
	// above what a healthy director holds (a handshake lasts a round trip)
	// yet engages within milliseconds of a flood; 20000 SYNs/s is more than
	// most services see at peak; 100000 SYNs/s per CPU is about what one
	// worker can schedule while still serving established traffic.
	DefaultSynProxyHalfOpen = 4096
	DefaultSynProxySynRate  = 20000
	DefaultSynLimit         = 100000
	DefaultSynLimitBurst    = 10000
	DefaultSynProxyMSS      = 1460
	MaxSynLimit             = 1 << 30 // syn_proxy_syn_rate, syn_limit and syn_limit_burst (the XDP bucket's arithmetic)
	MaxSteerLimit           = 1 << 30 // steer_limit (the XDP bucket's arithmetic)
	MinSynProxyMSS          = 536     // RFC 1122's default MSS
	MaxSynProxyMSS          = 65495   // the largest IPv4 packet less its headers
)

// XDPMode is how the XDP program is attached.
type XDPMode uint8

const (
	XDPAuto    XDPMode = iota // native when the driver supports it, else generic
	XDPNative                 // driver mode; fails when unsupported
	XDPGeneric                // skb mode; works everywhere, slower
)

var xdpModeNames = []string{"auto", "native", "generic"}

func (m XDPMode) String() string { return enumString(xdpModeNames, int(m)) }

// Sync configures connection synchronisation between directors, as the IPVS
// sync daemon does.
type Sync struct {
	Role      SyncRole
	Interface string
	// Exactly one of Group (multicast) and Peers (unicast) is set.
	Group   netip.Addr
	Peers   []netip.Addr
	Port    uint16
	SyncID  uint8
	KeyFile string
}

// SyncRole says whether a director sends, receives or does both.
type SyncRole uint8

const (
	SyncMaster SyncRole = iota
	SyncBackup
	SyncBoth
)

var syncRoleNames = []string{"master", "backup", "both"}

func (r SyncRole) String() string { return enumString(syncRoleNames, int(r)) }

// BGP configures announcing the VIPs to routers.
type BGP struct {
	ASN         uint32
	RouterID    netip.Addr // IPv4
	NextHop     netip.Addr // defaults to RouterID
	Peers       []BGPPeer
	Communities []Community
}

// BGPPeer is one BGP neighbour.
type BGPPeer struct {
	Address netip.Addr
	ASN     uint32
	Port    uint16
	// PasswordFile holds the TCP MD5 signature key (RFC 2385); "" means
	// none. LoadBGPPassword reads it.
	PasswordFile string
	HoldTime     time.Duration // 0: GoBGP's default, 90 s
	Keepalive    time.Duration // 0: a third of the hold time
	Multihop     uint8         // eBGP multihop TTL; 0: directly connected
	Passive      bool          // wait for the peer to connect (govsd listens on 179)
}

// Community is a standard BGP community "high:low" (RFC 1997).
type Community struct {
	High, Low uint16
}

// Uint32 returns the community as carried on the wire.
func (c Community) Uint32() uint32 { return uint32(c.High)<<16 | uint32(c.Low) }

func (c Community) String() string {
	return strconv.Itoa(int(c.High)) + ":" + strconv.Itoa(int(c.Low))
}

// Service is one virtual service.
type Service struct {
	Name string
	// FwMark, when not 0, makes this a firewall-mark service (ipvsadm -f):
	// it takes the packets its Match matches, over every address, port and
	// protocol of it, and VIP, Port and Protocol are unused (VIP invalid,
	// Port 0, Protocol the match's first).
	FwMark uint32
	Match  *Mark // the mark's match (fwmark services only)
	VIP    netip.Addr
	// Port 0 means every port, which requires Persistence (as in ipvsadm).
	Port           uint16
	Protocol       lvs.Proto
	Scheduler      string   // a name in sched's registry
	SchedulerFlags []string // names valid for Scheduler, e.g. "sh-port"
	Forward        lvs.Fwd
	Persistence    *Persistence
	// LocalAddresses are the full-NAT source addresses; set exactly when the
	// service or one of its real servers uses full-NAT.
	LocalAddresses []netip.Addr
	// HealthCheck is the service's check as written (Port 0 means "the real
	// server's port"); RealServer.HealthCheck holds the effective one.
	HealthCheck HealthCheck
	OnFailure   OnFailure
	// ExpireQuiescentTemplate (IPVS's expire_quiescent_template): when a
	// real server is quiesced (weight 0, by a failed check or an
	// operator), the persistence templates that send clients to it are
	// expired, so those clients' next connections are scheduled anew.
	ExpireQuiescentTemplate bool
	SorryServer             *SorryServer
	CheckViaVIP             bool
	// SynProxy says when the director answers the service's SYNs with SYN
	// cookies; only TCP services forwarding by nat or fullnat can use it.
	SynProxy SynProxyMode
	// Sloppy (IPVS's sloppy_tcp): a TCP packet other than a SYN or RST of
	// a connection the director does not know starts one, for real
	// servers forwarded by dr or tun (their flows need no state for the
	// way back), so that a flow another director started (ECMP, a
	// failover without sync) goes on. Always so with the mh scheduler.
	Sloppy bool
	// ProxyProtocol is the PROXY protocol header (v1 text or v2 binary)
	// the director puts in front of the client's bytes, so that the real
	// server learns the client's address and port; ProxyNone sends none.
	// TOA puts them in a TCP option (kind 254, the toa kernel module's)
	// instead or as well. Both only for TCP services whose real servers
	// all forward by fullnat: the others see the client's address anyway.
	ProxyProtocol lvs.ProxyProtocol
	TOA           bool
	RealServers   []RealServer
	// Line is where the service starts in the file, for later messages.
	Line int
}

// ServiceKey identifies a service the way the kernel does.
// An fwmark service is identified by its mark alone (the other fields 0).
type ServiceKey struct {
	VIP    netip.Addr
	Port   uint16
	Proto  lvs.Proto
	FwMark uint32
}

func (k ServiceKey) String() string {
	if k.FwMark != 0 {
		return "fwmark " + strconv.FormatUint(uint64(k.FwMark), 10)
	}
	return netip.AddrPortFrom(k.VIP, k.Port).String() + "/" + k.Proto.Name()
}

// Key returns the service's identity; no two services share one.
func (s Service) Key() ServiceKey {
	if s.FwMark != 0 {
		return ServiceKey{FwMark: s.FwMark}
	}
	return ServiceKey{VIP: s.VIP, Port: s.Port, Proto: s.Protocol}
}

// ForwardFor returns the forwarding method used for rs: its own override,
// else the service's.
func (s *Service) ForwardFor(rs *RealServer) lvs.Fwd {
	if rs.Forward != nil {
		return *rs.Forward
	}
	return s.Forward
}

// Persistence makes a client stick to one real server, as ipvsadm -p.
type Persistence struct {
	Timeout time.Duration
	// PrefixLen is how many leading bits of the client address pick the
	// persistence entry: 32 (IPv4) or 128 (IPv6) by default.
	PrefixLen int
}

// DefaultPersistenceTimeout is ipvsadm -p's default.
const DefaultPersistenceTimeout = 300 * time.Second

// SorryServer receives traffic while no real server is available.
type SorryServer struct {
	Address netip.Addr
	Port    uint16
}

// RealServer is one destination of a service.
type RealServer struct {
	Address netip.Addr
	Port    uint16
	Weight  int // 0..MaxWeight; 0 = quiescent
	// Forward is the server's own method, nil when it inherits the
	// service's (every method is a value of lvs.Fwd, so inheriting needs
	// its own mark); use Service.ForwardFor for the effective one.
	Forward        *lvs.Fwd
	UpperThreshold uint32 // ipvsadm -x; 0 = no limit
	LowerThreshold uint32 // ipvsadm -y
	// HealthCheck is the effective check: the service's, overlaid with the
	// server's own keys, with Port resolved.
	HealthCheck HealthCheck
	Line        int
}

// SynProxyMode is a service's syn_proxy key.
type SynProxyMode uint8

const (
	SynProxyAuto SynProxyMode = iota // engaged while the service is under SYN pressure
	SynProxyOn                       // always engaged
	SynProxyOff                      // never engaged
)

var synProxyNames = []string{"auto", "on", "off"}

func (m SynProxyMode) String() string { return enumString(synProxyNames, int(m)) }

// OnFailure is what happens to a real server whose health check fails.
// The default is keepalived's: remove (its inhibit_on_failure is quiesce).
type OnFailure uint8

const (
	OnFailureRemove  OnFailure = iota // removed from the service (draining)
	OnFailureQuiesce                  // weight 0: existing connections stay
)

var onFailureNames = []string{"remove", "quiesce"}

func (o OnFailure) String() string { return enumString(onFailureNames, int(o)) }

// CheckNone is the check type of a real server that is not probed.
const CheckNone = "none"

// HealthCheck is how a real server is probed. The check types and their
// settings blocks are those of the checkers registered in package
// healthcheck; Probe is what the type's checker built from its block.
type HealthCheck struct {
	// Type is health_check.type: CheckNone or a registered kind ("tcp",
	// "http", ...). The zero HealthCheck (Type "") is not probed either.
	Type     string
	Interval time.Duration
	Timeout  time.Duration
	Rise     int // successes to turn healthy
	Fall     int // failures to turn unhealthy
	Port     uint16
	// Probe holds the type's settings (healthcheck.HTTPProbe, ...); nil
	// when the server is not probed.
	Probe healthcheck.Probe
}

// Spec is the check in healthcheck's terms (Port is the target's).
func (hc *HealthCheck) Spec() healthcheck.Spec {
	return healthcheck.Spec{Probe: hc.Probe, Interval: hc.Interval, Timeout: hc.Timeout, Rise: hc.Rise, Fall: hc.Fall}
}

// Health check defaults: the interval and timeout are the checkers' own.
const (
	DefaultCheckInterval = healthcheck.DefaultInterval
	DefaultCheckTimeout  = healthcheck.DefaultTimeout
	DefaultCheckRise     = 2
	DefaultCheckFall     = 3
)

func enumString(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return "invalid(" + strconv.Itoa(i) + ")"
}
