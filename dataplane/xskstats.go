package dataplane

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// RingStats are the kernel's counters of one AF_XDP socket (XDP_STATISTICS):
// frames the XDP program steered to a worker that never reached it show up
// here, nowhere else.
type RingStats struct {
	Interface string
	Queue     int
	// RxDropped: frames dropped by the kernel for want of a fill ring
	// entry, or too long for a frame.
	RxDropped uint64
	// RxRingFull: frames dropped because the worker's RX ring was full
	// (the worker fell behind).
	RxRingFull uint64
	// FillRingEmpty: times the kernel found the fill ring empty.
	FillRingEmpty uint64
	// TxInvalid: TX descriptors the kernel refused.
	TxInvalid uint64
	// TxRingEmpty: times the kernel found the TX ring empty when asked
	// to send.
	TxRingEmpty uint64
	// SteerLimit is the queue's steering meter now (overload.go), in
	// packets per second; 0: unlimited.
	SteerLimit uint64
}

// RingStats reads the counters of every worker's sockets, by interface in
// configuration order, then queue. The reads are getsockopt calls, safe
// while the workers run; a socket that cannot be read is skipped and its
// error returned with the rest.
func (d *Director) RingStats() ([]RingStats, error) {
	var out []RingStats
	var errs []error
	for i, ifc := range d.ifaces {
		for _, w := range d.workers {
			if i >= len(w.socks) || w.socks[i] == nil {
				continue
			}
			st, err := w.socks[i].Stats()
			if err != nil {
				errs = append(errs, fmt.Errorf("af_xdp stats %s queue %d: %w", ifc.Name, w.q, err))
				continue
			}
			var limit uint64
			if m, err := d.steer.SteerMeter(ifc.base + uint32(w.q)); err == nil {
				limit = m.Rate
			}
			out = append(out, RingStats{
				SteerLimit:    limit,
				Interface:     ifc.Name,
				Queue:         w.q,
				RxDropped:     st.RxDropped,
				RxRingFull:    st.RxRingFull,
				FillRingEmpty: st.RxFillRingEmptyDescs,
				TxInvalid:     st.TxInvalidDescs,
				TxRingEmpty:   st.TxRingEmptyDescs,
			})
		}
	}
	return out, errors.Join(errs...)
}

// setBusyPoll asks for preferred busy polling on every socket
// (director.busy_poll). It is an optimisation: a kernel or device that
// refuses it (veth, no CAP_NET_ADMIN) costs a debug line, anything else a
// warning, and the sockets work as before either way.
func (d *Director) setBusyPoll() {
	for _, w := range d.workers {
		for i, s := range w.socks {
			if s == nil {
				continue
			}
			err := s.SetBusyPoll(0, 0)
			switch {
			case err == nil:
			case errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EPERM):
				d.log.Debug("busy polling not available", "iface", d.ifaces[i].Name, "queue", w.q, "err", err)
			default:
				d.log.Warn("busy polling", "iface", d.ifaces[i].Name, "queue", w.q, "err", err)
			}
		}
	}
}
