package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/govs/govs/bgp"
	"github.com/govs/govs/config"
	"github.com/govs/govs/control"
)

func TestBGPPeerMapping(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "bgp.pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := config.BGPPeer{Address: netip.MustParseAddr("198.18.0.1"), ASN: 65000, Port: 179, PasswordFile: pw,
		HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Multihop: 2, Passive: true}
	got, err := bgpPeer(p)
	want := bgp.Peer{Address: p.Address, ASN: 65000, Port: 179, Password: "s3cret",
		HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Multihop: 2, Passive: true}
	if err != nil || got != want {
		t.Errorf("bgpPeer = %+v, %v; want %+v", got, err, want)
	}
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bgpPeer(p); err == nil {
		t.Error("bgpPeer read a world-readable password file")
	}
}

func TestBGPStatus(t *testing.T) {
	if got := bgpStatus(nil); got.Enabled || got.Peers != nil {
		t.Errorf("without a speaker: %+v", got)
	}
	// A peer on a closed local port: the session never comes up.
	s, err := bgp.Start(context.Background(), bgp.Config{ASN: 65001, RouterID: netip.MustParseAddr("198.18.0.254"),
		Peers: []bgp.Peer{{Address: netip.MustParseAddr("127.0.0.1"), ASN: 65000, Port: 1, Password: "x", Multihop: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Announce(netip.MustParsePrefix("198.18.0.100/32")); err != nil {
		t.Fatal(err)
	}
	got := bgpStatus(s)
	if !got.Enabled || got.ASN != 65001 || got.RouterID != "198.18.0.254" || len(got.Peers) != 1 ||
		len(got.Announced) != 1 || got.Announced[0] != "198.18.0.100/32" {
		t.Fatalf("bgpStatus = %+v", got)
	}
	p := got.Peers[0]
	if p.Address != "127.0.0.1" || p.ASN != 65000 || p.Port != 1 || !p.Password || p.Multihop != 2 || p.Passive ||
		p.State == "" || p.State == "established" {
		t.Errorf("peer %+v", p)
	}
	var _ control.Backend = (*Daemon)(nil)
}
