package pktgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/bpf/percpu"
)

// Proto is what the generated frames carry.
type Proto int

const (
	// UDP datagrams whose payload fills the frame.
	UDP Proto = iota
	// TCPSyn segments: SYN with an MSS option, payload filling the frame.
	TCPSyn
)

func (p Proto) String() string {
	switch p {
	case UDP:
		return "udp"
	case TCPSyn:
		return "tcp-syn"
	}
	return fmt.Sprintf("Proto(%d)", int(p))
}

// ParseProto parses "udp" or "tcp-syn" (also "tcp", "syn").
func ParseProto(s string) (Proto, error) {
	switch s {
	case "udp":
		return UDP, nil
	case "tcp-syn", "tcp", "syn":
		return TCPSyn, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want udp or tcp-syn)", s)
}

const (
	// MaxDestinations is how many destinations one generator cycles through.
	MaxDestinations = 64
	// MinFrameSize is the smallest Ethernet frame without its FCS.
	MinFrameSize = 60
	// MaxFrameSize is the largest frame live-frames mode accepts: a page
	// less the XDP headroom (256) and the skb_shared_info tail (320).
	MaxFrameSize = 4096 - 256 - 320
	// DefaultSrcPortMin and DefaultSrcPorts give the source ports flows use.
	DefaultSrcPortMin = 1024
	DefaultSrcPorts   = 65536 - DefaultSrcPortMin

	// pacingSlice is the pacing granularity: the rate budget is handed out
	// per slice of about this length (longer for rates under one frame
	// per slice), so bursts last at most this long.
	pacingSlice = 100 * time.Microsecond

	tcpSynHeaderLen = 24 // TCP header with an MSS option, as generator.c writes it
)

// Config describes the traffic of a Generator.
type Config struct {
	// Ifindex is the interface the frames leave through. It must be in
	// the network namespace of the thread that calls Run.
	Ifindex int
	SrcMAC  net.HardwareAddr
	DstMAC  net.HardwareAddr
	// Src is the first source address; SrcCount consecutive addresses
	// (counting in the last 32 bits) are used, at least 1.
	Src      netip.Addr
	SrcCount uint32
	// SrcPortMin and SrcPorts give the source ports; zero values mean
	// DefaultSrcPortMin and DefaultSrcPorts.
	SrcPortMin uint16
	SrcPorts   uint32
	// Dsts are cycled through frame by frame; same family as Src.
	Dsts  []netip.AddrPort
	Proto Proto
	// Flows is the number of distinct flows (see the package doc for the
	// mapping); 0 means 1.
	Flows uint32
	// FrameSize is the frame length without FCS, MinFrameSize up to
	// MaxFrameSize and at least the headers.
	FrameSize int
	// Rate is the target rate in frames per second, paced inside the
	// program; 0 sends as fast as the CPU allows.
	Rate uint64
}

// HeaderLen is the length of the Ethernet, IP and transport headers of the
// frames cfg describes.
func (cfg Config) HeaderLen() int {
	n := 14 + 20
	if cfg.Src.Unmap().Is6() {
		n = 14 + 40
	}
	if cfg.Proto == TCPSyn {
		return n + tcpSynHeaderLen
	}
	return n + 8
}

