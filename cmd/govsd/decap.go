package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/inet"
)

// vipList collects repeated --vip flags.
type vipList []netip.Addr

func (v *vipList) String() string { return fmt.Sprint(*v) }
func (v *vipList) Set(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	*v = append(*v, a)
	return nil
}

func runDecap(args []string) int {
	fs := flag.NewFlagSet("govsd decap", flag.ContinueOnError)
	iface := fs.String("interface", "", "interface receiving the tunnelled packets")
	mode := fs.String("xdp-mode", "auto", "auto, native or generic")
	var vips vipList
	fs.Var(&vips, "vip", "a VIP served by this real server (repeat for more)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	m, err := bpf.ParseMode(*mode)
	if err != nil || *iface == "" {
		fmt.Fprintln(os.Stderr, "govsd decap: need --interface IFACE, one or more --vip ADDR, and --xdp-mode auto|native|generic")
		return 2
	}
	log, _ := newLogger("text", false)
	if err := decap(context.Background(), *iface, vips, m, log); err != nil {
		log.Error("govsd decap failed", "err", err)
		return 1
	}
	return 0
}

// decap is `govsd decap`: the real-server side of LVS-TUN on hosts without
// an ipip module. It attaches an XDP program to iface that strips the outer
// IPIP / IPv6-in-IPv6 header of packets whose inner destination is one of
// vips, so the kernel sees the inner packet, and runs until ctx ends or
// SIGINT/SIGTERM arrives. The VIPs must be local addresses (usually on lo,
// as for VS/DR).
func decap(ctx context.Context, iface string, vips []netip.Addr, mode bpf.Mode, log *slog.Logger) error {
	if len(vips) == 0 {
		return errors.New("decap: at least one --vip is needed")
	}
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("decap: interface %s: %w", iface, err)
	}
	d, err := bpf.LoadDecap()
	if err != nil {
		return fmt.Errorf("decap: %w", err)
	}
	defer d.Close()
	for _, v := range vips {
		if err := d.AddVIP(inet.AddrFromNetip(v)); err != nil {
			return fmt.Errorf("decap: vip %s: %w", v, err)
		}
	}
	used, err := d.Attach(link.Attrs().Index, mode)
	if err != nil {
		return fmt.Errorf("decap: attach xdp to %s: %w", iface, err)
	}
	log.Info("decap attached", "iface", iface, "mode", used.String(), "vips", len(vips))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-ctx.Done():
	case <-sigs:
	}
	log.Info("decap detached", "iface", iface)
	return nil
}
