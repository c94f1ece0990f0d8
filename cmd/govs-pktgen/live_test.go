package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/pktgen"
)

// inNS runs fn on a locked thread inside namespace ns.
var inNS = testutil.InNetns

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestLive sends a bounded, paced run from a namespace to a sink on the
// veth peer, resolving the peer's MAC from the neighbour table.
func TestLive(t *testing.T) {
	testutil.RequireRoot(t, "network namespaces and BPF")
	a, b := fmt.Sprintf("gp%dclia", os.Getpid()), fmt.Sprintf("gp%dclib", os.Getpid())
	for _, ns := range []string{a, b} {
		exec.Command("ip", "netns", "del", ns).Run()
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	sh(t, "ip", "link", "add", "c0", "netns", a, "type", "veth", "peer", "name", "s0", "netns", b)
	for _, s := range []struct{ ns, dev, addr string }{{a, "c0", "198.18.0.1/24"}, {b, "s0", "198.18.0.2/24"}} {
		sh(t, "ip", "-n", s.ns, "addr", "add", s.addr, "dev", s.dev)
		sh(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
		sh(t, "ip", "netns", "exec", s.ns, "ethtool", "-K", s.dev, "tx", "off")
	}
	sink, err := pktgen.LoadSink(false)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := inNS(b, func() error {
		ifi, err := net.InterfaceByName("s0")
		if err != nil {
			return err
		}
		return sink.Attach(ifi.Index)
	}); err != nil {
		t.Fatal(err)
	}

	o, err := parseArgs(strings.Fields("-i c0 --dst 198.18.0.2:9 --flows 100 --size 96 --rate 20k --count 1000 --cpu 0"), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := inNS(a, func() error { return run(ctx, o, &out) }); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	for _, want := range []string{"offered", "(1000 frames handed to c0)", "sent", "udp, 96-byte frames, 100 flow(s) from 198.18.0.1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var c pktgen.SinkCounters
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err = sink.Counters(); err != nil {
			t.Fatal(err)
		}
		if c.UDP >= 1000 {
			break
		}
	}
	// One more datagram may be the one that made the kernel resolve the
	// peer's MAC.
	if c.UDP != 1000 && c.UDP != 1001 {
		t.Errorf("sink counted %d UDP frames, want 1000", c.UDP)
	}
}
