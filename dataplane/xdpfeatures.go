package dataplane

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The kernel's netdev generic netlink family (include/uapi/linux/netdev.h)
// reports what XDP features a device has right now.
const (
	netdevFamily          = "netdev"
	netdevCmdDevGet       = 1 // NETDEV_CMD_DEV_GET
	netdevAttrIfindex     = 1 // NETDEV_A_DEV_IFINDEX (u32)
	netdevAttrXDPFeatures = 3 // NETDEV_A_DEV_XDP_FEATURES (u64)
	// xdpActNdoXmit (NETDEV_XDP_ACT_NDO_XMIT): the device accepts frames
	// redirected to it by XDP. A veth has it only while its peer runs an
	// XDP program or has GRO on; without it redirected frames are dropped.
	xdpActNdoXmit = 1 << 2
)

// xdpFeatures returns the NETDEV_XDP_ACT_* bits of an interface. (The
// request is built by hand: vishvananda/netlink's request for it is refused
// with EINVAL.)
func xdpFeatures(ifindex int) (uint64, error) {
	fam, err := netlink.GenlFamilyGet(netdevFamily)
	if err != nil {
		return 0, fmt.Errorf("netdev netlink family: %w", err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return 0, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("netlink socket timeout: %w", err)
	}
	// nlmsghdr (16) + genlmsghdr (4) + one u32 attribute (8).
	const seq = 1
	req := make([]byte, unix.SizeofNlMsghdr+4+8)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], fam.ID)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], seq)
	req[16], req[17] = netdevCmdDevGet, 1 // command, version
	ne.PutUint16(req[20:], 8)
	ne.PutUint16(req[22:], netdevAttrIfindex)
	ne.PutUint32(req[24:], uint32(ifindex))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("netdev dev-get ifindex %d: %w", ifindex, err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("netdev dev-get ifindex %d: %w", ifindex, err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("netdev dev-get ifindex %d: %w", ifindex, err)
	}
	for _, m := range msgs {
		if m.Header.Seq != seq {
			continue
		}
		if m.Header.Type == unix.NLMSG_ERROR {
			if len(m.Data) >= 4 {
				if errno := int32(ne.Uint32(m.Data)); errno != 0 {
					return 0, fmt.Errorf("netdev dev-get ifindex %d: %w", ifindex, syscall.Errno(-errno))
				}
			}
			continue
		}
		if len(m.Data) < 4 {
			continue
		}
		for b := m.Data[4:]; len(b) >= 4; {
			l := int(ne.Uint16(b))
			typ := ne.Uint16(b[2:]) &^ (1<<15 | 1<<14) // NLA_F_NESTED, NLA_F_NET_BYTEORDER
			if l < 4 || l > len(b) {
				break
			}
			if typ == netdevAttrXDPFeatures && l >= 12 {
				return ne.Uint64(b[4:]), nil
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
	return 0, fmt.Errorf("netdev dev-get ifindex %d: no xdp features in the answer", ifindex)
}
