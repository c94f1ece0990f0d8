package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// resolver turns names into addresses and ports, as ipvsadm accepts host
// and service names; tests replace it so that nothing touches the network.
type resolver interface {
	lookupIPv4(host string) (netip.Addr, error)
	lookupPort(proto, service string) (int, error)
}

type netResolver struct{}

func (netResolver) lookupIPv4(host string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, errors.New("no IPv4 address")
	}
	// ipvsadm takes the first address, as gethostbyname gives it.
	return ips[0].Unmap(), nil
}

func (netResolver) lookupPort(proto, service string) (int, error) {
	return net.LookupPort(proto, service)
}

// parseNetmask reads -M: a dotted mask for an IPv4 service (ipvsadm), a
// prefix length 1..128 for IPv6. A prefix length ("24" or "/24") is also
// taken for IPv4 and sent as the dotted mask.
func parseNetmask(s string, ipv6 bool) (string, error) {
	if ipv6 {
		n, ok := parseNumber(strings.TrimPrefix(s, "/"), 1, 128)
		if !ok {
			return "", usagef("illegal ipv6 netmask specified")
		}
		return strconv.Itoa(n), nil
	}
	bad := usagef("illegal virtual server persistent mask specified")
	if n, ok := parseNumber(strings.TrimPrefix(s, "/"), 0, 32); ok {
		return prefixToMask4(n), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is4() {
		return "", bad
	}
	if _, ok := maskPrefixLen4(ip); !ok {
		return "", bad
	}
	return ip.String(), nil
}

func prefixToMask4(n int) string {
	m := uint32(0)
	if n > 0 {
		m = ^uint32(0) << (32 - n)
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// maskPrefixLen4 returns the prefix length of a contiguous dotted mask.
func maskPrefixLen4(ip netip.Addr) (int, bool) {
	b := ip.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for n < 32 && m&(1<<(31-n)) != 0 {
		n++
	}
	if n < 32 && m<<n != 0 {
		return 0, false
	}
	return n, true
}

// parseNumber is ipvsadm's string_to_number: a whole decimal number within
// [min, max].
func parseNumber(s string, min, max int) (int, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, false
	}
	return n, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseAddrPort reads ipvsadm's host[:port]: 198.18.0.100:80, a bare IPv4
// address or host name, [2001:db8::100]:80, or a bare IPv6 address. A port
// may be a number or a service name of proto.
func (p *parser) parseAddrPort(s, proto string) (ip netip.Addr, port uint16, hasPort, ok bool) {
	if s == "" || allDigits(s) {
		return ip, 0, false, false
	}
	var host, portStr string
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return ip, 0, false, false
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return ip, 0, false, false
			}
			portStr, hasPort = rest[1:], true
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return ip, 0, false, false
		}
		ip = a
	default:
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			if a.Zone() != "" {
				return ip, 0, false, false
			}
			ip = a
			break
		}
		host = s
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, portStr, hasPort = s[:i], s[i+1:], true
		}
		if host == "" {
			return ip, 0, false, false
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if !a.Is4() {
				return ip, 0, false, false
			}
			ip = a
		} else {
			if p.res == nil || strings.ContainsAny(host, ":[]/ ") {
				return ip, 0, false, false
			}
			a, err := p.res.lookupIPv4(host)
			if err != nil || !a.Is4() {
				return ip, 0, false, false
			}
			ip = a
		}
	}
	if hasPort {
		if n, ok := parseNumber(portStr, 0, 65535); ok {
			port = uint16(n)
		} else {
			if p.res == nil || portStr == "" {
				return ip, 0, false, false
			}
			n, err := p.res.lookupPort(proto, portStr)
			if err != nil || n < 0 || n > 65535 {
				return ip, 0, false, false
			}
			port = uint16(n)
		}
	}
	return ip, port, hasPort, true
}
