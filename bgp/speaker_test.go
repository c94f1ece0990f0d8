package bgp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// startOffline starts a Speaker whose peers are passive and which does not
// listen, so it opens no socket at all: enough to exercise the RIB handling
// without a network.
func startOffline(t *testing.T, cfg Config) *Speaker {
	t.Helper()
	cfg.passivePeers = true
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func offlineConfig() Config {
	return Config{
		ASN:         65001,
		RouterID:    netip.MustParseAddr("198.18.0.254"),
		NextHop:     netip.MustParseAddr("198.18.0.253"),
		Peers:       []Peer{{Address: netip.MustParseAddr("198.18.0.1"), ASN: 65000}},
		Communities: []uint32{65001<<16 | 100, 65001<<16 | 200},
	}
}

// ribPath is what the tests need from a path in GoBGP's global RIB.
type ribPath struct {
	nextHop     string
	communities []uint32
}

func globalRIB(t *testing.T, s *Speaker, family *api.Family) map[string]ribPath {
	t.Helper()
	out := map[string]ribPath{}
	err := s.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: family}, func(d *api.Destination) {
		for _, p := range d.Paths {
			var rp ribPath
			for _, a := range p.Pattrs {
				m, err := a.UnmarshalNew()
				if err != nil {
					t.Errorf("decode attribute: %v", err)
					continue
				}
				switch m := m.(type) {
				case *api.NextHopAttribute:
					rp.nextHop = m.NextHop
				case *api.MpReachNLRIAttribute:
					rp.nextHop = strings.Join(m.NextHops, ",")
				case *api.CommunitiesAttribute:
					rp.communities = m.Communities
				}
			}
			out[d.Prefix] = rp
		}
	})
	if err != nil {
		t.Fatalf("ListPath: %v", err)
	}
	return out
}

