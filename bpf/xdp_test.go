package bpf

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{
		"": ModeAuto, "auto": ModeAuto, "Native": ModeNative, "driver": ModeNative,
		"generic": ModeGeneric, " SKB ": ModeGeneric,
	} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseMode(got.String()); err != nil || back != got {
			t.Errorf("ParseMode(%v.String()) = %v, %v", got, back, err)
		}
	}
	if _, err := ParseMode("offload"); err == nil {
		t.Error("ParseMode(offload) succeeded")
	}
}

// enterTestNetns moves the test's goroutine, locked to its thread, into a
// fresh network namespace and returns a netlink handle in it. The thread is
// never unlocked: it dies with the test goroutine, after the cleanups (which
// run on it), so no other goroutine ever runs in the test namespace. Tests
// using it must not start subtests, which run on other goroutines.
func enterTestNetns(t *testing.T, suffix string) *netlink.Handle {
	t.Helper()
	requireRoot(t)
	runtime.LockOSThread()
	name := fmt.Sprintf("gb%d%s", os.Getpid(), suffix)
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	t.Cleanup(h.Close)
	return h
}

// addVeth creates an up veth pair with queues RX queues on name and
// returns the index of name.
func addVeth(t *testing.T, h *netlink.Handle, name, peer string, queues int) int {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: name, NumRxQueues: queues, NumTxQueues: queues},
		PeerName:  peer,
	}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	for _, n := range []string{name, peer} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

// xdpAttachMode returns how an XDP program is attached to the link, or
// XDP_ATTACHED_NONE.
func xdpAttachMode(t *testing.T, h *netlink.Handle, name string) uint32 {
	t.Helper()
	_, mode := xdpProgID(t, h, name)
	return mode
}

func TestSteerAttachVeth(t *testing.T) {
	h := enterTestNetns(t, "attach")
	ifindex := addVeth(t, h, "gbv0", "gbv1", 1)
	s, err := LoadSteering()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	for _, tc := range []struct {
		mode, want Mode
		attached   uint32
	}{
		{ModeNative, ModeNative, nl.XDP_ATTACHED_DRV},
		{ModeGeneric, ModeGeneric, nl.XDP_ATTACHED_SKB},
		{ModeAuto, ModeNative, nl.XDP_ATTACHED_DRV}, // veth has native XDP
	} {
		used, err := s.Attach(ifindex, tc.mode)
		if err != nil {
			t.Fatalf("attach %v: %v", tc.mode, err)
		}
		if used != tc.want {
			t.Errorf("attach %v: used %v, want %v", tc.mode, used, tc.want)
		}
		if got := xdpAttachMode(t, h, "gbv0"); got != tc.attached {
			t.Errorf("attach %v: netlink reports attach mode %d, want %d", tc.mode, got, tc.attached)
		}
		if _, err := s.Attach(ifindex, tc.mode); err == nil {
			t.Errorf("attach %v twice succeeded", tc.mode)
		}
		if err := s.Detach(ifindex); err != nil {
			t.Fatalf("detach %v: %v", tc.mode, err)
		}
		if got := xdpAttachMode(t, h, "gbv0"); got != nl.XDP_ATTACHED_NONE {
			t.Errorf("detach %v: netlink still reports attach mode %d", tc.mode, got)
		}
	}
	if err := s.Detach(ifindex); err == nil {
		t.Error("detach of a detached interface succeeded")
	}

	// Close detaches whatever is still attached.
	if _, err := s.Attach(ifindex, ModeGeneric); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := xdpAttachMode(t, h, "gbv0"); got != nl.XDP_ATTACHED_NONE {
		t.Errorf("after Close netlink still reports attach mode %d", got)
	}
}

// xdpMd is struct xdp_md, the context BPF_PROG_TEST_RUN takes.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// newXSK returns an AF_XDP socket bound, in copy mode, to a queue of an
// interface: the minimum the kernel accepts in an XSKMAP. No ring is mapped;
// the test never reads packets from it.
func newXSK(t *testing.T, ifindex, queue int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_XDP socket: %v", err)
	}
	umem, err := unix.Mmap(-1, 0, 16*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(umem) })
	t.Cleanup(func() { unix.Close(fd) }) // before the unmap: cleanups run last-in first-out

	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&umem[0]))), Len: uint64(len(umem)), Size: 4096}
	if _, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); errno != 0 {
		t.Fatalf("register umem: %v", errno)
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt, 64); err != nil {
			t.Fatalf("ring size option %d: %v", opt, err)
		}
	}
	sa := &unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatalf("bind AF_XDP socket to ifindex %d queue %d: %v", ifindex, queue, err)
	}
	return fd
}

// TestSteerRedirectsToSocket checks the slot arithmetic (base + RX queue)
// against a real AF_XDP socket.
func TestSteerRedirectsToSocket(t *testing.T) {
	h := enterTestNetns(t, "xsk")
	ifindex := addVeth(t, h, "gbv0", "gbv1", 2)
	s, err := LoadSteering()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const base = 10
	if err := s.SetInterface(ifindex, Interface{Base: base, MAC: [6]byte(testDstMAC)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddVIP(endpoint(t, vip4, 80, tcp), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterSocket(base+1, newXSK(t, ifindex, 1)); err != nil {
		t.Fatal(err)
	}

	frame := pkt{src: client4, dst: vip4, proto: tcp, sport: 1, dport: 80}.frame(t)
	runOnQueue := func(queue uint32) (uint32, Counters) {
		t.Helper()
		before, err := s.Counters()
		if err != nil {
			t.Fatal(err)
		}
		ctx := xdpMd{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex), RxQueueIndex: queue}
		action, err := s.Program().Run(&ebpf.RunOptions{Data: frame, Context: ctx})
		if err != nil {
			t.Fatalf("run on queue %d: %v", queue, err)
		}
		after, err := s.Counters()
		if err != nil {
			t.Fatal(err)
		}
		return action, subCounters(after, before)
	}

	const xdpRedirect = 4
	if action, delta := runOnQueue(1); action != xdpRedirect || delta != (Counters{SteeredVIP: 1}) {
		t.Errorf("queue 1 (slot 11, socket): action %d, counters moved by %+v; want XDP_REDIRECT, one steered", action, delta)
	}
	if action, delta := runOnQueue(0); action != xdpDrop || delta != expected(wantVIP) {
		t.Errorf("queue 0 (slot 10, empty): action %d, counters moved by %+v; want XDP_DROP, steered and failed", action, delta)
	}
	if err := s.UnregisterSocket(base + 1); err != nil {
		t.Fatal(err)
	}
	if action, delta := runOnQueue(1); action != xdpDrop || delta != expected(wantVIP) {
		t.Errorf("queue 1 after unregister: action %d, counters moved by %+v; want XDP_DROP, steered and failed", action, delta)
	}
}
