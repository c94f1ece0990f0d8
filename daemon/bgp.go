package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/govs/govs/bgp"
	"github.com/govs/govs/config"
	"github.com/govs/govs/control"
)

// startBGP starts the route health injection speaker (director.bgp).
func (d *Daemon) startBGP(cfg *config.BGP) error {
	bc := bgp.Config{ASN: cfg.ASN, RouterID: cfg.RouterID, NextHop: cfg.NextHop, Logger: d.log}
	for _, p := range cfg.Peers {
		bp, err := bgpPeer(p)
		if err != nil {
			return err
		}
		if bp.Passive {
			// A passive peer opens the session: listen for it.
			bc.ListenPort = bgp.DefaultPeerPort
		}
		bc.Peers = append(bc.Peers, bp)
	}
	for _, c := range cfg.Communities {
		bc.Communities = append(bc.Communities, c.Uint32())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := bgp.Start(ctx, bc)
	if err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	d.bgp = s
	d.log.Info("bgp speaker started", "asn", cfg.ASN, "router_id", cfg.RouterID.String(), "peers", len(cfg.Peers))
	return nil
}

// bgpPeer maps a configured peer to the speaker's, reading its password file.
func bgpPeer(p config.BGPPeer) (bgp.Peer, error) {
	bp := bgp.Peer{Address: p.Address, ASN: p.ASN, Port: p.Port, HoldTime: p.HoldTime,
		Keepalive: p.Keepalive, Multihop: p.Multihop, Passive: p.Passive}
	if p.PasswordFile != "" {
		pw, err := config.LoadBGPPassword(p.PasswordFile)
		if err != nil {
			return bgp.Peer{}, fmt.Errorf("bgp peer %v: %w", p.Address, err)
		}
		bp.Password = pw
	}
	return bp, nil
}

// syncRoutes announces each VIP while one of its services has a healthy
// real server in service (weight above 0; a sorry server does not count),
// and withdraws it otherwise. Callers hold d.mu.
func (d *Daemon) syncRoutes() {
	if d.bgp == nil {
		return
	}
	healthy := map[netip.Addr]bool{}
	for _, s := range d.services {
		if s.spec.FwMark != 0 {
			continue // a mark's prefixes are not announced
		}
		if _, seen := healthy[s.spec.VIP]; !seen {
			healthy[s.spec.VIP] = false
		}
		for i := range s.spec.Dests {
			ds := &s.spec.Dests[i]
			if ds.Weight > 0 && d.isUp(destKey(&s.spec, ds)) {
				healthy[s.spec.VIP] = true
			}
		}
	}
	announced := map[netip.Prefix]bool{}
	for _, p := range d.bgp.Announced() {
		announced[p] = true
	}
	for vip, ok := range healthy {
		p := bgp.HostPrefix(vip)
		switch {
		case ok && !announced[p]:
			if err := d.bgp.Announce(p); err != nil {
				d.log.Error("bgp announce", "prefix", p.String(), "err", err)
			} else {
				d.log.Info("vip route announced", "prefix", p.String())
			}
		case !ok && announced[p]:
			if err := d.bgp.Withdraw(p); err != nil {
				d.log.Error("bgp withdraw", "prefix", p.String(), "err", err)
			} else {
				d.log.Warn("vip route withdrawn: no healthy real server", "prefix", p.String())
			}
		}
		delete(announced, p)
	}
	for p := range announced { // VIPs of removed services
		if err := d.bgp.Withdraw(p); err == nil {
			d.log.Info("vip route withdrawn: service removed", "prefix", p.String())
		}
	}
}

// BGP implements control.Backend (govsadm -L --bgp). d.bgp is set before
// the control socket opens and never changes, so no lock is needed.
func (d *Daemon) BGP() control.BGP {
	return bgpStatus(d.bgp)
}

func bgpStatus(s *bgp.Speaker) control.BGP {
	if s == nil {
		return control.BGP{}
	}
	cfg := s.Config()
	out := control.BGP{Enabled: true, ASN: cfg.ASN, RouterID: cfg.RouterID.String()}
	states := s.PeerStates()
	for _, p := range cfg.Peers {
		state, ok := states[p.Address]
		if !ok {
			state = "unknown"
		}
		out.Peers = append(out.Peers, control.BGPPeer{Address: p.Address.String(), ASN: p.ASN, Port: p.Port,
			State: state, Passive: p.Passive, Multihop: p.Multihop, Password: p.Password != ""})
	}
	for _, p := range s.Announced() {
		out.Announced = append(out.Announced, p.String())
	}
	return out
}

func (d *Daemon) stopBGP() {
	if d.bgp == nil {
		return
	}
	if err := d.bgp.Stop(); err != nil {
		d.log.Warn("bgp stop", "err", err)
	}
	d.log.Info("bgp speaker stopped, routes withdrawn")
}