func TestAnnounceWithdrawRIB(t *testing.T) {
	cfg := offlineConfig()
	cfg.NextHop6 = netip.MustParseAddr("2001:db8::254")
	s := startOffline(t, cfg)

	vip := netip.MustParsePrefix("198.18.0.100/32")
	for range 2 { // idempotent
		if err := s.Announce(vip); err != nil {
			t.Fatalf("Announce: %v", err)
		}
	}
	// An IPv4-mapped VIP is the same route.
	if err := s.Announce(netip.MustParsePrefix("::ffff:198.18.0.100/128")); err != nil {
		t.Fatalf("Announce mapped: %v", err)
	}
	vip6 := netip.MustParsePrefix("2001:db8::100/128")
	if err := s.Announce(vip6); err != nil {
		t.Fatalf("Announce v6: %v", err)
	}
	if got, want := s.Announced(), []netip.Prefix{vip, vip6}; !slices.Equal(got, want) {
		t.Fatalf("Announced = %v, want %v", got, want)
	}

	rib := globalRIB(t, s, familyIPv4)
	if len(rib) != 1 {
		t.Fatalf("ipv4 rib = %v, want one route", rib)
	}
	p, ok := rib["198.18.0.100/32"]
	if !ok || p.nextHop != "198.18.0.253" || !slices.Equal(p.communities, cfg.Communities) {
		t.Fatalf("ipv4 rib = %+v, want 198.18.0.100/32 via 198.18.0.253 with %v", rib, cfg.Communities)
	}
	rib6 := globalRIB(t, s, familyIPv6)
	p6, ok := rib6["2001:db8::100/128"]
	if len(rib6) != 1 || !ok || p6.nextHop != "2001:db8::254" || !slices.Equal(p6.communities, cfg.Communities) {
		t.Fatalf("ipv6 rib = %+v, want 2001:db8::100/128 via 2001:db8::254", rib6)
	}

	for range 2 { // idempotent
		if err := s.Withdraw(vip); err != nil {
			t.Fatalf("Withdraw: %v", err)
		}
	}
	if rib := globalRIB(t, s, familyIPv4); len(rib) != 0 {
		t.Fatalf("ipv4 rib after withdraw = %v, want empty", rib)
	}
	if got := s.Announced(); !slices.Equal(got, []netip.Prefix{vip6}) {
		t.Fatalf("Announced after withdraw = %v", got)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if len(s.Announced()) != 0 {
		t.Fatalf("Announced after Stop = %v", s.Announced())
	}
	if err := s.Announce(vip); !errors.Is(err, ErrStopped) {
		t.Fatalf("Announce after Stop = %v, want ErrStopped", err)
	}
	if err := s.Withdraw(vip); !errors.Is(err, ErrStopped) {
		t.Fatalf("Withdraw after Stop = %v, want ErrStopped", err)
	}
	if st := s.PeerStates(); len(st) != 0 {
		t.Fatalf("PeerStates after Stop = %v", st)
	}
}

func TestAnnounceIPv6WithoutNextHop(t *testing.T) {
	s := startOffline(t, offlineConfig())
	if err := s.Announce(netip.MustParsePrefix("2001:db8::100/128")); err == nil {
		t.Fatal("Announce of an IPv6 prefix without NextHop6 succeeded")
	}
	if len(s.Announced()) != 0 {
		t.Fatalf("Announced = %v", s.Announced())
	}
	if err := s.Announce(netip.Prefix{}); err == nil {
		t.Fatal("Announce of an invalid prefix succeeded")
	}
}

func TestPeerStatesOffline(t *testing.T) {
	s := startOffline(t, offlineConfig())
	st := s.PeerStates()
	state, ok := st[netip.MustParseAddr("198.18.0.1")]
	if len(st) != 1 || !ok || state == "" || state == "established" {
		t.Fatalf("PeerStates = %v, want one peer that is not established", st)
	}
}

func TestConfigValidation(t *testing.T) {
	addr := netip.MustParseAddr
	peer := []Peer{{Address: addr("198.18.0.1"), ASN: 65000}}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: peer}, true},
		{"no asn", Config{RouterID: addr("198.18.0.2"), Peers: peer}, false},
		{"ipv6 router id", Config{ASN: 1, RouterID: addr("2001:db8::1"), Peers: peer}, false},
		{"ipv6 next hop in NextHop", Config{ASN: 1, RouterID: addr("198.18.0.2"), NextHop: addr("2001:db8::1"), Peers: peer}, false},
		{"ipv4 NextHop6", Config{ASN: 1, RouterID: addr("198.18.0.2"), NextHop6: addr("198.18.0.2"), Peers: peer}, false},
		{"no peers", Config{ASN: 1, RouterID: addr("198.18.0.2")}, false},
		{"peer without asn", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{Address: addr("198.18.0.1")}}}, false},
		{"peer without address", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{ASN: 2}}}, false},
		{"duplicate peer", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: append(slices.Clone(peer), peer...)}, false},
		{"passive without listener", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{Address: addr("198.18.0.1"), ASN: 2, Passive: true}}}, false},
		{"peer options", Config{ASN: 1, RouterID: addr("198.18.0.2"), ListenPort: 1179, Peers: []Peer{{Address: addr("198.18.0.1"), ASN: 2,
			Password: "secret", HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Multihop: 2, Passive: true}}}, true},
		{"keepalive below default hold time", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{Address: addr("198.18.0.1"), ASN: 2, Keepalive: 89 * time.Second}}}, true},
		{"keepalive at default hold time", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{Address: addr("198.18.0.1"), ASN: 2, Keepalive: 90 * time.Second}}}, false},
		{"keepalive not below hold time", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{Address: addr("198.18.0.1"), ASN: 2, HoldTime: 9 * time.Second, Keepalive: 9 * time.Second}}}, false},
		{"hold time too short", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{Address: addr("198.18.0.1"), ASN: 2, HoldTime: 2 * time.Second}}}, false},
		{"hold time too long", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{Address: addr("198.18.0.1"), ASN: 2, HoldTime: 65536 * time.Second}}}, false},
		{"password too long", Config{ASN: 1, RouterID: addr("198.18.0.2"), Peers: []Peer{{Address: addr("198.18.0.1"), ASN: 2, Password: strings.Repeat("x", MaxPasswordLen+1)}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.validate()
			if (err == nil) != tt.ok {
				t.Fatalf("validate = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok {
				if cfg.NextHop != cfg.RouterID || cfg.Peers[0].Port != DefaultPeerPort || cfg.ConnectRetry != DefaultConnectRetry {
					t.Fatalf("defaults not applied: %+v", cfg)
				}
			}
		})
	}
	if _, err := Start(context.Background(), Config{}); err == nil {
		t.Fatal("Start with an empty config succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, tests[0].cfg); err == nil {
		t.Fatal("Start with a cancelled context succeeded")
	}
}

func TestAPIPeerMapping(t *testing.T) {
	cfg := offlineConfig()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	s := &Speaker{cfg: cfg}

	plain := s.apiPeer(cfg.Peers[0])
	if plain.Conf.AuthPassword != "" || plain.Transport.PassiveMode || plain.EbgpMultihop != nil ||
		plain.Timers.Config.HoldTime != 0 || plain.Timers.Config.KeepaliveInterval != 0 {
		t.Errorf("plain peer: %v", plain)
	}
	if plain.Timers.Config.ConnectRetry != 5 || plain.Transport.RemotePort != DefaultPeerPort || plain.Conf.PeerAsn != 65000 {
		t.Errorf("plain peer: %v", plain)
	}

	ap := s.apiPeer(Peer{Address: netip.MustParseAddr("198.18.0.1"), ASN: 65000, Port: 1179,
		Password: "s3cret", HoldTime: 9 * time.Second, Keepalive: 2500 * time.Millisecond, Multihop: 3, Passive: true})
	if ap.Conf.AuthPassword != "s3cret" {
		t.Errorf("AuthPassword = %q", ap.Conf.AuthPassword)
	}
	if tc := ap.Timers.Config; tc.HoldTime != 9 || tc.KeepaliveInterval != 3 {
		t.Errorf("timers = hold %d keepalive %d, want 9 3 (rounded up)", tc.HoldTime, tc.KeepaliveInterval)
	}
	if m := ap.EbgpMultihop; m == nil || !m.Enabled || m.MultihopTtl != 3 {
		t.Errorf("EbgpMultihop = %v, want enabled ttl 3", m)
	}
	if !ap.Transport.PassiveMode || ap.Transport.RemotePort != 1179 {
		t.Errorf("Transport = %v", ap.Transport)
	}
}

// TestStartWithPeerOptions checks that GoBGP accepts the per-peer options.
func TestStartWithPeerOptions(t *testing.T) {
	cfg := offlineConfig()
	cfg.Peers[0].Password = "s3cret"
	cfg.Peers[0].HoldTime = 9 * time.Second
	cfg.Peers[0].Keepalive = 3 * time.Second
	cfg.Peers[0].Multihop = 2
	s := startOffline(t, cfg)
	var got *api.Peer
	if err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) { got = p }); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Timers.Config.HoldTime != 9 || got.Timers.Config.KeepaliveInterval != 3 ||
		got.EbgpMultihop == nil || got.EbgpMultihop.MultihopTtl != 2 {
		t.Fatalf("peer as GoBGP holds it: %v", got)
	}
}

func TestHostPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.100":        "198.18.0.100/32",
		"::ffff:198.18.0.100": "198.18.0.100/32",
		"2001:db8::100":       "2001:db8::100/128",
		"2001:db8::100%eth0":  "2001:db8::100/128",
	} {
		got := HostPrefix(netip.MustParseAddr(in))
		if got.String() != want {
			t.Errorf("HostPrefix(%s) = %v, want %s", in, got, want)
		}
	}
}

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.100/32":         "198.18.0.100/32",
		"198.18.0.100/24":         "198.18.0.0/24",
		"::ffff:198.18.0.100/128": "198.18.0.100/32",
		"2001:db8::1/64":          "2001:db8::/64",
	} {
		got, err := normalizePrefix(netip.MustParsePrefix(in))
		if err != nil || got.String() != want {
			t.Errorf("normalizePrefix(%s) = %v, %v, want %s", in, got, err, want)
		}
	}
	if _, err := normalizePrefix(netip.MustParsePrefix("::ffff:0:0/64")); err == nil {
		t.Error("normalizePrefix accepted a short ipv4-mapped prefix")
	}
}
