package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// DefaultPeerPort is the BGP port used for peers configured without one.
const DefaultPeerPort = 179

// DefaultConnectRetry is how long the speaker waits between attempts to open
// a session to an unreachable peer. GoBGP's own default (120 s) would leave a
// freshly started director out of the ECMP group for minutes after the
// router comes back.
const DefaultConnectRetry = 5 * time.Second

// stopTimeout bounds Stop: GoBGP waits for every session to wind down and a
// wedged peer must not keep govsd from exiting.
const stopTimeout = 10 * time.Second

// ErrStopped is returned by Announce and Withdraw after Stop.
var ErrStopped = errors.New("bgp speaker stopped")

// Peer is one BGP neighbour the speaker connects to.
type Peer struct {
	Address netip.Addr
	ASN     uint32
	Port    uint16 // 0 means DefaultPeerPort
	// Password is the TCP MD5 signature key (RFC 2385); empty means none.
	Password string
	// HoldTime is the hold time offered in OPEN, in whole seconds: 0 means
	// GoBGP's default (90 s), otherwise 3 s..65535 s.
	HoldTime time.Duration
	// Keepalive is the keepalive interval, below HoldTime; 0 means a third
	// of the hold time (RFC 4271's suggestion, 30 s by default).
	Keepalive time.Duration
	// Multihop is the TTL of an eBGP session to a peer that is not
	// directly connected; 0 means directly connected (TTL 1).
	Multihop uint8
	// Passive makes the speaker wait for the peer to open the session
	// instead of connecting out; it needs Config.ListenPort.
	Passive bool
}

// MaxPasswordLen is the longest TCP MD5 key Linux accepts
// (TCP_MD5SIG_MAXKEYLEN).
const MaxPasswordLen = 80

// MinHoldTime and MaxHoldTime bound a non-zero hold time (RFC 4271 4.2).
const (
	MinHoldTime = 3 * time.Second
	MaxHoldTime = 65535 * time.Second
)

// Config configures a Speaker.
type Config struct {
	ASN      uint32     // local AS number
	RouterID netip.Addr // IPv4 BGP identifier
	// NextHop is the IPv4 next hop of IPv4 announcements, normally the
	// director's own address on the router-facing network. Defaults to
	// RouterID.
	NextHop netip.Addr
	// NextHop6 is the IPv6 next hop of IPv6 announcements (MP-BGP). When it
	// is not set, IPv6 peers still work but announcing an IPv6 prefix fails.
	NextHop6 netip.Addr
	Peers    []Peer
	// Communities are standard communities (RFC 1997, high<<16|low) attached
	// to every announcement.
	Communities []uint32
	// ListenPort is the TCP port to accept BGP sessions on. Zero or negative
	// means do not listen: the speaker connects out to its peers, which is
	// all govs needs and keeps port 179 free.
	ListenPort int32
	// ConnectRetry is the delay between connection attempts to a peer.
	// Zero means DefaultConnectRetry; GoBGP rounds it up to whole seconds
	// and enforces a minimum of 5 s.
	ConnectRetry time.Duration
	Logger       *slog.Logger // nil discards GoBGP's log

	// passivePeers makes the speaker wait for peers instead of connecting:
	// with no listener either, tests get a speaker that opens no socket.
	passivePeers bool
}

// Speaker announces host routes for virtual services through an embedded
// GoBGP instance. Its methods are safe for concurrent use.
type Speaker struct {
	srv    *server.BgpServer
	cfg    Config
	logger *slog.Logger

	mu        sync.Mutex
	announced map[netip.Prefix]struct{}
	stopped   bool
}

// HostPrefix returns the /32 (IPv4) or /128 (IPv6) route for a VIP.
// IPv4-mapped IPv6 addresses give the IPv4 /32.
func HostPrefix(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	return netip.PrefixFrom(addr, addr.BitLen())
}