// settings validates cfg and translates it for the program.
func (cfg *Config) settings() (generatorGenConfig, error) {
	var s generatorGenConfig
	if len(cfg.SrcMAC) != 6 || len(cfg.DstMAC) != 6 {
		return s, errors.New("source and destination MAC addresses are needed")
	}
	copy(s.SrcMac[:], cfg.SrcMAC)
	copy(s.DstMac[:], cfg.DstMAC)
	if !cfg.Src.IsValid() {
		return s, errors.New("no source address")
	}
	src := cfg.Src.Unmap()
	s.Family = 4
	if src.Is6() {
		s.Family = 6
	}
	s.SrcAddr = mapped(src)
	s.SrcCount = max(cfg.SrcCount, 1)
	if last := uint64(be32(s.SrcAddr[12:])) + uint64(s.SrcCount) - 1; last > math.MaxUint32 {
		return s, fmt.Errorf("source range of %d addresses from %v overflows the last 32 bits", s.SrcCount, src)
	}
	s.SportMin, s.SportCount = uint32(cfg.SrcPortMin), cfg.SrcPorts
	if s.SportMin == 0 {
		s.SportMin = DefaultSrcPortMin
	}
	if s.SportCount == 0 {
		s.SportCount = 65536 - s.SportMin
	}
	if s.SportMin+s.SportCount > 65536 {
		return s, fmt.Errorf("source ports %d+%d run past 65535", s.SportMin, s.SportCount)
	}
	if len(cfg.Dsts) == 0 || len(cfg.Dsts) > MaxDestinations {
		return s, fmt.Errorf("%d destinations: want 1 to %d", len(cfg.Dsts), MaxDestinations)
	}
	for i, d := range cfg.Dsts {
		a := d.Addr().Unmap()
		if a.Is4() != src.Is4() {
			return s, fmt.Errorf("destination %v and source %v are of different families", d, src)
		}
		if d.Port() == 0 {
			return s, fmt.Errorf("destination %v has no port", d)
		}
		s.Dsts[i].Addr = mapped(a)
		s.Dsts[i].Port = htons(d.Port())
	}
	s.DstCount = uint32(len(cfg.Dsts))
	s.Flows = max(cfg.Flows, 1)
	if uint64(s.Flows) > uint64(s.SrcCount)*uint64(s.SportCount) {
		return s, fmt.Errorf("%d flows need more than %d source addresses × %d source ports", s.Flows, s.SrcCount, s.SportCount)
	}
	switch cfg.Proto {
	case UDP:
		s.Proto = unix.IPPROTO_UDP
	case TCPSyn:
		s.Proto = unix.IPPROTO_TCP
	default:
		return s, fmt.Errorf("unknown protocol %v", cfg.Proto)
	}
	minSize := max(MinFrameSize, cfg.HeaderLen())
	if cfg.FrameSize < minSize || cfg.FrameSize > MaxFrameSize {
		return s, fmt.Errorf("frame size %d: want %d to %d bytes", cfg.FrameSize, minSize, MaxFrameSize)
	}
	s.FrameLen = uint16(cfg.FrameSize)
	s.SliceNs, s.PerSlice = pacing(cfg.Rate)
	return s, nil
}

// pacing returns a slice length and the frames allowed in it for rate
// frames per second; (0, 0) for no pacing.
func pacing(rate uint64) (sliceNs, perSlice uint64) {
	if rate == 0 {
		return 0, 0
	}
	perSlice = max(1, (rate*uint64(pacingSlice)+uint64(time.Second)-1)/uint64(time.Second))
	sliceNs = perSlice * uint64(time.Second) / rate
	return sliceNs, perSlice
}

// Stats are the outcomes of the program's runs.
type Stats struct {
	Elapsed      time.Duration
	Sent         uint64 // frames written and handed to the interface (XDP_TX)
	Paced        uint64 // runs dropped to keep to the rate
	OverLimit    uint64 // runs dropped after the frame budget was spent
	BadFrame     uint64 // runs dropped because the frame had the wrong length
	Unconfigured uint64 // runs dropped because no configuration was loaded
}

// SentRate is Sent per second of Elapsed.
func (s Stats) SentRate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds()
}

func (s Stats) sub(o Stats) Stats {
	return Stats{
		Elapsed:      s.Elapsed - o.Elapsed,
		Sent:         s.Sent - o.Sent,
		Paced:        s.Paced - o.Paced,
		OverLimit:    s.OverLimit - o.OverLimit,
		BadFrame:     s.BadFrame - o.BadFrame,
		Unconfigured: s.Unconfigured - o.Unconfigured,
	}
}

// Generator owns the loaded generator program and its maps.
type Generator struct {
	objs     generatorObjects
	cfg      Config
	settings generatorGenConfig
	frame    []byte // the template: zeros, the program writes everything
}

