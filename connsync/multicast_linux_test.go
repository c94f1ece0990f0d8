package connsync

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/testutil"
)

// testNS is a network namespace created by a test.
type testNS string

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newNSPair creates namespaces <prefix>a and <prefix>b joined by a veth
// pair (<prefix>va in a, <prefix>vb in b) with 198.18.81.1/24 and
// 2001:db8:81::1/64 on a, 198.18.81.2/24 and 2001:db8:81::2/64 on b, and
// deletes them when the test ends.
func newNSPair(t *testing.T) (a, b testNS, va, vb string) {
	t.Helper()
	testutil.RequireRoot(t, "creates network namespaces")
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	prefix := fmt.Sprintf("gs%d", os.Getpid())
	a, b = testNS(prefix+"a"), testNS(prefix+"b")
	va, vb = prefix+"va", prefix+"vb"
	for _, ns := range []testNS{a, b} {
		ipCmd(t, "netns", "add", string(ns))
		t.Cleanup(func() { exec.Command("ip", "netns", "del", string(ns)).Run() })
	}
	ipCmd(t, "link", "add", va, "netns", string(a), "type", "veth", "peer", "name", vb, "netns", string(b))
	for _, side := range []struct {
		ns       testNS
		dev      string
		ip4, ip6 string
	}{{a, va, "198.18.81.1/24", "2001:db8:81::1/64"}, {b, vb, "198.18.81.2/24", "2001:db8:81::2/64"}} {
		// No duplicate address detection: the link-local address must be
		// usable at once.
		if out, err := exec.Command("ip", "netns", "exec", string(side.ns), "sysctl", "-qw",
			"net.ipv6.conf."+side.dev+".accept_dad=0").CombinedOutput(); err != nil {
			t.Logf("accept_dad=0 on %s: %v: %s", side.dev, err, out)
		}
		ipCmd(t, "-n", string(side.ns), "link", "set", "lo", "up")
		ipCmd(t, "-n", string(side.ns), "addr", "add", side.ip4, "dev", side.dev)
		ipCmd(t, "-n", string(side.ns), "addr", "add", side.ip6, "dev", side.dev, "nodad")
		ipCmd(t, "-n", string(side.ns), "link", "set", side.dev, "up")
		// Test traffic must not depend on checksum offload veth fakes.
		if out, err := exec.Command("ip", "netns", "exec", string(side.ns), "ethtool", "-K", side.dev, "tx", "off").CombinedOutput(); err != nil {
			t.Logf("ethtool -K %s tx off: %v: %s", side.dev, err, out)
		}
	}
	// IPv6 drops what is sent before the links have their link-local
	// addresses; wait for them (bounded).
	for _, side := range []struct {
		ns  testNS
		dev string
	}{{a, va}, {b, vb}} {
		for i := 0; ; i++ {
			out, _ := exec.Command("ip", "-n", string(side.ns), "-6", "addr", "show", "dev", side.dev, "scope", "link").CombinedOutput()
			if strings.Contains(string(out), "fe80::") && !strings.Contains(string(out), "tentative") {
				break
			}
			if i == 100 {
				t.Fatalf("no link-local address on %s after 5 s: %s", side.dev, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return a, b, va, vb
}

// do runs fn on a thread switched into ns. The thread stays locked and is
// discarded when the goroutine ends, so no other goroutine runs in ns.
// Sockets fn opens stay in ns.
func (ns testNS) do(t *testing.T, fn func() error) {
	t.Helper()
	if err := testutil.InNetns(string(ns), fn); err != nil {
		t.Fatal(err)
	}
}

// TestMulticast sends from namespace a to group 224.0.0.81 (and ff02::81)
// over the veth and checks that b receives every entry, and that a
// receiver on the sender's own side hears nothing (multicast loopback is
// off).
func TestMulticast(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { testMulticast(t, "224.0.0.81", "198.18.81.1") })
	t.Run("ipv6", func(t *testing.T) { testMulticast(t, "ff02::81", "") })
}

func testMulticast(t *testing.T, groupStr, wantFrom string) {
	a, b, va, vb := newNSPair(t)
	group := netip.MustParseAddr(groupStr)
	const port = 8848

	col := newCollector()
	var r *Receiver
	b.do(t, func() (err error) {
		r, err = NewReceiver(ReceiverConfig{Interface: vb, Group: group, Port: port, SyncID: 5, Key: testKey, Deliver: col.deliver})
		return err
	})
	t.Cleanup(func() { r.Close() })

	own := newCollector()
	var ownR *Receiver
	var s *Sender
	a.do(t, func() (err error) {
		if ownR, err = NewReceiver(ReceiverConfig{Interface: va, Group: group, Port: port, SyncID: 5, Key: testKey,
			Deliver: own.deliver, AcceptOwn: true}); err != nil {
			return err
		}
		s, err = NewSender(SenderConfig{Interface: va, Group: group, Port: port, SyncID: 5, Key: testKey, SenderID: 0x6d63})
		return err
	})
	t.Cleanup(func() { ownR.Close() })
	t.Cleanup(func() { s.Close() })

	checkSenderSockopts(t, s, group.Is6())

	want := append(sampleEntries(false), manyEntries(30)...)
	if err := s.Send(want); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sender %+v receiver %+v", s.Stats(), r.Stats())
		}
	})
	got := col.wait(t, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if from := col.from[0]; wantFrom != "" && from != netip.MustParseAddr(wantFrom) {
		t.Errorf("from %s, want %s", from, wantFrom)
	}
	if st := waitStats(t, r, "counters", func(s ReceiverStats) bool { return s.Messages >= 3 }); st.Messages != 3 || st.RejectedTotal() != 0 {
		t.Errorf("receiver stats %+v", st)
	}
	// The sender's side had as long as b to hear its own messages.
	time.Sleep(50 * time.Millisecond)
	if st := ownR.Stats(); st.Datagrams != 0 {
		t.Errorf("a receiver on the sender's side got %d datagrams: loopback is on", st.Datagrams)
	}
}

func checkSenderSockopts(t *testing.T, s *Sender, v6 bool) {
	t.Helper()
	rc, err := s.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	type opt struct {
		name       string
		level, opt int
		want       int
	}
	opts := []opt{{"IP_MULTICAST_TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1}, {"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0}}
	if v6 {
		opts = []opt{{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 1}, {"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0}}
	}
	rc.Control(func(fd uintptr) {
		for _, o := range opts {
			v, err := unix.GetsockoptInt(int(fd), o.level, o.opt)
			if err != nil || v != o.want {
				t.Errorf("%s = %d (%v), want %d", o.name, v, err, o.want)
			}
		}
	})
}
