package dataplane

import (
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/govs/govs/internal/testutil"
)

// TestXDPFeaturesVethPeer: a veth accepts redirected XDP frames only while
// its peer has GRO on (or an XDP program), and xdpFeatures sees it change.
func TestXDPFeaturesVethPeer(t *testing.T) {
	testutil.RequireRoot(t, "creates a network namespace")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // also switches this thread into it
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		netns.Set(orig)
		ns.Close()
	}()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "xfa"}, PeerName: "xfb"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.LinkByName("xfa")
	b, _ := netlink.LinkByName("xfb")
	netlink.LinkSetUp(a)
	netlink.LinkSetUp(b)
	f, err := xdpFeatures(a.Attrs().Index)
	if err != nil {
		t.Fatal(err)
	}
	if f&xdpActNdoXmit != 0 {
		t.Errorf("xfa features %#x: NDO_XMIT set while its peer has neither XDP nor GRO", f)
	}
	// ethtool runs in this thread's namespace only if started from it.
	if out, err := exec.Command("nsenter", "--net=/proc/thread-self/ns/net", "ethtool", "-K", "xfb", "gro", "on").CombinedOutput(); err != nil {
		t.Skipf("ethtool: %v: %s", err, out)
	}
	if f, err = xdpFeatures(a.Attrs().Index); err != nil {
		t.Fatal(err)
	}
	if f&xdpActNdoXmit == 0 {
		t.Errorf("xfa features %#x: NDO_XMIT missing while its peer has GRO on", f)
	}
}