// New loads the generator program and configures it. Nothing is sent
// until Run.
func New(cfg Config) (*Generator, error) {
	settings, err := cfg.settings()
	if err != nil {
		return nil, fmt.Errorf("generator config: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	g := &Generator{cfg: cfg, settings: settings, frame: make([]byte, cfg.FrameSize)}
	if err := loadGeneratorObjects(&g.objs, nil); err != nil {
		return nil, loadError("generator", err)
	}
	if err := g.reset(0); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Program returns the generator's XDP program.
func (g *Generator) Program() *ebpf.Program { return g.objs.Generate }

// Config returns the configuration the generator was made with.
func (g *Generator) Config() Config { return g.cfg }

// Close frees the program and its maps.
func (g *Generator) Close() error {
	if err := g.objs.Close(); err != nil {
		return fmt.Errorf("close generator objects: %w", err)
	}
	return nil
}

// reset loads the settings and starts over from the first flow; with
// limit > 0, at most limit frames are sent from now on.
func (g *Generator) reset(limit uint64) error {
	s := g.settings
	if limit > 0 {
		s.Limited = 1
	}
	if err := g.objs.GenSettings.Update(uint32(0), &s, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("write generator settings: %w", err)
	}
	st := generatorGenState{Budget: limit}
	if err := g.objs.GenProgress.Update(uint32(0), &st, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("reset generator state: %w", err)
	}
	return nil
}

// budget returns the frames the program may still send when limited.
func (g *Generator) budget() (uint64, error) {
	var st generatorGenState
	if err := g.objs.GenProgress.Lookup(uint32(0), &st); err != nil {
		return 0, fmt.Errorf("read generator state: %w", err)
	}
	return st.Budget, nil
}

// Counters returns the program's counters, summed over CPUs, since it was
// loaded (Elapsed is zero).
func (g *Generator) Counters() (Stats, error) {
	r := percpu.NewReader[generatorCounterId](g.objs.GenCounters)
	s := Stats{
		Sent:         r.Sum(generatorCounterIdSent),
		Paced:        r.Sum(generatorCounterIdPaced),
		OverLimit:    r.Sum(generatorCounterIdOverLimit),
		BadFrame:     r.Sum(generatorCounterIdBadFrame),
		Unconfigured: r.Sum(generatorCounterIdUnconfigured),
	}
	if err := r.Err(); err != nil {
		return Stats{}, fmt.Errorf("generator counters: %w", err)
	}
	return s, nil
}

// RunOptions bound and observe a Run.
type RunOptions struct {
	// Count stops after this many frames were sent; 0: no bound.
	Count uint64
	// Duration stops after this long; 0: no bound. Without Count and
	// Duration, Run goes on until ctx is done.
	Duration time.Duration
	// Progress, if set, is called about every Interval (default 1 s) with
	// the stats since Run started, from a goroutine of Run's own, one call
	// at a time.
	Progress func(Stats)
	Interval time.Duration
}

// xdpMD is struct xdp_md, the context handed to BPF_PROG_RUN: live-frames
// mode wants data 0, data_end the frame length, and the interface the
// frames go out of as ingress_ifindex (XDP_TX sends back where a frame
// "arrived").
type xdpMD struct {
	Data, DataEnd, DataMeta uint32
	IngressIfindex          uint32
	RxQueueIndex            uint32
	EgressIfindex           uint32
}

// progRunAttr is the test member of union bpf_attr for BPF_PROG_TEST_RUN.
type progRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

const bpfProgTestRun = 10 // BPF_PROG_TEST_RUN

// liveBatch is the kernel's page-pool batch in live-frames mode: frames
// are set up and transmitted this many at a time (the kernel's maximum).
const liveBatch = 256

// Run generates traffic out of cfg.Ifindex until opts' bounds are reached
// or ctx is done, and returns what was sent. The frames are sent from the
// calling goroutine's thread, which Run locks and which must be in the
// interface's network namespace; set its CPU affinity beforehand (after
// runtime.LockOSThread) to keep generation on one CPU. One Run at a time
// per Generator.
//
// Run issues BPF_PROG_RUN itself rather than through ebpf.Program.Run:
// every call of it in live-frames mode sets up and tears down a page pool,
// which costs tens of milliseconds (an RCU grace period) during which
// nothing is sent, so Run makes one call with the largest repeat count and
// stops it with a signal (EINTR); Program.Run would restart an interrupted
// call from the beginning.
func (g *Generator) Run(ctx context.Context, opts RunOptions) (Stats, error) {
	if g.cfg.Ifindex <= 0 {
		return Stats{}, errors.New("run generator: no interface")
	}
	if err := g.reset(opts.Count); err != nil {
		return Stats{}, err
	}
	before, err := g.Counters()
	if err != nil {
		return Stats{}, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	md := xdpMD{DataEnd: uint32(len(g.frame)), IngressIfindex: uint32(g.cfg.Ifindex)}
	attr := progRunAttr{
		progFD:     uint32(g.objs.Generate.FD()),
		dataSizeIn: uint32(len(g.frame)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&g.frame[0]))),
		ctxSizeIn:  uint32(unsafe.Sizeof(md)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&md))),
		flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		batchSize:  liveBatch,
	}
	start := time.Now()
	// end is when the watcher saw the run finish; the call itself returns
	// only after the kernel has torn its page pool down (tens of
	// milliseconds), which is no sending time.
	var end atomic.Int64
	stats := func() (Stats, error) {
		now, err := g.Counters()
		if err != nil {
			return Stats{}, err
		}
		now.Elapsed = time.Since(start)
		if e := end.Load(); e != 0 {
			now.Elapsed = time.Duration(e - start.UnixNano())
		}
		return now.sub(before), nil
	}

	// The watcher decides when to stop, interrupts the running call, and
	// reports progress.
	var stopping atomic.Bool
	done := make(chan struct{})
	watcherDone := make(chan error, 1)
	tid := unix.Gettid()
	go func() { watcherDone <- g.watch(ctx, opts, start, tid, &stopping, &end, done, stats) }()

	var runErr error
	for !stopping.Load() {
		attr.repeat = math.MaxUint32
		if opts.Count > 0 && g.cfg.Rate == 0 {
			// Unpaced, every run sends: ask for no more than is left,
			// so the call ends by itself with the last frame.
			left, err := g.budget()
			if err != nil {
				runErr = err
				break
			}
			if left == 0 {
				break
			}
			attr.repeat = uint32(min(left, math.MaxUint32))
		}
		_, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if errno != 0 && errno != unix.EINTR {
			runErr = fmt.Errorf("run generator (BPF_PROG_RUN, live frames): %w", errno)
			break
		}
	}
	runtime.KeepAlive(g.frame)
	runtime.KeepAlive(&md)
	close(done)
	if err := <-watcherDone; err != nil && runErr == nil {
		runErr = err
	}
	s, err := stats()
	if runErr == nil {
		runErr = err
	}
	return s, runErr
}

