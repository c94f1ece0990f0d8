package daemon

import (
	"context"
	"errors"
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

// RunDecap is `govsd decap`: the real-server side of LVS-TUN on hosts
// without an ipip module. It attaches an XDP program to iface that strips the
// outer IPIP / IPv6-in-IPv6 header of packets whose inner destination is one
// of vips, so the kernel sees the inner packet, and runs until ctx ends or
// SIGINT/SIGTERM arrives. The VIPs must be local addresses (usually on lo, as
// for VS/DR).
func RunDecap(ctx context.Context, iface string, vips []netip.Addr, mode bpf.Mode, log *slog.Logger) error {
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