func (c *Config) validate() error {
	if c.ASN == 0 {
		return errors.New("asn is required")
	}
	if !c.RouterID.Is4() {
		return fmt.Errorf("router id %v: must be an IPv4 address", c.RouterID)
	}
	if !c.NextHop.IsValid() {
		c.NextHop = c.RouterID
	}
	c.NextHop = c.NextHop.Unmap()
	if !c.NextHop.Is4() || c.NextHop.IsUnspecified() {
		return fmt.Errorf("next hop %v: must be a unicast IPv4 address", c.NextHop)
	}
	if c.NextHop6.IsValid() && (!c.NextHop6.Is6() || c.NextHop6.Is4In6() || c.NextHop6.IsUnspecified()) {
		return fmt.Errorf("ipv6 next hop %v: must be a unicast IPv6 address", c.NextHop6)
	}
	if len(c.Peers) == 0 {
		return errors.New("at least one peer is required")
	}
	seen := make(map[netip.Addr]bool, len(c.Peers))
	for i := range c.Peers {
		p := &c.Peers[i]
		p.Address = p.Address.Unmap()
		if !p.Address.IsValid() || p.Address.IsUnspecified() {
			return fmt.Errorf("peer %d: invalid address %v", i, p.Address)
		}
		if seen[p.Address] {
			return fmt.Errorf("peer %v: configured twice", p.Address)
		}
		seen[p.Address] = true
		if p.ASN == 0 {
			return fmt.Errorf("peer %v: asn is required", p.Address)
		}
		if p.Port == 0 {
			p.Port = DefaultPeerPort
		}
		if len(p.Password) > MaxPasswordLen {
			return fmt.Errorf("peer %v: password longer than %d bytes", p.Address, MaxPasswordLen)
		}
		if p.HoldTime != 0 && (p.HoldTime < MinHoldTime || p.HoldTime > MaxHoldTime) {
			return fmt.Errorf("peer %v: hold time %v: want 0 (default) or %v..%v", p.Address, p.HoldTime, MinHoldTime, MaxHoldTime)
		}
		if p.Keepalive < 0 {
			return fmt.Errorf("peer %v: negative keepalive %v", p.Address, p.Keepalive)
		}
		if p.Keepalive != 0 && p.Keepalive >= p.effectiveHoldTime() {
			return fmt.Errorf("peer %v: keepalive %v must be below the hold time %v", p.Address, p.Keepalive, p.effectiveHoldTime())
		}
	}
	for _, p := range c.Peers {
		if p.Passive && c.ListenPort <= 0 {
			return fmt.Errorf("peer %v: passive needs a listen port", p.Address)
		}
	}
	if c.ConnectRetry <= 0 {
		c.ConnectRetry = DefaultConnectRetry
	}
	if c.ListenPort < 0 {
		c.ListenPort = 0
	}
	return nil
}

// Start validates cfg, starts the embedded BGP speaker and begins connecting
// to the peers. It returns without waiting for sessions to come up; routes
// announced before a session is established are sent when it is. ctx bounds
// the start-up only; call Stop to shut the speaker down.
func Start(ctx context.Context, cfg Config) (*Speaker, error) {
	cfg.Peers = slices.Clone(cfg.Peers)
	cfg.Communities = slices.Clone(cfg.Communities)
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("bgp config: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start bgp speaker: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	// An empty gRPC address keeps GoBGP from opening its management API:
	// govsd drives the speaker through method calls only.
	srv := server.NewBgpServer(server.GrpcListenAddress(""), server.LoggerOption(newSlogAdapter(logger)))
	// Serve runs GoBGP's event loop; GoBGP offers no way to end it, so this
	// goroutine outlives Stop (idle, blocked on its channels).
	go srv.Serve()

	s := &Speaker{
		srv:       srv,
		cfg:       cfg,
		logger:    logger,
		announced: make(map[netip.Prefix]struct{}),
	}

	// GoBGP treats port 0 as "listen on 179"; -1 is its "do not listen".
	listenPort := int32(-1)
	if cfg.ListenPort > 0 {
		listenPort = cfg.ListenPort
	}
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        cfg.ASN,
		RouterId:   cfg.RouterID.String(),
		ListenPort: listenPort,
	}})
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("start bgp speaker: %w", err)
	}

	for _, p := range cfg.Peers {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(p)}); err != nil {
			srv.Stop()
			return nil, fmt.Errorf("add bgp peer %v: %w", p.Address, err)
		}
	}
	logger.Info("bgp speaker started", "asn", cfg.ASN, "router_id", cfg.RouterID, "peers", len(cfg.Peers))
	return s, nil
}

// defaultHoldTime is GoBGP's hold time for a peer configured without one.
const defaultHoldTime = 90 * time.Second

func (p *Peer) effectiveHoldTime() time.Duration {
	if p.HoldTime == 0 {
		return defaultHoldTime
	}
	return p.HoldTime
}

// seconds rounds d up to whole seconds, as BGP carries its timers.
func seconds(d time.Duration) uint64 {
	return uint64((d + time.Second - 1) / time.Second)
}

func (s *Speaker) apiPeer(p Peer) *api.Peer {
	families := []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: familyIPv4, Enabled: true}}}
	if s.cfg.NextHop6.IsValid() {
		families = append(families, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: familyIPv6, Enabled: true}})
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			Description:     "govs",
			AuthPassword:    p.Password,
		},
		Transport: &api.Transport{RemotePort: uint32(p.Port), PassiveMode: p.Passive || s.cfg.passivePeers},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: seconds(s.cfg.ConnectRetry),
			// 0 leaves GoBGP's defaults: 90 s, keepalive a third of it.
			HoldTime:          seconds(p.HoldTime),
			KeepaliveInterval: seconds(p.Keepalive),
		}},
		AfiSafis: families,
	}
	if p.Multihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	return ap
}

var (
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyIPv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// normalizePrefix turns an IPv4-mapped prefix into its IPv4 form and clears
// host bits, so that the same route always has the same key.
func normalizePrefix(prefix netip.Prefix) (netip.Prefix, error) {
	if !prefix.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %v", prefix)
	}
	if addr := prefix.Addr(); addr.Is4In6() {
		if prefix.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("prefix %v: ipv4-mapped prefix shorter than /96", prefix)
		}
		prefix = netip.PrefixFrom(addr.Unmap(), prefix.Bits()-96)
	}
	return prefix.Masked(), nil
}

