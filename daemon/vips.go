package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/neighbor"
)

// managedVIPs are the VIP addresses govsd added to its interfaces
// (director.manage_vips) and removes on exit.
type managedVIPs struct {
	log   *slog.Logger
	added map[netip.Addr]netlink.Link
	// adoptExisting: a VIP already on its interface was added by the
	// govsd whose state this one adopted (a restart), so it is ours to
	// remove; otherwise it is someone else's.
	adoptExisting bool
}

// vipInterface picks the interface a VIP belongs on: the served interface
// whose subnet contains it, else the first served interface (the one
// facing the clients, by convention).
func vipInterface(vip netip.Addr, ifaces []string) (netlink.Link, error) {
	var first netlink.Link
	for _, name := range ifaces {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", name, err)
		}
		if first == nil {
			first = link
		}
		addrs, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
		for _, a := range addrs {
			if ones, bits := a.Mask.Size(); ones < bits && a.IPNet.Contains(vip.AsSlice()) {
				return link, nil
			}
		}
	}
	return first, nil
}

func newManagedVIPs(log *slog.Logger) *managedVIPs {
	return &managedVIPs{log: log, added: map[netip.Addr]netlink.Link{}}
}

// sync adds every wanted VIP (as a /32 or /128) that govsd has not added
// yet, announcing it, and removes those it added that are no longer wanted.
func (m *managedVIPs) sync(vips []netip.Addr, ifaces []string) error {
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		want[v] = true
	}
	for vip := range m.added {
		if !want[vip] {
			m.del(vip)
		}
	}
	for vip := range want {
		if _, done := m.added[vip]; done {
			continue
		}
		link, err := vipInterface(vip, ifaces)
		if err != nil {
			return err
		}
		bits := vip.BitLen()
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
		if vip.Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			if errors.Is(err, unix.EEXIST) {
				if m.adoptExisting {
					m.added[vip] = link
				}
				// Otherwise someone else's address: not ours to remove later.
				continue
			}
			return fmt.Errorf("add vip %s to %s: %w", vip, link.Attrs().Name, err)
		}
		m.added[vip] = link
		if err := announce(link, vip); err != nil {
			m.log.Warn("vip announcement failed", "vip", vip.String(), "iface", link.Attrs().Name, "err", err)
		}
		m.log.Info("vip added", "vip", vip.String(), "iface", link.Attrs().Name)
	}
	return nil
}

func (m *managedVIPs) del(vip netip.Addr) {
	link := m.added[vip]
	delete(m.added, vip)
	bits := vip.BitLen()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
	if err := netlink.AddrDel(link, addr); err != nil {
		m.log.Warn("remove vip", "vip", vip.String(), "err", err)
		return
	}
	m.log.Info("vip removed", "vip", vip.String(), "iface", link.Attrs().Name)
}

// removeAll deletes every VIP govsd added (at exit).
func (m *managedVIPs) removeAll() {
	for vip := range m.added {
		m.del(vip)
	}
}

// announce tells the segment that the VIP is here now (package neighbor),
// so that neighbours update their caches at once (after a failover).
func announce(link netlink.Link, vip netip.Addr) error {
	return neighbor.Announce(link.Attrs().Index, link.Attrs().HardwareAddr, vip)
}
