package xsk

import (
	"math/rand/v2"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fakeRing lays a ring over ordinary memory with the kernel's layout style
// (indices on separate cache lines), so the index arithmetic can be tested
// without a socket. The test plays the kernel on the other side.
func fakeRing[T Desc | uint64](t testing.TB, size uint32) *ring[T] {
	t.Helper()
	var zero T
	off := unix.XDPRingOffset{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}
	mem := make([]byte, 192+int(size)*int(unsafe.Sizeof(zero)))
	r := new(ring[T])
	if err := initRing(r, mem, off, size); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDescLayout(t *testing.T) {
	if unsafe.Sizeof(Desc{}) != unsafe.Sizeof(unix.XDPDesc{}) ||
		unsafe.Offsetof(Desc{}.Len) != unsafe.Offsetof(unix.XDPDesc{}.Len) ||
		unsafe.Offsetof(Desc{}.Options) != unsafe.Offsetof(unix.XDPDesc{}.Options) {
		t.Fatal("Desc does not match struct xdp_desc")
	}
}

func TestInitRingRejectsBadLayout(t *testing.T) {
	r := new(ring[uint64])
	off := unix.XDPRingOffset{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}
	if err := initRing(r, make([]byte, 192+8*8), off, 6); err == nil {
		t.Error("size 6 accepted")
	}
	if err := initRing(r, make([]byte, 192+8*4), off, 8); err == nil {
		t.Error("short mapping accepted")
	}
	off.Flags = 4096
	if err := initRing(r, make([]byte, 192+8*8), off, 8); err == nil {
		t.Error("flags outside mapping accepted")
	}
}

// TestRingProducerWraps fills a small fill-style ring in random batches
// while a simulated kernel consumes in random batches, across many index
// wraps, and checks every address arrives once and in order.
func TestRingProducerWraps(t *testing.T) {
	const size = 8
	r := fakeRing[uint64](t, size)
	rng := rand.New(rand.NewPCG(1, 2))
	var next, want uint64
	kernelCons := r.consumer.Load()
	// Start near the uint32 wrap so that it is crossed.
	start := uint32(1<<32 - 20)
	r.producer.Store(start)
	r.consumer.Store(start)
	r.cachedProd, r.cachedCons, kernelCons = start, start, start
	src := make([]uint64, 2*size)
	for iter := 0; iter < 2000; iter++ {
		k := rng.IntN(len(src) + 1)
		for i := range src[:k] {
			src[i] = next + uint64(i)
		}
		n := r.produce(src[:k])
		inFlight := r.producer.Load() - kernelCons
		if n > k || inFlight > size {
			t.Fatalf("iter %d: produced %d of %d, %d in flight", iter, n, k, inFlight)
		}
		next += uint64(n)
		// Kernel side: consume a random number of the published entries.
		prod := r.producer.Load()
		c := uint32(rng.IntN(int(prod-kernelCons) + 1))
		for i := uint32(0); i < c; i++ {
			if got := r.entries[(kernelCons+i)&r.mask]; got != want {
				t.Fatalf("iter %d: kernel read %d, want %d", iter, got, want)
			}
			want++
		}
		kernelCons += c
		r.consumer.Store(kernelCons)
	}
	if want == 0 || next-want > size {
		t.Fatalf("consumed %d, produced %d", want, next)
	}
}

// TestRingConsumerWraps is the mirror: the simulated kernel produces RX
// descriptors, the ring consumes them in random batches.
func TestRingConsumerWraps(t *testing.T) {
	const size = 16
	r := fakeRing[Desc](t, size)
	rng := rand.New(rand.NewPCG(3, 4))
	start := uint32(1<<32 - 37)
	r.producer.Store(start)
	r.consumer.Store(start)
	r.cachedProd, r.cachedCons = start, start
	kernelProd := start
	var next, want uint64
	dst := make([]Desc, size+3)
	if r.consume(dst) != 0 {
		t.Fatal("consumed from an empty ring")
	}
	for iter := 0; iter < 2000; iter++ {
		free := size - (kernelProd - r.consumer.Load())
		p := uint32(rng.IntN(int(free) + 1))
		for i := uint32(0); i < p; i++ {
			r.entries[(kernelProd+i)&r.mask] = Desc{Addr: next, Len: uint32(next)}
			next++
		}
		kernelProd += p
		r.producer.Store(kernelProd)

		k := rng.IntN(len(dst) + 1)
		n := r.consume(dst[:k])
		if n > k {
			t.Fatalf("consumed %d into %d slots", n, k)
		}
		for _, d := range dst[:n] {
			if d.Addr != want || d.Len != uint32(want) {
				t.Fatalf("iter %d: got %+v, want addr %d", iter, d, want)
			}
			want++
		}
	}
	if want == 0 {
		t.Fatal("nothing consumed")
	}
}

func TestRingZeroValueIsInert(t *testing.T) {
	var r ring[Desc]
	if r.produce(make([]Desc, 4)) != 0 || r.consume(make([]Desc, 4)) != 0 || r.needWakeup() {
		t.Fatal("unmapped ring did something")
	}
	if (r.counters() != RingCounters{}) {
		t.Fatal("unmapped ring has counters")
	}
}

func TestUMEMBounds(t *testing.T) {
	u, err := NewUMEM(4, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.FrameSize() != 2048 || u.NumFrames() != 4 || u.RxDataOffset() != 256 {
		t.Fatalf("size %d frames %d rx offset %d", u.FrameSize(), u.NumFrames(), u.RxDataOffset())
	}
	b := u.Bytes(2048+256, 100)
	if len(b) != 100 || cap(b) != 2048-256 {
		t.Fatalf("len %d cap %d", len(b), cap(b))
	}
	b[0] = 0xab
	base, chunk := u.Chunk(2048 + 1000)
	if base != 2048 || len(chunk) != 2048 || chunk[256] != 0xab {
		t.Fatalf("chunk base %d len %d", base, len(chunk))
	}
	if u.ChunkBase(3*2048+77) != 3*2048 || u.FrameAddr(3) != 3*2048 {
		t.Fatal("chunk base / frame addr")
	}
	for _, c := range []struct {
		addr uint64
		n    uint32
	}{
		{2000, 100},           // crosses into the next chunk
		{4 * 2048, 1},         // past the end
		{1<<64 - 1, 0},        // overflow
		{3*2048 + 2047, 2},    // crosses the UMEM end
		{1<<64 - 2048, 2048},  // overflow in the end computation
		{1<<63 + 100, 1 << 8}, // far away
	} {
		if b := u.Bytes(c.addr, c.n); b != nil {
			t.Errorf("Bytes(%d, %d) = %d bytes, want nil", c.addr, c.n, len(b))
		}
	}
	if b := u.Bytes(3*2048, 2048); len(b) != 2048 {
		t.Errorf("whole last chunk: %d bytes", len(b))
	}
	if base, chunk := u.Chunk(4 * 2048); base != 0 || chunk != nil {
		t.Error("Chunk past the end")
	}
	if base, chunk := u.Chunk(1<<64 - 1); base != 0 || chunk != nil {
		t.Error("Chunk at the top of the address space")
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if u.Bytes(0, 1) != nil {
		t.Error("Bytes after Close")
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestUMEMRejectsBadGeometry(t *testing.T) {
	page := os.Getpagesize()
	for _, c := range []struct{ frames, size, headroom int }{
		{64, 3000, 0},
		{64, 1024, 0},
		{64, 2 * page, 0},
		{64, 0, 0},
		{0, 2048, 0},
		{-1, 2048, 0},
		{64, 2048, -1},
		{64, 2048, 2048 - 256},
	} {
		if u, err := NewUMEMWithHeadroom(c.frames, c.size, c.headroom); err == nil {
			u.Close()
			t.Errorf("NewUMEMWithHeadroom(%d, %d, %d) succeeded", c.frames, c.size, c.headroom)
		}
	}
}

func TestNewSocketRejectsBadArguments(t *testing.T) {
	u, err := NewUMEM(16, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for name, f := range map[string]func() (*Socket, error){
		"nil umem":       func() (*Socket, error) { return NewSocket(nil, 1, 0, Options{}) },
		"ifindex 0":      func() (*Socket, error) { return NewSocket(u, 0, 0, Options{}) },
		"negative queue": func() (*Socket, error) { return NewSocket(u, 1, -1, Options{}) },
		"rx size 1000":   func() (*Socket, error) { return NewSocket(u, 1, 0, Options{RxSize: 1000}) },
		"fill size -8":   func() (*Socket, error) { return NewSocket(u, 1, 0, Options{FillSize: -8}) },
		"bad mode":       func() (*Socket, error) { return NewSocket(u, 1, 0, Options{Mode: 9}) },
	} {
		if s, err := f(); err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	u.Close()
	if _, err := NewSocket(u, 1, 0, Options{}); err == nil {
		t.Error("closed umem accepted")
	}
}

func BenchmarkRingProduceConsume(b *testing.B) {
	r := fakeRing[Desc](b, 2048)
	batch := make([]Desc, 64)
	out := make([]Desc, 64)
	b.ReportAllocs()
	for b.Loop() {
		n := r.produce(batch)
		// Stand in for the kernel: move everything published to the
		// consumer side of a second view of the same ring.
		r.cachedCons = r.cachedProd - uint32(n)
		r.consume(out[:n])
	}
}
