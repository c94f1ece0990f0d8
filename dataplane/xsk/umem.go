package xsk

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PacketHeadroom is XDP_PACKET_HEADROOM: the kernel leaves this many bytes
// (plus the UMEM headroom) in front of every received frame.
const PacketHeadroom = unix.XDP_PACKET_HEADROOM

// minFrameSize is XDP_UMEM_MIN_CHUNK_SIZE; aligned chunks may not exceed a page.
const minFrameSize = 2048

// maxUMEMBytes is a sanity bound (1 TiB), far above any real worker's needs.
const maxUMEMBytes = 1 << 40

// Desc is one RX or TX descriptor, laid out like struct xdp_desc so that ring
// entries are copied without conversion.
type Desc struct {
	Addr    uint64 // UMEM offset of the first byte of the frame
	Len     uint32 // frame length in bytes
	Options uint32 // XDP_PKT_CONTD etc.; 0 for single-buffer frames
}

// Desc must match struct xdp_desc byte for byte: this fails to compile otherwise.
var _ = [1]struct{}{}[unsafe.Sizeof(Desc{})-unsafe.Sizeof(unix.XDPDesc{})]

// UMEM is the packet buffer area shared with the kernel, cut into equal
// chunks ("frames") of FrameSize bytes. Addresses everywhere in this package
// are byte offsets into it.
type UMEM struct {
	mem       []byte
	frameSize int
	numFrames int
	headroom  int
	frameMask uint64

	mu      sync.Mutex
	sockets []*Socket // open sockets; sockets[0] is the one later sockets share through
	// Settings fixed by the first bind and inherited by every shared socket
	// (the kernel allows no bind flags with XDP_SHARED_UMEM).
	zeroCopy   bool
	needWakeup bool
}

// NewUMEM maps numFrames chunks of frameSize bytes of anonymous memory.
// frameSize must be a power of two between 2048 and the page size. The
// kernel pins the memory when the first socket registers it, which needs
// CAP_IPC_LOCK or enough RLIMIT_MEMLOCK.
func NewUMEM(numFrames, frameSize int) (*UMEM, error) {
	return NewUMEMWithHeadroom(numFrames, frameSize, 0)
}

// NewUMEMWithHeadroom is NewUMEM with extra per-frame headroom reserved by
// the kernel in front of received data, on top of PacketHeadroom.
func NewUMEMWithHeadroom(numFrames, frameSize, headroom int) (*UMEM, error) {
	page := os.Getpagesize()
	if frameSize < minFrameSize || frameSize > page || frameSize&(frameSize-1) != 0 {
		return nil, fmt.Errorf("xsk: frame size %d must be a power of two in [%d, %d]", frameSize, minFrameSize, page)
	}
	if numFrames <= 0 || uint64(numFrames) > maxUMEMBytes/uint64(frameSize) ||
		uint64(numFrames)*uint64(frameSize) > math.MaxInt {
		return nil, fmt.Errorf("xsk: frame count %d out of range", numFrames)
	}
	if headroom < 0 || headroom >= frameSize-PacketHeadroom {
		return nil, fmt.Errorf("xsk: headroom %d must be in [0, %d)", headroom, frameSize-PacketHeadroom)
	}
	mem, err := unix.Mmap(-1, 0, numFrames*frameSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("xsk: mmap umem of %d bytes: %w", numFrames*frameSize, err)
	}
	return &UMEM{
		mem:       mem,
		frameSize: frameSize,
		numFrames: numFrames,
		headroom:  headroom,
		frameMask: uint64(frameSize - 1),
	}, nil
}

// FrameSize is the chunk size in bytes.
func (u *UMEM) FrameSize() int { return u.frameSize }

// NumFrames is the number of chunks.
func (u *UMEM) NumFrames() int { return u.numFrames }

// Headroom is the UMEM headroom given at creation (not counting PacketHeadroom).
func (u *UMEM) Headroom() int { return u.headroom }

// RxDataOffset is where, inside a chunk, the kernel writes received frames:
// PacketHeadroom plus the UMEM headroom.
func (u *UMEM) RxDataOffset() uint64 { return uint64(PacketHeadroom + u.headroom) }

// FrameAddr is the base address of chunk i, for seeding a free list.
func (u *UMEM) FrameAddr(i int) uint64 { return uint64(i) * uint64(u.frameSize) }

// ChunkBase maps any address inside a chunk to the chunk's base address
// (completion addresses are the transmitted address, not the base).
func (u *UMEM) ChunkBase(addr uint64) uint64 { return addr &^ u.frameMask }

// Bytes returns the frame at addr as a slice into the UMEM, without copying
// or allocating. Its capacity ends at the chunk end, so a frame may grow in
// place up to there. It returns nil when the range is outside the UMEM or
// crosses a chunk boundary (which the kernel would reject anyway).
func (u *UMEM) Bytes(addr uint64, length uint32) []byte {
	chunkEnd := (addr | u.frameMask) + 1
	end := addr + uint64(length)
	if chunkEnd == 0 || end > chunkEnd || chunkEnd > uint64(len(u.mem)) {
		return nil
	}
	return u.mem[addr:end:chunkEnd]
}

// Chunk returns the base address and the whole chunk holding addr, for
// writing in front of a received frame (headroom) or building a new one.
// It returns (0, nil) when addr is outside the UMEM.
func (u *UMEM) Chunk(addr uint64) (base uint64, chunk []byte) {
	base = addr &^ u.frameMask
	end := base + uint64(u.frameSize)
	if end < base || end > uint64(len(u.mem)) {
		return 0, nil
	}
	return base, u.mem[base:end:end]
}

// Close closes every socket still using the UMEM, then unmaps it. Slices
// returned by Bytes and Chunk must not be used afterwards.
func (u *UMEM) Close() error {
	u.mu.Lock()
	socks := append([]*Socket(nil), u.sockets...)
	u.mu.Unlock()
	var errs []error
	for i := len(socks) - 1; i >= 0; i-- {
		errs = append(errs, socks[i].Close())
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mem != nil {
		if err := unix.Munmap(u.mem); err != nil {
			errs = append(errs, fmt.Errorf("xsk: munmap umem: %w", err))
		}
		u.mem = nil
	}
	return errors.Join(errs...)
}
