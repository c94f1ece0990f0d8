package dataplane

import (
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/govs/govs/bpf"
	"github.com/govs/govs/dataplane/packet"
)

// Restarts without loss (issue #14).
//
// With Options.PinPath set, what a govsd must hand to the next one outlives
// the process in bpffs:
//
//   - the XDP link of each interface: the program stays attached while no
//     govsd runs, and the next one swaps its own program in atomically
//     (Start, after its workers run);
//   - the fast path's flow map and its generation (fast_cfg): established
//     flows in the fast path go on being forwarded by the old program in
//     the gap, without a packet lost;
//   - the SYN-cookie key: in the gap the program answers SYNs to NAT and
//     full-NAT services with cookies (no socket to steer them to), and the
//     next govsd accepts the handshakes;
//   - the connection mirror (mirror.go): every connection and persistence
//     template, written by the workers as they change, read by the next
//     govsd before its workers start (Adopt).
//
// Everything else (services, real servers, counters, the steering meter)
// comes from the next govsd's configuration. In the gap, packets the
// program would steer to a worker are dropped (the kernel would reset the
// connection): TCP resends them once the next govsd runs.

// releaseStaleInterfaces detaches the program from interfaces a previous
// govsd served and this one does not (director.interfaces changed).
func (d *Director) releaseStaleInterfaces() error {
	if d.opts.PinPath == "" {
		return nil
	}
	names, err := bpf.PinnedInterfaces(d.opts.PinPath)
	if err != nil {
		return fmt.Errorf("pinned interfaces: %w", err)
	}
	for _, name := range names {
		if slices.Contains(d.opts.Interfaces, name) {
			continue
		}
		if err := d.steer.ReleaseInterface(name); err != nil {
			return fmt.Errorf("release interface %s a previous govsd served: %w", name, err)
		}
		d.log.Warn("detached the XDP program a previous govsd left on an interface no longer served", "iface", name)
	}
	return nil
}

// synCookieKey is the key of the SYN cookies: the one pinned by a previous
// govsd (the program it left answered SYNs with it in the gap), else a new
// random one.
func (d *Director) synCookieKey() (packet.SynCookieKey, error) {
	var k packet.SynCookieKey
	if d.opts.PinPath != "" {
		pinned, ok, err := d.steer.SynCookieKey()
		if err != nil {
			return k, err
		}
		if ok {
			return packet.SynCookieKey(pinned), nil
		}
	}
	if _, err := rand.Read(k[:]); err != nil {
		return k, err
	}
	return k, nil
}
