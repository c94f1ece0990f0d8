package dataplane

import (
	"bytes"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/bpf"
)

// steerInterface is what the steering program needs of ifc: its base
// slot, its MAC now and whether it takes frames to other MACs.
func (ifc *Interface) steerInterface() bpf.Interface {
	return bpf.Interface{Base: ifc.base, MAC: ifc.CurrentMAC(), AcceptForeignMAC: ifc.AcceptForeignMAC}
}

// CurrentMAC returns the interface's MAC address now: MAC, or the address
// it changed to since (refreshMACs).
func (ifc *Interface) CurrentMAC() [6]byte {
	if m := ifc.mac.Load(); m != nil {
		return *m
	}
	return ifc.MAC
}

// refreshMACs follows changes of the served interfaces' MAC addresses (ip
// link set dev X address Y, a bond's new active slave): the steering
// program's filter on destination MACs (bpf.Interface) gets the new
// address, and the resolver's next pass gives forwarded frames the new
// source MAC (invalidating the fast path's flow entries, which hold the
// old one). Called from housekeeping, under d.mu.
func (d *Director) refreshMACs() {
	for _, ifc := range d.ifaces {
		link, err := netlink.LinkByIndex(ifc.Index)
		if err != nil {
			continue // gone or renamed: the XDP link and sockets report it
		}
		hw := link.Attrs().HardwareAddr
		old := ifc.CurrentMAC()
		if len(hw) != 6 || bytes.Equal(hw, old[:]) {
			continue
		}
		mac := [6]byte(hw)
		ifc.mac.Store(&mac)
		if err := d.steer.SetInterface(ifc.Index, ifc.steerInterface()); err != nil {
			d.log.Warn("interface MAC changed, steering map not updated", "iface", ifc.Name, "err", err)
			continue
		}
		d.log.Info("interface MAC changed", "iface", ifc.Name, "old", net.HardwareAddr(old[:]).String(), "new", hw.String())
	}
}
