// Command govs-pktgen is a packet generator on the kernel's XDP live-frames
// mode (see package pktgen): it sends UDP datagrams or TCP SYNs over many
// flows out of one interface, at full speed or at a paced rate, and prints
// the offered and sent rates.
//
//	govs-pktgen --interface c0 --dst 198.18.0.100:53 --flows 1024 --duration 10s
//	govs-pktgen -i c0 --src 198.18.0.1-198.18.0.200 --dst 198.18.1.1:80 \
//	    --dst 198.18.1.2:80 --proto tcp-syn --rate 1M --count 5000000 --cpu 0 -v
//
// Safety: it refuses to run in the initial network namespace (the host's
// real network) unless --i-know is given, and to send to destinations
// outside the benchmarking blocks 198.18.0.0/15 and 2001:db8::/32 unless
// --any-destination is given.
//
// Output: "offered" counts the frames the program handed to the interface
// (XDP_TX), "sent" the interface's own transmit counter, which leaves out
// frames the driver could not queue (a veth peer's full ring, for one).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/pktgen"
)

// options are the parsed command line.
type options struct {
	iface          string
	srcMAC, dstMAC net.HardwareAddr
	src            string
	dsts           []netip.AddrPort
	proto          pktgen.Proto
	flows          uint32
	size           int
	rate           uint64
	duration       time.Duration
	count          uint64
	cpu            int
	verbose        bool
	iKnow          bool
	anyDestination bool
}

type dstList struct{ dsts *[]netip.AddrPort }

func (d dstList) String() string { return "" }
func (d dstList) Set(s string) error {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return fmt.Errorf("want addr:port or [addr]:port: %w", err)
	}
	*d.dsts = append(*d.dsts, ap)
	return nil
}

type macFlag struct{ mac *net.HardwareAddr }

func (m macFlag) String() string { return "" }
func (m macFlag) Set(s string) error {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("want an Ethernet MAC address such as 02:00:00:00:00:01")
	}
	*m.mac = hw
	return nil
}

type rateFlag struct{ v *uint64 }

func (r rateFlag) String() string { return "" }
func (r rateFlag) Set(s string) error {
	v, err := parseCount(s)
	*r.v = v
	return err
}

type countFlag struct{ v *uint64 }

func (c countFlag) String() string { return "" }
func (c countFlag) Set(s string) error {
	v, err := parseCount(s)
	*c.v = v
	return err
}

// parseCount parses a number with an optional k, M or G suffix (powers of 1000).
func parseCount(s string) (uint64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1e9, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*mult > 1e15 {
		return 0, fmt.Errorf("want a non-negative number, optionally with k, M or G")
	}
	return uint64(f*mult + 0.5), nil
}

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{cpu: -1}
	fs := flag.NewFlagSet("govs-pktgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.iface, "interface", "", "interface to send from (required)")
	fs.StringVar(&o.iface, "i", "", "short for --interface")
	fs.Var(macFlag{&o.srcMAC}, "src-mac", "source MAC (default: the interface's)")
	fs.Var(macFlag{&o.dstMAC}, "dst-mac", "destination MAC (default: the next hop's, from the neighbour table)")
	fs.StringVar(&o.src, "src", "", "source address, range A-B or prefix A/n (default: the interface's address)")
	fs.Var(dstList{&o.dsts}, "dst", "destination addr:port, repeatable; frames alternate between them")
	proto := fs.String("proto", "udp", "udp or tcp-syn")
	flows := fs.Uint("flows", 1, "distinct flows (source address and port combinations)")
	fs.IntVar(&o.size, "size", 64, "frame size in bytes without FCS")
	fs.Var(rateFlag{&o.rate}, "rate", "target rate in frames per second, e.g. 500k or 2M (default: as fast as possible)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long")
	fs.Var(countFlag{&o.count}, "count", "stop after this many frames")
	fs.IntVar(&o.cpu, "cpu", -1, "pin the sending thread to this CPU")
	fs.BoolVar(&o.verbose, "v", false, "print the rates every second")
	fs.BoolVar(&o.iKnow, "i-know", false, "run even in the initial network namespace")
	fs.BoolVar(&o.anyDestination, "any-destination", false, "allow destinations outside 198.18.0.0/15 and 2001:db8::/32")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.iface == "" {
		return nil, errors.New("--interface is required")
	}
	if len(o.dsts) == 0 {
		return nil, errors.New("at least one --dst is required")
	}
	var err error
	if o.proto, err = pktgen.ParseProto(*proto); err != nil {
		return nil, err
	}
	if *flows == 0 || *flows > 1<<31 {
		return nil, fmt.Errorf("--flows %d: want 1 to 2^31", *flows)
	}
	o.flows = uint32(*flows)
	if !o.anyDestination {
		if err := pktgen.CheckDestinations(o.dsts); err != nil {
			return nil, fmt.Errorf("%w (--any-destination allows it)", err)
		}
	}
	return o, nil
}

func main() {
	o, err := parseArgs(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "govs-pktgen: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "govs-pktgen: %v\n", err)
		os.Exit(1)
	}
}

// checkNamespace refuses the initial network namespace without --i-know.
func checkNamespace(o *options) error {
	if o.iKnow {
		return nil
	}
	initial, err := pktgen.InInitialNetns()
	if err != nil {
		return fmt.Errorf("%w; run it in a network namespace (ip netns exec), or pass --i-know", err)
	}
	if initial {
		return errors.New("refusing to flood the host's own network namespace; run it in a namespace (ip netns exec NS govs-pktgen ...), or pass --i-know")
	}
	return nil
}

