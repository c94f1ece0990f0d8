package connsync

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// recvBufferBytes is the receive buffer asked for (best effort): a master
// flushing a full table after failover sends bursts of thousands of
// messages, which the default buffer would drop.
const recvBufferBytes = 4 << 20

func interfaceIndex(name string) (int, error) {
	if name == "" {
		return 0, nil
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("sync interface %q: %w", name, err)
	}
	return ifi.Index, nil
}

// control adapts a function of the raw fd to a net.ListenConfig Control hook.
func control(fn func(fd int) error) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = fn(int(fd)) }); cerr != nil {
			return cerr
		}
		return err
	}
}

func sockopt(fd, level, opt, value int, name string) error {
	if err := unix.SetsockoptInt(fd, level, opt, value); err != nil {
		return fmt.Errorf("setsockopt %s: %w", name, err)
	}
	return nil
}

// openSenderSocket opens the sender's UDP socket on an ephemeral port:
// for multicast, with the outgoing interface set, TTL (hop limit) 1 so the
// messages never leave the link, and loopback off so a director in role
// "both" does not hear itself.
func openSenderSocket(cfg *SenderConfig) (*net.UDPConn, error) {
	ifindex, err := interfaceIndex(cfg.Interface)
	if err != nil {
		return nil, err
	}
	network, laddr := "udp", ":0"
	var dsts []netip.Addr
	if cfg.Group.IsValid() {
		dsts = []netip.Addr{cfg.Group}
	} else {
		dsts = cfg.Peers
	}
	switch familyOf(dsts) {
	case 4:
		network, laddr = "udp4", "0.0.0.0:0"
	case 6:
		network, laddr = "udp6", "[::]:0"
	}
	group := cfg.Group
	lc := net.ListenConfig{Control: control(func(fd int) error {
		switch {
		case group.Is4():
			if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifindex)}); err != nil {
				return fmt.Errorf("setsockopt IP_MULTICAST_IF: %w", err)
			}
			if err := sockopt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1, "IP_MULTICAST_TTL"); err != nil {
				return err
			}
			return sockopt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP")
		case group.Is6():
			if err := sockopt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifindex, "IPV6_MULTICAST_IF"); err != nil {
				return err
			}
			if err := sockopt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 1, "IPV6_MULTICAST_HOPS"); err != nil {
				return err
			}
			return sockopt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP")
		case cfg.Interface != "":
			// Unicast on a named interface: keep sync traffic on it.
			if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, cfg.Interface); err != nil {
				return fmt.Errorf("setsockopt SO_BINDTODEVICE %s: %w", cfg.Interface, err)
			}
		}
		return nil
	})}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("sync sender socket: %w", err)
	}
	return pc.(*net.UDPConn), nil
}

// openReceiverSocket opens the receiver's socket on the sync port and, for
// multicast, joins the group on the interface. The socket is bound to the
// interface's device when one is named, so sync messages are taken only
// from the sync network.
func openReceiverSocket(cfg *ReceiverConfig) (*net.UDPConn, error) {
	ifindex, err := interfaceIndex(cfg.Interface)
	if err != nil {
		return nil, err
	}
	group := cfg.Group
	var network, laddr string
	switch {
	case group.IsValid():
		// Go binds a multicast listener to the wildcard address with
		// SO_REUSEADDR; IP_MULTICAST_ALL off below keeps other sockets'
		// groups out.
		network = udpNetwork(group)
		laddr = netip.AddrPortFrom(group, cfg.Port).String()
	case cfg.Listen.IsValid():
		network = udpNetwork(cfg.Listen)
		laddr = netip.AddrPortFrom(cfg.Listen, cfg.Port).String()
	default:
		network, laddr = "udp", fmt.Sprintf(":%d", cfg.Port)
	}
	lc := net.ListenConfig{Control: control(func(fd int) error {
		// Best effort: unprivileged processes are capped by rmem_max.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, recvBufferBytes)
		if cfg.Interface != "" {
			if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, cfg.Interface); err != nil {
				return fmt.Errorf("setsockopt SO_BINDTODEVICE %s: %w", cfg.Interface, err)
			}
		}
		switch {
		case group.Is4():
			return sockopt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL")
		case group.Is6():
			// IPV6_MULTICAST_ALL exists since Linux 4.20; without it the
			// HMAC still keeps foreign traffic out.
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
		}
		return nil
	})}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("sync receiver socket: %w", err)
	}
	conn := pc.(*net.UDPConn)
	if group.IsValid() {
		if err := joinGroup(conn, group, ifindex); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

func joinGroup(conn *net.UDPConn, group netip.Addr, ifindex int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("join %s: %w", group, err)
	}
	var jerr error
	err = rc.Control(func(fd uintptr) {
		if group.Is4() {
			jerr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
				&unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifindex)})
		} else {
			jerr = unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP,
				&unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifindex)})
		}
	})
	if err == nil {
		err = jerr
	}
	if err != nil {
		return fmt.Errorf("join %s on ifindex %d: %w", group, ifindex, err)
	}
	return nil
}

// familyOf returns 4 or 6 when all addrs are of that family, 0 when mixed.
func familyOf(addrs []netip.Addr) int {
	fam := 0
	for _, a := range addrs {
		f := 6
		if a.Unmap().Is4() {
			f = 4
		}
		if fam != 0 && fam != f {
			return 0
		}
		fam = f
	}
	return fam
}

func udpNetwork(a netip.Addr) string {
	if a.Is4() {
		return "udp4"
	}
	return "udp6"
}
