package test

import (
	"strings"

	"github.com/govs/govs/internal/testutil"
)

// The lab's VIPs on the director (newServingLab's default is labVIP4).
const (
	labVIP4 = "198.18.0.100"
	labVIP6 = "2001:db8::100"
)

// labReals returns the addresses of the lab's first n real servers in
// vip's family.
func labReals(vip string, n int) []string {
	if strings.Contains(vip, ":") {
		return testutil.LabReals6(n)
	}
	return testutil.LabReals4(n)
}

// httpService is a TCP service on vip:port to port 8080 of the lab's
// first n real servers (where newServingLab's servers answer HTTP).
func httpService(name, vip string, port, n int) testutil.Service {
	return testutil.Service{Name: name, VIP: vip, Port: port, Reals: testutil.Reals(8080, labReals(vip, n)...)}
}

// echoService is a UDP service on vip:port to port 5353 of the lab's
// first n real servers (where newServingLab's servers echo).
func echoService(name, vip string, port, n int) testutil.Service {
	return testutil.Service{Name: name, VIP: vip, Port: port, Protocol: "udp", Reals: testutil.Reals(5353, labReals(vip, n)...)}
}
