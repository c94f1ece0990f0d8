package xsk

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultRingSize is used for every ring size left zero in Options.
const DefaultRingSize = 2048

// BindMode selects copy or zero-copy operation.
type BindMode uint8

const (
	// ModeAuto lets the kernel use zero-copy when the driver supports it and
	// copy mode otherwise.
	ModeAuto BindMode = iota
	// ModeCopy forces copy mode (XDP_COPY).
	ModeCopy
	// ModeZeroCopy forces zero-copy (XDP_ZEROCOPY); binding fails where the
	// driver cannot do it.
	ModeZeroCopy
)

func (m BindMode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeCopy:
		return "copy"
	case ModeZeroCopy:
		return "zerocopy"
	}
	return fmt.Sprintf("BindMode(%d)", uint8(m))
}

// Options configure a socket. Ring sizes are entry counts, powers of two;
// zero means DefaultRingSize.
//
// Mode and NeedWakeup are properties of the UMEM's kernel buffer pool: the
// first socket of a UMEM sets them, and later sockets inherit them (the kernel
// accepts no bind flags with XDP_SHARED_UMEM). A later socket asking for a
// different setting gets an error rather than silently another behaviour;
// ModeAuto always matches. Once the first socket is bound in zero-copy mode,
// later sockets are bound in zero-copy too and fail on devices that cannot do
// it: give the first socket ModeCopy when the worker mixes such devices.
type Options struct {
	RxSize   int
	TxSize   int
	FillSize int
	CompSize int
	Mode     BindMode
	// NeedWakeup sets XDP_USE_NEED_WAKEUP: the kernel tells through ring
	// flags when a syscall is needed, so a busy socket makes none.
	NeedWakeup bool
}

func (o *Options) normalize() error {
	for _, p := range []struct {
		name string
		v    *int
	}{{"rx", &o.RxSize}, {"tx", &o.TxSize}, {"fill", &o.FillSize}, {"completion", &o.CompSize}} {
		if *p.v == 0 {
			*p.v = DefaultRingSize
		}
		if *p.v < 0 || *p.v > 1<<24 || *p.v&(*p.v-1) != 0 {
			return fmt.Errorf("xsk: %s ring size %d is not a power of two in [1, 2^24]", p.name, *p.v)
		}
	}
	if o.Mode > ModeZeroCopy {
		return fmt.Errorf("xsk: unknown bind mode %d", o.Mode)
	}
	return nil
}

// Socket is one AF_XDP socket bound to an interface queue. See the package
// documentation for the frame lifecycle and concurrency rules.
type Socket struct {
	fd      int
	umem    *UMEM
	ifindex int
	queue   int

	rx   ring[Desc]
	tx   ring[Desc]
	fill ring[uint64]
	comp ring[uint64]

	needWakeup bool
	zeroCopy   bool
	maxKicks   int // bound on sendto calls per Transmit, see kickTx
}

// NewSocket creates a socket on queue of the interface ifindex, using the
// UMEM u. The first socket of a UMEM registers it with the kernel; later ones
// bind with XDP_SHARED_UMEM, each with its own fill and completion rings, so
// they may sit on other interfaces or queues. Two sockets of one UMEM on the
// same interface and queue are refused.
//
// The socket must also be put into the XDP program's XSKMAP (by FD) before it
// receives anything.
func NewSocket(u *UMEM, ifindex, queue int, o Options) (*Socket, error) {
	if u == nil {
		return nil, errors.New("xsk: nil umem")
	}
	if ifindex <= 0 {
		return nil, fmt.Errorf("xsk: bad ifindex %d", ifindex)
	}
	if queue < 0 || queue > 1<<16 {
		return nil, fmt.Errorf("xsk: bad queue %d", queue)
	}
	if err := o.normalize(); err != nil {
		return nil, err
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	shareWith, err := u.shareFor(ifindex, queue, &o)
	if err != nil {
		return nil, err
	}

	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("xsk: socket: %w", err)
	}
	s := &Socket{fd: fd, umem: u, ifindex: ifindex, queue: queue}
	ok := false
	defer func() {
		if !ok {
			_ = s.release()
		}
	}()
	if shareWith == nil {
		if err := u.register(fd); err != nil {
			return nil, err
		}
	}
	if err := s.setupRings(&o); err != nil {
		return nil, err
	}
	if err := s.bind(shareWith, &o); err != nil {
		return nil, err
	}
	if err := s.readMode(shareWith == nil, &o); err != nil {
		return nil, err
	}
	// In copy mode one sendto transmits at most 32 frames (the kernel's
	// default TX budget) and returns EAGAIN when more are queued; allow
	// enough calls to drain a full ring.
	s.maxKicks = o.TxSize/32 + 1

	u.sockets = append(u.sockets, s)
	ok = true
	return s, nil
}