// apiPath builds the GoBGP path for prefix: origin IGP, the configured next
// hop and communities. GoBGP turns an IPv6 next hop into MP_REACH_NLRI.
func (s *Speaker) apiPath(prefix netip.Prefix) (*api.Path, error) {
	family, nextHop := familyIPv4, s.cfg.NextHop
	if prefix.Addr().Is6() {
		if !s.cfg.NextHop6.IsValid() {
			return nil, fmt.Errorf("announce %v: no ipv6 next hop configured", prefix)
		}
		family, nextHop = familyIPv6, s.cfg.NextHop6
	}
	attrs := []proto.Message{
		&api.OriginAttribute{Origin: 0}, // IGP: the route originates here
		&api.NextHopAttribute{NextHop: nextHop.String()},
	}
	if len(s.cfg.Communities) > 0 {
		attrs = append(attrs, &api.CommunitiesAttribute{Communities: s.cfg.Communities})
	}
	pattrs := make([]*anypb.Any, 0, len(attrs))
	for _, a := range attrs {
		m, err := anypb.New(a)
		if err != nil {
			return nil, fmt.Errorf("encode path attribute: %w", err)
		}
		pattrs = append(pattrs, m)
	}
	nlri, err := anypb.New(&api.IPAddressPrefix{
		Prefix:    prefix.Addr().String(),
		PrefixLen: uint32(prefix.Bits()),
	})
	if err != nil {
		return nil, fmt.Errorf("encode nlri: %w", err)
	}
	return &api.Path{Family: family, Nlri: nlri, Pattrs: pattrs}, nil
}

// Announce starts advertising prefix to all peers. Announcing a prefix that
// is already announced does nothing.
func (s *Speaker) Announce(prefix netip.Prefix) error {
	prefix, err := normalizePrefix(prefix)
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("announce %v: %w", prefix, ErrStopped)
	}
	if _, ok := s.announced[prefix]; ok {
		return nil
	}
	path, err := s.apiPath(prefix)
	if err != nil {
		return err
	}
	if _, err := s.srv.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
		return fmt.Errorf("announce %v: %w", prefix, err)
	}
	s.announced[prefix] = struct{}{}
	s.logger.Info("bgp route announced", "prefix", prefix)
	return nil
}

// Withdraw stops advertising prefix. Withdrawing a prefix that is not
// announced does nothing.
func (s *Speaker) Withdraw(prefix netip.Prefix) error {
	prefix, err := normalizePrefix(prefix)
	if err != nil {
		return fmt.Errorf("withdraw: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("withdraw %v: %w", prefix, ErrStopped)
	}
	if _, ok := s.announced[prefix]; !ok {
		return nil
	}
	if err := s.withdrawLocked(prefix); err != nil {
		return err
	}
	s.logger.Info("bgp route withdrawn", "prefix", prefix)
	return nil
}

func (s *Speaker) withdrawLocked(prefix netip.Prefix) error {
	path, err := s.apiPath(prefix)
	if err != nil {
		return err
	}
	if err := s.srv.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
		return fmt.Errorf("withdraw %v: %w", prefix, err)
	}
	delete(s.announced, prefix)
	return nil
}

// Announced returns the announced prefixes, sorted.
func (s *Speaker) Announced() []netip.Prefix {
	s.mu.Lock()
	out := make([]netip.Prefix, 0, len(s.announced))
	for p := range s.announced {
		out = append(out, p)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// Config returns the speaker's configuration with its defaults applied.
// The peers' passwords are in it: do not show them.
func (s *Speaker) Config() Config {
	cfg := s.cfg
	cfg.Peers = slices.Clone(cfg.Peers)
	cfg.Communities = slices.Clone(cfg.Communities)
	return cfg
}

// PeerStates returns the BGP session state of every configured peer:
// "idle", "connect", "active", "opensent", "openconfirm" or "established".
// After Stop it returns an empty map.
func (s *Speaker) PeerStates() map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(s.cfg.Peers))
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return out
	}
	err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil {
			return
		}
		addr, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			return
		}
		out[addr.Unmap()] = strings.ToLower(p.State.SessionState.String())
	})
	if err != nil {
		s.logger.Warn("bgp list peers", "err", err)
	}
	return out
}

// Stop withdraws every announced route, closes all sessions with a Cease
// notification and shuts the speaker down. Peers drop the routes when the
// session closes even if a withdrawal did not make it out. Calling Stop again
// does nothing.
func (s *Speaker) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true

	var errs []error
	for p := range s.announced {
		if err := s.withdrawLocked(p); err != nil {
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() {
		s.srv.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		errs = append(errs, fmt.Errorf("stop bgp speaker: sessions did not close within %v", stopTimeout))
	}
	s.logger.Info("bgp speaker stopped")
	return errors.Join(errs...)
}
