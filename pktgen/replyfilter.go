package pktgen

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/govs/govs/bpf/percpu"
)

// ReplyFilter is an XDP program for the generator's own interface that
// drops IPv4 frames addressed into one prefix and counts them: the answers
// to a flood from spoofed sources. On a real network those answers go
// wherever the spoofed addresses are routed, not back to the machine that
// sent the flood; in a namespace topology they all come back over the one
// veth, and at millions per second the receiving kernel would spend a CPU
// refusing them and its receive ring would drop the answers of legitimate
// connections made from the same namespace.
//
// The program is a few instructions built in Go (no C object), so that
// it needs no regeneration.
type ReplyFilter struct {
	prog    *ebpf.Program
	counter *ebpf.Map
	links   []link.Link
}

// LoadReplyFilter loads a filter that drops IPv4 frames whose destination
// is in p.
func LoadReplyFilter(p netip.Prefix) (*ReplyFilter, error) {
	if !p.Addr().Is4() {
		return nil, fmt.Errorf("reply filter: %v is not an IPv4 prefix", p)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	counter, err := ebpf.NewMap(&ebpf.MapSpec{Name: "reply_dropped", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("reply filter counter: %w", err)
	}
	// The destination address as the program loads it: a 32-bit word
	// read from the frame on this little-endian host.
	b := p.Masked().Addr().As4()
	want := int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	var mask uint32
	if bits := p.Bits(); bits > 0 {
		be := ^uint32(0) << (32 - bits)
		mask = be>>24 | (be>>16&0xff)<<8 | (be>>8&0xff)<<16 | (be&0xff)<<24
	}
	const ethIPDst = 14 + 16
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "reply_filter", Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
			asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 14+20),
			asm.JGT.Reg(asm.R4, asm.R3, "pass"),
			asm.LoadMem(asm.R5, asm.R2, 12, asm.Half), // EtherType
			asm.JNE.Imm(asm.R5, 0x0008, "pass"),       // ETH_P_IP in network order
			asm.LoadMem(asm.R5, asm.R2, ethIPDst, asm.Word),
			asm.And.Imm32(asm.R5, int32(mask)),
			asm.JNE.Imm32(asm.R5, want, "pass"),
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, counter.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "drop"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"), // XDP_DROP
			asm.Return(),
			asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS
			asm.Return(),
		},
	})
	if err != nil {
		counter.Close()
		return nil, loadError("reply filter", err)
	}
	return &ReplyFilter{prog: prog, counter: counter}, nil
}

// Program returns the filter's XDP program.
func (f *ReplyFilter) Program() *ebpf.Program { return f.prog }

// Attach attaches the filter to an interface of the calling thread's
// network namespace, in driver mode (a veth has it).
func (f *ReplyFilter) Attach(ifindex int) error {
	l, err := link.AttachXDP(link.XDPOptions{Program: f.prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		return fmt.Errorf("attach reply filter to ifindex %d: %w", ifindex, err)
	}
	f.links = append(f.links, l)
	return nil
}

// Dropped returns the frames dropped so far, summed over CPUs.
func (f *ReplyFilter) Dropped() (uint64, error) {
	n, err := percpu.Sum(f.counter, uint32(0))
	if err != nil {
		return 0, fmt.Errorf("reply filter: %w", err)
	}
	return n, nil
}

// Close detaches the filter and frees it.
func (f *ReplyFilter) Close() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	f.links = nil
	errs = append(errs, f.prog.Close(), f.counter.Close())
	return errors.Join(errs...)
}