// shareFor returns the socket whose UMEM registration a new socket on
// ifindex/queue with options o shares (the first one), or nil for the
// first socket, which registers it. A socket that shares must agree with
// the first on need-wakeup and mode, and not be on its device and queue.
// Called with u.mu held.
func (u *UMEM) shareFor(ifindex, queue int, o *Options) (*Socket, error) {
	if u.mem == nil {
		return nil, errors.New("xsk: umem is closed")
	}
	if len(u.sockets) == 0 {
		return nil, nil
	}
	if o.NeedWakeup != u.needWakeup {
		return nil, fmt.Errorf("xsk: need-wakeup %v differs from the umem's first socket (%v)", o.NeedWakeup, u.needWakeup)
	}
	if (o.Mode == ModeCopy && u.zeroCopy) || (o.Mode == ModeZeroCopy && !u.zeroCopy) {
		return nil, fmt.Errorf("xsk: mode %v differs from the umem's first socket (zerocopy=%v)", o.Mode, u.zeroCopy)
	}
	for _, other := range u.sockets {
		if other.ifindex == ifindex && other.queue == queue {
			return nil, fmt.Errorf("xsk: umem already has a socket on ifindex %d queue %d", ifindex, queue)
		}
	}
	return u.sockets[0], nil
}

// register registers the UMEM's memory with socket fd, the first of the
// UMEM's sockets.
func (u *UMEM) register(fd int) error {
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&u.mem[0]))),
		Len:      uint64(len(u.mem)),
		Size:     uint32(u.frameSize),
		Headroom: uint32(u.headroom),
	}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fmt.Errorf("xsk: register umem: %w", err)
	}
	return nil
}

// setupRings sizes the socket's four rings and maps them.
func (s *Socket) setupRings(o *Options) error {
	// Every socket gets its own fill and completion rings: a shared socket
	// on another device or queue needs them (one pair per buffer pool), and
	// the same-device-and-queue case, which would forbid them, is refused
	// by shareFor.
	for _, opt := range []struct {
		name string
		opt  int
		size int
	}{
		{"fill", unix.XDP_UMEM_FILL_RING, o.FillSize},
		{"completion", unix.XDP_UMEM_COMPLETION_RING, o.CompSize},
		{"rx", unix.XDP_RX_RING, o.RxSize},
		{"tx", unix.XDP_TX_RING, o.TxSize},
	} {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_XDP, opt.opt, opt.size); err != nil {
			return fmt.Errorf("xsk: set %s ring size %d: %w", opt.name, opt.size, err)
		}
	}

	var off unix.XDPMmapOffsets
	if err := getsockopt(s.fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return fmt.Errorf("xsk: get mmap offsets: %w", err)
	}
	if err := mmapRing(&s.fill, s.fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, uint32(o.FillSize), "fill"); err != nil {
		return err
	}
	if err := mmapRing(&s.comp, s.fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, uint32(o.CompSize), "completion"); err != nil {
		return err
	}
	if err := mmapRing(&s.rx, s.fd, unix.XDP_PGOFF_RX_RING, off.Rx, uint32(o.RxSize), "rx"); err != nil {
		return err
	}
	return mmapRing(&s.tx, s.fd, unix.XDP_PGOFF_TX_RING, off.Tx, uint32(o.TxSize), "tx")
}

