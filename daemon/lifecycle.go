package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/config"
	"github.com/govs/govs/control"
)

// How govsd ends (issue #14: restarts without loss).
//
//   - SIGTERM, SIGINT (stopRestart): the workers stop, the connection
//     mirror is flushed, the AF_XDP sockets close, and everything pinned
//     under director.bpf_pin_path stays: the XDP program goes on forwarding
//     established fast-path flows, answers SYNs to NAT and full-NAT services
//     with cookies and drops what it would have steered to the workers,
//     until the next govsd adopts the state. The VIPs it added
//     (manage_vips) stay too. With bpf_pin_path "" nothing can be adopted,
//     so it stops for good instead.
//   - govsadm --shutdown (stopForGood): XDP detached, pinned objects and
//     managed VIPs removed, exit. govsd --cleanup does the same for a govsd
//     that is gone.
//   - govsd --takeover (stopHandover): a successor asks over the control
//     socket; govsd stops as for SIGTERM and answers once its sockets are
//     closed, so that the successor can bind them.
type stopKind int

const (
	stopRestart stopKind = iota
	stopForGood
	stopHandover
)

func (k stopKind) String() string {
	switch k {
	case stopForGood:
		return "shutdown"
	case stopHandover:
		return "handover"
	}
	return "restart"
}

// stopRequest asks Run to stop; done gets the outcome once the data path
// is stopped (and, for stopForGood, everything removed), before Run
// returns, so that the control API's answer means it is done.
type stopRequest struct {
	kind stopKind
	done chan error
}

// Shutdown stops govsd for good (govsadm --shutdown).
func (d *Daemon) Shutdown() error { return d.requestStop(stopForGood) }

// Handover gives way to a successor (govsd --takeover).
func (d *Daemon) Handover() error { return d.requestStop(stopHandover) }

func (d *Daemon) requestStop(kind stopKind) error {
	req := stopRequest{kind: kind, done: make(chan error, 1)}
	select {
	case d.stops <- req:
	default:
		return fmt.Errorf("%w: govsd is already stopping", control.ErrInvalid)
	}
	return <-req.done
}

// stopDataPath stops the data path the way kind asks and reports what it
// did in one log line.
func (d *Daemon) stopDataPath(kind stopKind) error {
	d.stopHealth()
	d.sync.stop()
	keep := kind != stopForGood && d.cfg.Director.BPFPinPath != ""
	var err error
	if keep {
		err = d.dp.Close()
	} else {
		err = d.dp.Shutdown()
		if d.vips != nil {
			d.vips.removeAll()
		}
	}
	if keep {
		d.log.Info("govsd stopped; XDP and the connections stay for the next govsd (govsadm --shutdown removes them)",
			"reason", kind.String(), "bpf_pin_path", d.cfg.Director.BPFPinPath)
	} else {
		d.log.Info("xdp detached, govsd stopped", "reason", kind.String())
	}
	return err
}

// govsdRunning reports whether a govsd answers on the control socket.
func govsdRunning(socket string) bool {
	c, err := net.DialTimeout("unix", socket, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// takeOver asks the govsd running on cfg's control socket to hand over,
// and returns once it has closed its sockets.
func takeOver(cfg *config.Config, log *slog.Logger) error {
	sock := cfg.Director.ControlSocket
	if !govsdRunning(sock) {
		log.Info("takeover: no govsd answers on the control socket; starting as usual", "control_socket", sock)
		return nil
	}
	start := time.Now()
	if err := control.NewClient(sock).Handover(); err != nil {
		return fmt.Errorf("takeover: the running govsd refused to hand over: %w", err)
	}
	log.Info("takeover: the running govsd handed over", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Cleanup removes what a govsd that is no longer running left behind for
// its successor (govsd --cleanup): the XDP links and maps pinned under
// director.bpf_pin_path and, with director.manage_vips, the configured
// VIPs on the served interfaces. It refuses while a govsd runs: that one
// stops for good with govsadm --shutdown.
func Cleanup(path string, log *slog.Logger) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if govsdRunning(cfg.Director.ControlSocket) {
		return fmt.Errorf("a govsd is running on %s: stop it for good with govsadm --shutdown", cfg.Director.ControlSocket)
	}
	var errs []error
	if pin := cfg.Director.BPFPinPath; pin != "" {
		removed, err := bpf.Cleanup(pin)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", pin, err))
		}
		for _, name := range removed {
			log.Info("removed", "pinned", name)
		}
	}
	if cfg.Director.ManageVIPs {
		svcs, err := servicesFromConfig(cfg)
		if err != nil {
			return err
		}
		for _, s := range svcs {
			if s.spec.FwMark != 0 {
				continue
			}
			removed, err := removeHostAddr(s.spec.VIP, cfg.Director.Interfaces)
			if err != nil {
				errs = append(errs, err)
			} else if removed {
				log.Info("removed", "vip", s.spec.VIP.String())
			}
		}
	}
	return errors.Join(errs...)
}

// removeHostAddr deletes vip as a host address (/32, /128) from whichever
// of ifaces holds it, and reports whether one did; absent is fine.
func removeHostAddr(vip netip.Addr, ifaces []string) (bool, error) {
	removed := false
	bits := vip.BitLen()
	for _, name := range ifaces {
		link, err := netlink.LinkByName(name)
		if err != nil {
			continue
		}
		addrs, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if ones, _ := a.Mask.Size(); !ok || ip.Unmap() != vip || ones != bits {
				continue
			}
			if err := netlink.AddrDel(link, &a); err != nil {
				return removed, fmt.Errorf("remove vip %s from %s: %w", vip, name, err)
			}
			removed = true
		}
	}
	return removed, nil
}
