package dataplane

import (
	"context"
	"net/netip"
	"time"

	"github.com/govs/govs/conntrack"
)

// request runs f on the worker between two batches and waits for it. A
// worker asleep in poll(2) is woken, not left to its idle timeout.
func (w *worker) request(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case w.reqs <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	if w.wk != nil {
		w.wk.wake()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// listSlice is how many slots of its table a worker lists per request: a
// listing of a million connections (govsadm -Lnc) holds the worker for a
// few milliseconds at a time between its batches, not for the seconds the
// whole table takes (a fast-path connection's expiry costs two lookups).
const listSlice = 4096

// listConns lists the worker's live connections, listSlice slots per
// request: a connection made or removed meanwhile may or may not be
// listed, as in IPVS's listing, which locks one hash bucket at a time.
func (w *worker) listConns(ctx context.Context) ([]Conn, error) {
	var out []Conn
	for from := 0; from < w.ct.Cap(); from += listSlice {
		if err := w.request(ctx, func() { out = w.appendConns(out, from, listSlice) }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendConns appends the live connections of n slots from slot from on.
func (w *worker) appendConns(out []Conn, from, n int) []Conn {
	now := nanotime()
	st := w.d.state.Load()
	w.ct.WalkSlots(from, min(n, w.ct.Cap()-from), func(c *conntrack.Conn) {
		w.ct.Touch(c, w.lastSeen(c)) // fast-path traffic
		if c.Expires <= now {
			return
		}
		conn := Conn{
			Proto:   c.Orig.Proto,
			State:   c.State.String(),
			Expires: time.Duration(c.Expires - now),
			Client:  netip.AddrPortFrom(c.Orig.Src.Netip(), c.Orig.SrcPort),
			Virtual: netip.AddrPortFrom(c.Orig.Dst.Netip(), c.Orig.DstPort),
		}
		if dst := st.dest(c.Dest); dst != nil {
			conn.Dest = netip.AddrPortFrom(dst.Addr.Netip(), destPort(dst, c.Orig.DstPort))
		}
		if !c.LAddr.IsZero() {
			conn.Local = netip.AddrPortFrom(c.LAddr.Netip(), c.LPort)
		}
		out = append(out, conn)
	})
	return out
}

func (w *worker) setTimeouts(t conntrack.Timeouts) {
	select {
	case w.reqs <- func() { w.ct.SetTimeouts(t); w.d.invalidateFlows() }:
	default:
		// Busy with another request: retry from a goroutine.
		go w.request(context.Background(), func() { w.ct.SetTimeouts(t); w.d.invalidateFlows() })
	}
}

func (w *worker) listTemplates(ctx context.Context) ([]Template, error) {
	var out []Template
	err := w.request(ctx, func() {
		now := nanotime()
		st := w.d.state.Load()
		w.ct.WalkTemplates(func(k *conntrack.TemplateKey, dest uint32, expires int64, conns int) bool {
			if expires <= now && conns == 0 {
				return true
			}
			t := Template{
				Proto:   k.Proto,
				Client:  k.Client.Netip(),
				Virtual: netip.AddrPortFrom(k.VIP.Netip(), k.VPort),
				Expires: time.Duration(max(expires-now, 0)),
				Conns:   conns,
			}
			if dst := st.dest(dest); dst != nil {
				t.Dest = netip.AddrPortFrom(dst.Addr.Netip(), dst.Port)
			}
			out = append(out, t)
			return true
		})
	})
	return out, err
}