// bind binds the socket to its device and queue: sharing shareWith's UMEM,
// or, for the first socket, in the mode o asks for.
func (s *Socket) bind(shareWith *Socket, o *Options) error {
	sa := &unix.SockaddrXDP{Ifindex: uint32(s.ifindex), QueueID: uint32(s.queue)}
	var err error
	if shareWith != nil {
		sa.Flags = unix.XDP_SHARED_UMEM
		sa.SharedUmemFD = uint32(shareWith.fd)
		err = unix.Bind(s.fd, sa)
	} else {
		var wake uint16
		if o.NeedWakeup {
			wake = unix.XDP_USE_NEED_WAKEUP
		}
		switch o.Mode {
		case ModeCopy:
			sa.Flags = unix.XDP_COPY | wake
		case ModeZeroCopy:
			sa.Flags = unix.XDP_ZEROCOPY | wake
		default:
			sa.Flags = wake
		}
		err = unix.Bind(s.fd, sa)
		if err != nil && o.Mode == ModeAuto {
			// Without flags the kernel already falls back to copy mode
			// when the driver cannot do zero-copy; this retry covers a
			// driver whose zero-copy setup fails in a way the kernel
			// reports. A failed bind leaves the socket unbound with its
			// rings, so binding again is allowed.
			sa.Flags = unix.XDP_COPY | wake
			if unix.Bind(s.fd, sa) == nil {
				err = nil
			}
		}
	}
	if err != nil {
		return fmt.Errorf("xsk: bind to ifindex %d queue %d: %w", s.ifindex, s.queue, err)
	}
	return nil
}

// readMode learns from the kernel whether the bound socket runs zero-copy;
// the first socket of the UMEM sets the mode and need-wakeup its sharers
// must agree with.
func (s *Socket) readMode(first bool, o *Options) error {
	var xo struct{ Flags uint32 } // struct xdp_options
	if err := getsockopt(s.fd, unix.XDP_OPTIONS, unsafe.Pointer(&xo), unsafe.Sizeof(xo)); err != nil {
		return fmt.Errorf("xsk: get options: %w", err)
	}
	s.zeroCopy = xo.Flags&unix.XDP_OPTIONS_ZEROCOPY != 0
	u := s.umem
	if first {
		u.zeroCopy = s.zeroCopy
		u.needWakeup = o.NeedWakeup
	}
	s.needWakeup = u.needWakeup
	return nil
}

// FD is the socket's file descriptor, for the XSKMAP and for poll.
func (s *Socket) FD() int { return s.fd }

// Ifindex is the interface the socket is bound to.
func (s *Socket) Ifindex() int { return s.ifindex }

// Queue is the queue index the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// UMEM is the socket's packet buffer area.
func (s *Socket) UMEM() *UMEM { return s.umem }

// ZeroCopy reports whether the kernel bound the socket in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// NeedWakeup reports whether the socket uses XDP_USE_NEED_WAKEUP.
func (s *Socket) NeedWakeup() bool { return s.needWakeup }

// Fill gives chunks to the kernel for receiving, returning how many of addrs
// fit in the fill ring (a prefix of addrs); the rest stay the caller's.
// Addresses are chunk bases (the kernel rounds any other address down).
func (s *Socket) Fill(addrs []uint64) int { return s.fill.produce(addrs) }

// FillFree is the number of free slots in the fill ring.
func (s *Socket) FillFree() int {
	if s.fill.consumer == nil {
		return 0
	}
	return int(s.fill.freeSlots(s.fill.size))
}

// Receive moves up to len(descs) received frames from the RX ring into descs
// and returns their count. The frames belong to the caller from then on.
func (s *Socket) Receive(descs []Desc) int { return s.rx.consume(descs) }

