package neighbor

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Announce sends the announcement of ip (Frame) out of the interface with
// index ifindex and hardware address mac, on a raw packet socket (which
// needs CAP_NET_RAW).
func Announce(ifindex int, mac net.HardwareAddr, ip netip.Addr) error {
	if len(mac) != 6 {
		return errors.New("not an Ethernet interface")
	}
	frame, etherType := Frame([6]byte(mac), ip)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(etherType)))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: ifindex, Halen: 6}
	copy(sa.Addr[:], frame[:6])
	return unix.Sendto(fd, frame, 0, sa)
}

// htons returns v in network byte order as a little-endian machine reads
// it, as packet sockets want their protocol numbers.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