// watch runs beside Run's call: it reports progress and, once ctx is done,
// the duration is over or the frame budget is spent, records the end time,
// sets stopping and signals the sending thread until Run's loop has ended
// (done closed). A signal that arrives just before the thread enters the
// call is missed, hence the repetition.
func (g *Generator) watch(ctx context.Context, opts RunOptions, start time.Time, tid int,
	stopping *atomic.Bool, end *atomic.Int64, done <-chan struct{}, stats func() (Stats, error)) error {
	const tick = time.Millisecond
	interval := opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	nextReport := start.Add(interval)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	pid := unix.Getpid()
	var err error
	for {
		select {
		case <-done:
			return err
		case <-ctx.Done():
		case <-ticker.C:
		}
		if !stopping.Load() {
			now := time.Now()
			stop := ctx.Err() != nil || (opts.Duration > 0 && now.Sub(start) >= opts.Duration)
			if !stop && opts.Count > 0 {
				left, berr := g.budget()
				stop = berr != nil || left == 0
				if berr != nil {
					err = berr
				}
			}
			if stop {
				end.Store(now.UnixNano())
				stopping.Store(true)
			} else if opts.Progress != nil && now.After(nextReport) {
				if s, serr := stats(); serr == nil {
					opts.Progress(s)
				}
				nextReport = nextReport.Add(interval)
				if time.Now().After(nextReport) {
					nextReport = time.Now().Add(interval)
				}
			}
		}
		if stopping.Load() {
			// SIGURG: the Go runtime's own preemption signal, which
			// it handles and otherwise ignores.
			unix.Tgkill(pid, tid, unix.SIGURG)
		}
	}
}

// loadError wraps an object load failure; when the verifier rejected a
// program, its full log is appended.
func loadError(what string, err error) error {
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return fmt.Errorf("load %s objects: %w\nverifier log:\n%+v", what, err, verr)
	}
	return fmt.Errorf("load %s objects: %w", what, err)
}

// mapped returns the 16-byte form of a, IPv4-mapped for IPv4.
func mapped(a netip.Addr) [16]byte { return a.As16() }

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// htons returns the uint16 whose in-memory bytes on this (little-endian)
// host are v in network order, as the program's __be16 fields want.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