// Transmit queues as many descs as the TX ring has room for (a prefix of
// descs) and returns their count; from then on those frames belong to the
// kernel until Complete returns them. It then kicks the kernel with sendto
// when needed: always when need-wakeup is off, only when the TX ring asks
// for it otherwise. EAGAIN, EBUSY and ENOBUFS from the kick mean "try again
// later" and are not errors. Any other errno is returned as a unix.Errno
// (not wrapped, so that a dead link does not cost an allocation per call);
// the frames counted in n stay queued either way.
//
// In copy mode the kernel sends at most 32 frames per sendto, so Transmit
// kicks again while that makes progress and returns with the ring drained
// unless the device or the completion ring pushes back.
//
// Transmit with no descs just kicks out frames still waiting in the ring.
func (s *Socket) Transmit(descs []Desc) (int, error) {
	n := s.tx.produce(descs)
	return n, s.kickTx()
}

// Flush kicks the kernel to send frames still waiting in the TX ring, with
// the same rules and errors as Transmit.
func (s *Socket) Flush() error { return s.kickTx() }

// TxPending is the number of frames in the TX ring the kernel has not taken yet.
func (s *Socket) TxPending() int {
	if s.tx.consumer == nil {
		return 0
	}
	return int(s.tx.cachedProd - s.tx.consumer.Load())
}

func (s *Socket) kickTx() error {
	if s.tx.consumer == nil {
		return unix.EBADF
	}
	for range s.maxKicks {
		before := s.tx.consumer.Load()
		if before == s.tx.cachedProd {
			return nil // the kernel has taken everything
		}
		if s.needWakeup && !s.tx.needWakeup() {
			return nil // the driver is running and will pick the frames up
		}
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0, unix.EAGAIN:
			// Copy mode transmits synchronously, at most 32 frames per
			// call (the kernel's default TX budget), answering EAGAIN
			// when more are queued. Go round while that makes progress;
			// EAGAIN without progress means a full completion ring or a
			// busy device, and zero-copy mode only wakes the driver.
			if !s.zeroCopy && s.tx.consumer.Load() != before {
				continue
			}
			return nil
		case unix.EBUSY, unix.ENOBUFS, unix.EINTR:
			return nil
		default:
			return errno
		}
	}
	return nil
}

// Complete moves up to len(addrs) completed TX frames into addrs, as chunk
// base addresses ready for reuse, and returns their count.
//
// The kernel reports the transmitted Desc.Addr, which may lie inside the
// chunk; worse, Linux 6.18 in copy mode clears bit 0 of it (it tags the
// address it keeps in the skb with that bit), so the raw value cannot be
// matched against what was sent. Only the chunk is meaningful, and that is
// what Complete returns.
func (s *Socket) Complete(addrs []uint64) int {
	n := s.comp.consume(addrs)
	mask := ^s.umem.frameMask
	for i := range addrs[:n] {
		addrs[i] &= mask
	}
	return n
}

// NeedFillWakeup reports whether the kernel asks for a Wakeup before it
// takes more fill ring entries (only with need-wakeup on).
func (s *Socket) NeedFillWakeup() bool { return s.needWakeup && s.fill.needWakeup() }

// Wakeup kicks the kernel's RX processing with a non-blocking recvfrom, for
// when NeedFillWakeup reports true (a Poller.Wait does the same). Like
// Transmit it treats EAGAIN, EBUSY and ENOBUFS as success and returns any
// other errno unwrapped.
func (s *Socket) Wakeup() error {
	_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.EINTR:
		return nil
	}
	return errno
}

// Busy-poll defaults, those the kernel documentation suggests for AF_XDP
// (Documentation/networking/napi.rst): spin up to 20 us per syscall for
// frames, and let one busy poll process as many as NAPI's usual weight.
const (
	DefaultBusyPollTimeout = 20 * time.Microsecond
	DefaultBusyPollBudget  = 64
)

