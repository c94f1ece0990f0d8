package control

import (
	"fmt"

	"github.com/govs/govs/lvs"
)

// ServiceKey names a virtual service as ipvsadm does: -t/-u VIP:port.
// A firewall-mark service (ipvsadm -f) is named by FwMark alone.
type ServiceKey struct {
	Protocol string `json:"protocol"` // "tcp" or "udp": lvs.Proto.Name (any case is taken)
	VIP      string `json:"vip"`
	Port     uint16 `json:"port"`
	FwMark   uint32 `json:"fwmark,omitempty"`
}

// Stats are ipvsadm's --stats columns: totals since start or the last -Z.
type Stats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
}

// Rates are ipvsadm's --rate columns, per second, averaged over the last
// few seconds.
type Rates struct {
	CPS    uint64 `json:"cps"`
	InPPS  uint64 `json:"in_pps"`
	OutPPS uint64 `json:"out_pps"`
	InBPS  uint64 `json:"in_bps"`
	OutBPS uint64 `json:"out_bps"`
}

// Service is a virtual service as listings show it.
type Service struct {
	Name string `json:"name"`
	// FwMark is a firewall-mark service's mark (Protocol, VIP and Port are
	// then empty), listed as ipvsadm does: FWM N.
	FwMark uint32 `json:"fwmark,omitempty"`
	// IPv6 says an fwmark service's family (its match's): ipvsadm lists
	// FWM N IPv6.
	IPv6       bool     `json:"ipv6,omitempty"`
	Protocol   string   `json:"protocol"` // TCP or UDP: lvs.Proto.String, ipvsadm's spelling
	VIP        string   `json:"vip"`
	Port       uint16   `json:"port"`
	Scheduler  string   `json:"scheduler"`
	Flags      []string `json:"flags,omitempty"`
	Persistent int      `json:"persistent,omitempty"` // seconds; 0 = not persistent
	Netmask    string   `json:"netmask,omitempty"`
	// LocalAddresses are the full-NAT local addresses.
	LocalAddresses []string `json:"local_addresses,omitempty"`
	// ProxyProtocol is the PROXY protocol header the real servers get,
	// "v1" or "v2" (lvs.ProxyProtocol's String); empty for none. TOA says
	// the client's address goes in a TCP option (kind 254). Both are for
	// full-NAT TCP services.
	ProxyProtocol string `json:"proxy_protocol,omitempty"`
	TOA           bool   `json:"toa,omitempty"`
	Stats         Stats  `json:"stats"`
	Rates         Rates  `json:"rates"`
	Dests         []Dest `json:"real_servers"`
}

// Dest is a real server as listings show it.
type Dest struct {
	Address       string `json:"address"`
	Port          uint16 `json:"port"`
	Forward       string `json:"forward"` // Masq, Route, Tunnel, FullNat: lvs.Fwd.String, ipvsadm's words
	Weight        int    `json:"weight"`
	ActiveConns   int64  `json:"active_conns"`
	InactiveConns int64  `json:"inactive_conns"`
	PersistConns  int64  `json:"persist_conns"`
	UpperThresh   uint32 `json:"upper_threshold"`
	LowerThresh   uint32 `json:"lower_threshold"`
	Up            bool   `json:"up"` // health: false while its health check fails
	Stats         Stats  `json:"stats"`
	Rates         Rates  `json:"rates"`
}

// ServiceSpec adds (-A) or edits (-E) a virtual service.
type ServiceSpec struct {
	ServiceKey
	Scheduler string   `json:"scheduler,omitempty"` // default lvs.DefaultScheduler (wlc), as ipvsadm
	Flags     []string `json:"flags,omitempty"`     // -b: lvs.SchedulerFlags' names, or flag-1..3
	// Persistent > 0 makes the service persistent (-p seconds); Netmask is -M.
	Persistent int    `json:"persistent,omitempty"`
	Netmask    string `json:"netmask,omitempty"`
	// ProxyProtocol ("v1", "v2" or "none"; lvs.ParseProxyProtocol's
	// spellings) and TOA (govsadm --proxy-protocol, --toa) tell full-NAT
	// TCP real servers the client's address. Unlike the fields above, an
	// edit that leaves them out ("", nil) keeps their current value, so
	// that an ipvsadm script's -E does not take the header away from
	// servers that expect it; on add they default to none and false.
	ProxyProtocol string `json:"proxy_protocol,omitempty"`
	TOA           *bool  `json:"toa,omitempty"`
}

