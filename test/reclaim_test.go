package test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// TestRealServerIDReuse: a real server removed and drained gives its id
// to the next one added, a removed service to the next new service
// (dataplane/reclaim.go). The new server starts from zero in the listings,
// though the fast path counted the old one's packets under that id, and
// carries traffic on the fast path. About 35 s: an id is reclaimed 30 s
// after its removal at the earliest.
func TestRealServerIDReuse(t *testing.T) {
	needRoot(t)
	lab := newServingLab(t, "rid", topo.LabOptions{RealServers: 3})
	g := startGovsd(t, lab.Director, testutil.Config{Services: []testutil.Service{echoService("echo", labVIP4, 53, 1)}}.YAML())
	g.admOK(t, "--set", "0", "0", "2") // UDP entries end 2 s after their last packet
	const vip = "198.18.0.100:53"

	// One flow to rs1, long enough for the fast path.
	fast0 := g.counter(t, "xdp", "fast_forwarded")
	if got := udpFlow(t, lab, vip, 30); got["rs1"] != 30 {
		t.Fatalf("answers %v, want 30 from rs1", got)
	}
	if n := g.counter(t, "xdp", "fast_forwarded") - fast0; n < 20 {
		t.Fatalf("fast path forwarded %d packets of rs1's flow, want >= 20", n)
	}
	if in, _ := g.realStats(t, vip, "198.18.1.1:5353"); in < 30 {
		t.Fatalf("rs1 InPkts %d, want >= 30", in)
	}

	// A second service, used once and removed with rs1: its id is
	// reclaimed with its real server's.
	const vip2 = "198.18.0.100:54"
	g.admOK(t, "-A", "-u", vip2, "-s", "rr")
	g.admOK(t, "-a", "-u", vip2, "-r", "198.18.1.2:5353", "-m")
	if got := udpFlow(t, lab, vip2, 2); got["rs2"] != 2 {
		t.Fatalf("second service: answers %v, want 2 from rs2", got)
	}

	g.admOK(t, "-a", "-u", vip, "-r", "198.18.1.2:5353", "-m")
	g.admOK(t, "-d", "-u", vip, "-r", "198.18.1.1:5353")
	g.admOK(t, "-D", "-u", vip2)
	waitFor(t, 45*time.Second, "rs1's id and the second service's reclaimed", func() bool {
		logs := g.Logs()
		return strings.Contains(logs, "real server ids reclaimed") && strings.Contains(logs, "service id reclaimed")
	})
	// A new service takes the second one's id, and works.
	const vip3 = "198.18.0.100:55"
	g.admOK(t, "-A", "-u", vip3, "-s", "rr")
	g.admOK(t, "-a", "-u", vip3, "-r", "198.18.1.3:5353", "-m")
	if got := udpFlow(t, lab, vip3, 10); got["rs3"] != 10 {
		t.Fatalf("service on a reclaimed id: answers %v, want 10 from rs3", got)
	}
	g.admOK(t, "-a", "-u", vip, "-r", "198.18.1.3:5353", "-m")
	if in, out := g.realStats(t, vip, "198.18.1.3:5353"); in != 0 || out != 0 {
		t.Errorf("rs3, on rs1's id, starts with InPkts %d OutPkts %d, want 0 and 0", in, out)
	}
	g.admOK(t, "-d", "-u", vip, "-r", "198.18.1.2:5353")
	fast0 = g.counter(t, "xdp", "fast_forwarded")
	if got := udpFlow(t, lab, vip, 30); got["rs3"] != 30 {
		t.Fatalf("answers %v, want 30 from rs3", got)
	}
	if n := g.counter(t, "xdp", "fast_forwarded") - fast0; n < 20 {
		t.Errorf("fast path forwarded %d packets of rs3's flow, want >= 20", n)
	}
	if in, _ := g.realStats(t, vip, "198.18.1.3:5353"); in < 30 || in > 40 {
		t.Errorf("rs3 InPkts %d after its 30 datagrams", in)
	}
	if in, _ := g.realStats(t, vip3, "198.18.1.3:5353"); in < 10 || in > 20 {
		t.Errorf("rs3 InPkts %d under the new service after its 10 datagrams", in)
	}
}

// udpFlow sends n datagrams over one socket (one flow) and counts the
// answers by real server.
func udpFlow(t *testing.T, lab *topo.Lab, addr string, n int) map[string]int {
	t.Helper()
	c, err := lab.Client.Dial("udp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := map[string]int{}
	buf := make([]byte, 2048)
	for i := 0; i < n; i++ {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping " + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("answer %d: %v (so far %v)", i, err, got)
		}
		got[strings.Fields(string(buf[:m]))[0]]++
	}
	return got
}

// realStats returns a real server's packet counters under service vip
// from govsadm -Ln --stats --exact (a UDP service).
func (g *govsd) realStats(t *testing.T, vip, real string) (inPkts, outPkts uint64) {
	t.Helper()
	out := g.admOK(t, "-L", "-n", "--stats", "--exact")
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "UDP" || f[0] == "TCP"):
			in = f[1] == vip
		case in && len(f) >= 6 && f[0] == "->" && f[1] == real:
			i, _ := strconv.ParseUint(f[3], 10, 64)
			o, _ := strconv.ParseUint(f[4], 10, 64)
			return i, o
		}
	}
	t.Fatalf("govsadm --stats lacks %s under %s:\n%s", real, vip, out)
	return 0, 0
}
