package dataplane

import (
	"context"
	"net/netip"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// ExpireTemplates removes, in every worker, the persistence templates that
// send clients of the service vip:port/proto to the real server dest, and
// returns how many there were: IPVS's expire_quiescent_template, for a
// server that was quiesced. Those clients' next connections are scheduled
// anew; their established connections stay. Each worker deletes its own
// between two batches (its table is never shared).
func (d *Director) ExpireTemplates(ctx context.Context, vip netip.Addr, port uint16, proto lvs.Proto, dest netip.AddrPort) (int, error) {
	return d.expireTemplates(ctx, d.state.Load().byKey[serviceKey{inet.AddrFromNetip(vip.Unmap()), port, proto}], dest)
}

func (d *Director) expireTemplates(ctx context.Context, svc *Service, dest netip.AddrPort) (int, error) {
	if svc == nil || svc.Persistence <= 0 {
		return 0, nil
	}
	id, found := uint32(0), false
	for _, dst := range svc.Dests {
		if dst.Addr.Netip() == dest.Addr().Unmap() && dst.Port == dest.Port() {
			id, found = dst.ID, true
			break
		}
	}
	if !found {
		return 0, nil
	}
	n := 0
	for _, w := range d.workers {
		var part int
		if err := w.request(ctx, func() { part = w.ct.DeleteTemplatesForDest(id) }); err != nil {
			return n, err
		}
		n += part
	}
	return n, nil
}