// Check refuses a ServiceSpec whose values cannot be right whatever the
// service (ErrInvalid): an unknown PROXY protocol version. Whether the
// service may have one is for the daemon to say.
func (s *ServiceSpec) Check() error {
	if _, err := lvs.ParseProxyProtocol(s.ProxyProtocol); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// DestSpec adds (-a) or edits (-e) a real server of a service. Empty or nil
// fields keep their current value on edit; on add they take ipvsadm's
// defaults (weight 1, no thresholds) and the forwarding method defaults to
// the service's (nat for a service made with -A).
type DestSpec struct {
	Service ServiceKey `json:"service"`
	Address string     `json:"address"`
	Port    uint16     `json:"port"`
	Forward string     `json:"forward,omitempty"` // nat | fullnat | dr | tun (lvs.Fwd.Name; lvs.ParseFwd's aliases are taken)
	Weight  *int       `json:"weight,omitempty"`
	Upper   *uint32    `json:"upper_threshold,omitempty"`
	Lower   *uint32    `json:"lower_threshold,omitempty"`
}

// LocalAddr adds or removes a full-NAT local address of a service.
type LocalAddr struct {
	Service ServiceKey `json:"service"`
	Address string     `json:"address"`
}

// Timeouts are ipvsadm --set's values, in seconds; 0 leaves one unchanged.
type Timeouts struct {
	TCP    int `json:"tcp"`
	TCPFin int `json:"tcpfin"`
	UDP    int `json:"udp"`
}

// IPVSVersion is the IPVS version ipvsadm's listings name in their first
// line, which scripts parse; govs's listings keep it.
const IPVSVersion = "1.2.1"

// Info describes the daemon (ipvsadm's header line).
type Info struct {
	Version     string `json:"version"`      // IPVSVersion, for ipvsadm's header line
	GovsVersion string `json:"govs_version"` // govsd's own (package version)
	ConnTable   int    `json:"conn_table_size"`
	Config      string `json:"config"`
}

// Connection is one entry of the connection table.
type Connection struct {
	Protocol string `json:"protocol"` // TCP, UDP; IP for persistence templates of port-0 services
	Expire   int64  `json:"expire_ms"`
	State    string `json:"state"`
	Source   string `json:"source"`
	Virtual  string `json:"virtual"`
	Dest     string `json:"destination"`
	Local    string `json:"local,omitempty"`
	Template bool   `json:"template,omitempty"` // a persistence template (--persistent-conn)
}

// Counters are the data path's counters.
type Counters struct {
	DataPath map[string]uint64 `json:"datapath"`
	XDP      map[string]uint64 `json:"xdp"`
	// SynProxy is every TCP service's SYN-proxy state.
	SynProxy []SynProxyService `json:"syn_proxy,omitempty"`
	// Rings are the AF_XDP sockets' kernel counters, per interface and
	// queue.
	Rings []RingCounters `json:"rings,omitempty"`
	// FastPath says, per interface, whether the XDP fast path sends
	// toward it.
	FastPath []FastPathState `json:"fast_path,omitempty"`
}

// FastPathState is whether the XDP fast path sends toward an interface;
// when it cannot, the workers forward that traffic.
type FastPathState struct {
	Interface string `json:"interface"`
	On        bool   `json:"on"`
	Reason    string `json:"reason,omitempty"` // why not, when off
}

// SynProxyService is a TCP service's SYN-proxy state.
type SynProxyService struct {
	Service string `json:"service"`
	Mode    string `json:"mode"`    // auto | on | off
	Capable bool   `json:"capable"` // tcp, nat or fullnat only, not off: cookies possible
	Engaged bool   `json:"engaged"` // every SYN is answered with a cookie now
	SYNs    uint64 `json:"syns"`    // SYNs the XDP program counted for the service
}

// RingCounters are one AF_XDP socket's kernel counters (XDP_STATISTICS).
type RingCounters struct {
	Interface     string `json:"interface"`
	Queue         int    `json:"queue"`
	RxDropped     uint64 `json:"rx_dropped"`      // no fill ring entry, or too long
	RxRingFull    uint64 `json:"rx_ring_full"`    // the worker's RX ring was full
	FillRingEmpty uint64 `json:"fill_ring_empty"` // times the fill ring was found empty
	TxInvalid     uint64 `json:"tx_invalid"`      // TX descriptors the kernel refused
	TxRingEmpty   uint64 `json:"tx_ring_empty"`   // times the TX ring was found empty
	SteerLimit    uint64 `json:"steer_limit"`     // the queue's steering meter, packets/s; 0: unlimited
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// BGP is the state of govsd's BGP speaker (govsadm -L --bgp).
type BGP struct {
	// Enabled is false when director.bgp is not configured; the other
	// fields are then empty.
	Enabled   bool      `json:"enabled"`
	ASN       uint32    `json:"asn,omitempty"`
	RouterID  string    `json:"router_id,omitempty"`
	Peers     []BGPPeer `json:"peers,omitempty"`
	Announced []string  `json:"announced,omitempty"` // prefixes announced to every peer, sorted
}

// BGPPeer is one configured BGP neighbour and its session.
type BGPPeer struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	Port    uint16 `json:"port"`
	// State is the session state: idle, connect, active, opensent,
	// openconfirm or established; "unknown" when GoBGP does not report it.
	State   string `json:"state"`
	Passive bool   `json:"passive,omitempty"`
	// Multihop is the eBGP multihop TTL; 0: directly connected.
	Multihop uint8 `json:"multihop,omitempty"`
	// Password tells whether the session is TCP MD5 signed; the key is
	// never shown.
	Password bool `json:"password,omitempty"`
}

// SyncDaemon is a connection sync daemon (ipvsadm --start-daemon).
type SyncDaemon struct {
	Role      string   `json:"role"` // master or backup
	Interface string   `json:"interface"`
	Group     string   `json:"group,omitempty"` // multicast group (default config.DefaultSyncGroup, 239.255.81.49)
	Peers     []string `json:"peers,omitempty"` // unicast peers instead of a group
	Port      uint16   `json:"port,omitempty"`  // default config.DefaultSyncPort, 8849
	SyncID    uint8    `json:"sync_id"`
	KeyFile   string   `json:"key_file,omitempty"` // default: director.sync.key_file

	// The listing's own fields (ipvsadm -L --daemon), filled in by govsd
	// and ignored by --start-daemon.
	Mode     string        `json:"mode,omitempty"`     // "multicast" (Group) or "unicast" (Peers)
	Sent     *SyncSent     `json:"sent,omitempty"`     // the master's counters
	Received *SyncReceived `json:"received,omitempty"` // the backup's counters
}

// SyncSent are a master sync daemon's counters since it started.
type SyncSent struct {
	Messages uint64 `json:"messages"` // messages sent (one datagram to each peer, or one to the group)
	Entries  uint64 `json:"entries"`  // connection entries in them
	Errors   uint64 `json:"errors"`   // datagram writes that failed
	Dropped  uint64 `json:"dropped"`  // entries dropped because the writer was behind
}

// SyncReceived are a backup sync daemon's counters since it started.
type SyncReceived struct {
	Messages uint64 `json:"messages"` // messages accepted
	Entries  uint64 `json:"entries"`  // connection entries in them
	Rejected uint64 `json:"rejected"` // datagrams refused, every reason
	// RejectedBy counts the refused datagrams per reason (bad_mac,
	// duplicate, unknown_peer, own, ...: connsync.Reason); reasons with
	// none are left out.
	RejectedBy map[string]uint64 `json:"rejected_by,omitempty"`
}