// SetBusyPoll turns on preferred busy polling for the socket:
// SO_PREFER_BUSY_POLL, SO_BUSY_POLL (timeout, rounded to microseconds;
// 0: DefaultBusyPollTimeout) and SO_BUSY_POLL_BUDGET (0:
// DefaultBusyPollBudget). The socket's syscalls (poll, recvfrom, sendto)
// then run the device's NAPI loop themselves, and with the device's
// napi_defer_hard_irqs and gro_flush_timeout set the kernel leaves the
// queue to them instead of interrupts, which keeps a loaded queue from
// spending its time in softirq while the receive ring overflows.
//
// It tries all three options and returns what failed, each error wrapping
// the errno: ENOPROTOOPT where the kernel lacks an option, EPERM where
// raising SO_BUSY_POLL or the budget needs CAP_NET_ADMIN. Callers usually
// treat those as "not available here" (veth, for instance).
func (s *Socket) SetBusyPoll(timeout time.Duration, budget int) error {
	if timeout <= 0 {
		timeout = DefaultBusyPollTimeout
	}
	if budget <= 0 {
		budget = DefaultBusyPollBudget
	}
	var errs []error
	for _, o := range []struct {
		name string
		opt  int
		val  int
	}{
		{"SO_PREFER_BUSY_POLL", unix.SO_PREFER_BUSY_POLL, 1},
		{"SO_BUSY_POLL", unix.SO_BUSY_POLL, int(max(timeout/time.Microsecond, 1))},
		{"SO_BUSY_POLL_BUDGET", unix.SO_BUSY_POLL_BUDGET, budget},
	} {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, o.opt, o.val); err != nil {
			errs = append(errs, fmt.Errorf("xsk: set %s %d: %w", o.name, o.val, err))
		}
	}
	return errors.Join(errs...)
}

// Stats are the kernel's XDP_STATISTICS for the socket plus samples of the
// ring indices.
type Stats struct {
	RxDropped            uint64 // frames dropped for want of a fill ring entry or too long
	RxInvalidDescs       uint64
	TxInvalidDescs       uint64 // TX descriptors the kernel rejected (bad addr/len)
	RxRingFull           uint64 // frames dropped because the RX ring was full
	RxFillRingEmptyDescs uint64 // times the kernel found the fill ring empty
	TxRingEmptyDescs     uint64

	Rx, Tx, Fill, Comp RingCounters
}

// Stats reads the kernel statistics and the ring indices. It may be called
// from another goroutine than the one using the socket, but not after Close.
func (s *Socket) Stats() (Stats, error) {
	var ks unix.XDPStatistics
	if err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&ks), unsafe.Sizeof(ks)); err != nil {
		return Stats{}, err
	}
	return Stats{
		RxDropped:            ks.Rx_dropped,
		RxInvalidDescs:       ks.Rx_invalid_descs,
		TxInvalidDescs:       ks.Tx_invalid_descs,
		RxRingFull:           ks.Rx_ring_full,
		RxFillRingEmptyDescs: ks.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     ks.Tx_ring_empty_descs,
		Rx:                   s.rx.counters(),
		Tx:                   s.tx.counters(),
		Fill:                 s.fill.counters(),
		Comp:                 s.comp.counters(),
	}, nil
}

// Close unmaps the rings and closes the socket; the kernel drops it from any
// XSKMAP. Frames still in its rings are lost to the caller's free list
// accounting (the worker should treat them as freed). Close is idempotent.
func (s *Socket) Close() error {
	u := s.umem
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, other := range u.sockets {
		if other == s {
			u.sockets = append(u.sockets[:i], u.sockets[i+1:]...)
			break
		}
	}
	return s.release()
}

// release undoes whatever part of NewSocket succeeded.
func (s *Socket) release() error {
	if s.fd < 0 {
		return nil
	}
	errs := []error{s.rx.unmap(), s.tx.unmap(), s.fill.unmap(), s.comp.unmap()}
	if err := unix.Close(s.fd); err != nil {
		errs = append(errs, fmt.Errorf("xsk: close: %w", err))
	}
	s.fd = -1
	return errors.Join(errs...)
}

func setsockopt(fd, opt int, val unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(val), size, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// getsockopt fills the struct at val. It is used on the Stats path too, so it
// keeps the length word on the stack and allocates nothing.
func getsockopt(fd, opt int, val unsafe.Pointer, size uintptr) error {
	n := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(val), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