// config resolves interface, addresses and MACs into a generator config.
func config(o *options) (pktgen.Config, error) {
	link, err := netlink.LinkByName(o.iface)
	if err != nil {
		return pktgen.Config{}, fmt.Errorf("interface %s: %w", o.iface, err)
	}
	attrs := link.Attrs()
	cfg := pktgen.Config{
		Ifindex: attrs.Index, SrcMAC: o.srcMAC, DstMAC: o.dstMAC, Dsts: o.dsts,
		Proto: o.proto, Flows: o.flows, FrameSize: o.size, Rate: o.rate,
	}
	if cfg.SrcMAC == nil {
		cfg.SrcMAC = attrs.HardwareAddr
	}
	if max := attrs.MTU + 14; o.size > max {
		return cfg, fmt.Errorf("--size %d is over the MTU of %s (%d bytes of frame)", o.size, o.iface, max)
	}
	v4 := o.dsts[0].Addr().Unmap().Is4()
	if o.src != "" {
		if cfg.Src, cfg.SrcCount, err = pktgen.ParseSrc(o.src); err != nil {
			return cfg, err
		}
	} else {
		family := netlink.FAMILY_V6
		if v4 {
			family = netlink.FAMILY_V4
		}
		addrs, err := netlink.AddrList(link, family)
		if err != nil {
			return cfg, fmt.Errorf("addresses of %s: %w", o.iface, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().IsGlobalUnicast() {
				cfg.Src, cfg.SrcCount = ip.Unmap(), 1
				break
			}
		}
		if !cfg.Src.IsValid() {
			return cfg, fmt.Errorf("%s has no address of the destinations' family: give --src", o.iface)
		}
	}
	if cfg.DstMAC == nil {
		if cfg.DstMAC, err = pktgen.NeighbourMAC(cfg.Ifindex, o.dsts[0].Addr(), 3*time.Second); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func run(ctx context.Context, o *options, out io.Writer) error {
	// Everything from here on runs on this thread: the namespace checks,
	// the netlink lookups and the sending itself.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := checkNamespace(o); err != nil {
		return err
	}
	cfg, err := config(o)
	if err != nil {
		return err
	}
	if o.cpu >= 0 {
		var set unix.CPUSet
		set.Set(o.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin to cpu %d: %w", o.cpu, err)
		}
	}
	g, err := pktgen.New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()

	fmt.Fprintf(out, "%s: %v, %d-byte frames, %d flow(s) from %v", o.iface, cfg.Proto, cfg.FrameSize, max(cfg.Flows, 1), cfg.Src)
	if cfg.SrcCount > 1 {
		fmt.Fprintf(out, " (+%d addresses)", cfg.SrcCount-1)
	}
	fmt.Fprintf(out, " to %d destination(s), %v -> %v", len(cfg.Dsts), cfg.SrcMAC, cfg.DstMAC)
	if cfg.Rate > 0 {
		fmt.Fprintf(out, ", target %s", rate(float64(cfg.Rate)))
	}
	fmt.Fprintln(out)

	txStart, txErr := pktgen.InterfaceTxPackets(cfg.Ifindex)
	var last pktgen.Stats
	lastTx := txStart
	opts := pktgen.RunOptions{Count: o.count, Duration: o.duration}
	if o.verbose {
		opts.Progress = func(s pktgen.Stats) {
			d := s.Elapsed - last.Elapsed
			line := fmt.Sprintf("%6.1fs  offered %s", s.Elapsed.Seconds(), rate(float64(s.Sent-last.Sent)/d.Seconds()))
			// Progress runs on another thread; it is in the same
			// namespace, as the whole process is (ip netns exec).
			if tx, err := pktgen.InterfaceTxPackets(cfg.Ifindex); err == nil && txErr == nil {
				line += "  sent " + rate(float64(tx-lastTx)/d.Seconds())
				lastTx = tx
			}
			fmt.Fprintln(out, line)
			last = s
		}
	}
	st, err := g.Run(ctx, opts)
	if err != nil {
		return err
	}
	secs := st.Elapsed.Seconds()
	fmt.Fprintf(out, "elapsed  %.3f s\n", secs)
	fmt.Fprintf(out, "offered  %s  (%d frames handed to %s)\n", rate(float64(st.Sent)/secs), st.Sent, o.iface)
	if txErr == nil {
		if tx, err := pktgen.InterfaceTxPackets(cfg.Ifindex); err == nil {
			fmt.Fprintf(out, "sent     %s  (%s transmit counter +%d)\n", rate(float64(tx-txStart)/secs), o.iface, tx-txStart)
		}
	}
	if st.Paced > 0 {
		fmt.Fprintf(out, "paced    %d runs dropped to hold the rate\n", st.Paced)
	}
	if st.BadFrame > 0 || st.Unconfigured > 0 {
		return fmt.Errorf("the program refused frames: %+v", st)
	}
	return nil
}

// rate formats frames per second as "1,234,567 pps (1.235 Mpps)".
func rate(pps float64) string {
	return fmt.Sprintf("%13s pps %8.3f Mpps", commas(uint64(pps+0.5)), pps/1e6)
}

func commas(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
