package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/govs/govs/bpf/percpu"
	"github.com/govs/govs/inet"
)

// DecapCounters are the decap program's packet counters summed over CPUs.
// Every packet on an attached interface adds one to exactly one of them.
type DecapCounters struct {
	Decapsulated uint64 // outer header stripped
	NotOurs      uint64 // not a tunnel packet to a registered VIP: passed as is
	Malformed    uint64 // truncated or inconsistent: passed as is
	Fragmented   uint64 // fragmented outer packet: passed as is, for the kernel to reassemble
	AdjustFailed uint64 // the kernel refused to move the packet start: passed as is
}

// Decap owns the loaded decap program, which a real server of a tunnel
// (LVS-TUN) service runs instead of an ipip / ip6_tunnel device.
type Decap struct {
	objs     decapObjects
	attached attachments
}

// LoadDecap loads the decap program and creates its maps. Nothing is
// attached yet.
func LoadDecap() (*Decap, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	d := &Decap{}
	if err := loadDecapObjects(&d.objs, nil); err != nil {
		return nil, loadError("decap", err)
	}
	return d, nil
}

// Program returns the decap XDP program.
func (d *Decap) Program() *ebpf.Program { return d.objs.Decap }

// Attach attaches the program to an interface and returns the mode in use.
func (d *Decap) Attach(ifindex int, mode Mode) (Mode, error) {
	return d.attached.attach(d.objs.Decap, ifindex, mode)
}

// Detach removes the program from an interface it was attached to.
func (d *Decap) Detach(ifindex int) error {
	return d.attached.detach(ifindex)
}

// AddVIP decapsulates tunnel packets whose inner destination is vip.
func (d *Decap) AddVIP(vip inet.Addr) error {
	if vip.IsZero() {
		return errors.New("add decap vip: no address")
	}
	if err := d.objs.DecapVips.Update(vip, uint32(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("add decap vip %v: %w", vip, err)
	}
	return nil
}

// DelVIP stops decapsulating packets to vip.
func (d *Decap) DelVIP(vip inet.Addr) error {
	if err := d.objs.DecapVips.Delete(vip); err != nil {
		return fmt.Errorf("delete decap vip %v: %w", vip, err)
	}
	return nil
}

// Counters returns the packet counters summed over all CPUs.
func (d *Decap) Counters() (DecapCounters, error) {
	r := percpu.NewReader[decapCounterId](d.objs.DecapCounters)
	c := DecapCounters{
		Decapsulated: r.Sum(decapCounterIdDecapsulated),
		NotOurs:      r.Sum(decapCounterIdNotOurs),
		Malformed:    r.Sum(decapCounterIdMalformed),
		Fragmented:   r.Sum(decapCounterIdFragmented),
		AdjustFailed: r.Sum(decapCounterIdAdjustFailed),
	}
	if err := r.Err(); err != nil {
		return DecapCounters{}, fmt.Errorf("decap counters: %w", err)
	}
	return c, nil
}

// Close detaches the program from every interface and frees the program
// and its maps.
func (d *Decap) Close() error {
	detachErr := d.attached.detachAll()
	if err := d.objs.Close(); err != nil {
		return errors.Join(detachErr, fmt.Errorf("close decap objects: %w", err))
	}
	return detachErr
}
