package bpf

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/inet"
)

// pinTestDir returns a fresh directory on a BPF filesystem, removed with
// everything pinned in it when the test ends, whatever its outcome: under
// /sys/fs/bpf, or, where none is mounted there (a bare container), under a
// private bpf filesystem mounted for the test.
func pinTestDir(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	base := "/sys/fs/bpf"
	if checkBPFFS(base) != nil {
		base = t.TempDir()
		if err := unix.Mount("bpf", base, "bpf", 0, "mode=0700"); err != nil {
			t.Skipf("no bpf filesystem at /sys/fs/bpf, and mounting one failed: %v", err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(base, 0); err != nil {
				t.Errorf("unmount %s: %v", base, err)
			}
		})
	}
	dir, err := os.MkdirTemp(base, "govs-test-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the mount's: runs before the unmount. Removing a
	// link's pin detaches it once no descriptor holds it.
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

func loadPinned(t *testing.T, opts SteeringOptions) *Steering {
	t.Helper()
	s, err := LoadSteeringWith(opts)
	if err != nil {
		t.Fatalf("LoadSteeringWith(%+v): %v", opts, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pinned(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestPinnedStateAdopted: a second load over the same pin path reuses the
// first's state maps: its SYN cookie key, flow entries and generation.
func TestPinnedStateAdopted(t *testing.T) {
	dir := pinTestDir(t)
	opts := SteeringOptions{MaxFlows: 4096, PinPath: filepath.Join(dir, "govs")}

	s1 := loadPinned(t, opts)
	if s1.Adopted() {
		t.Error("first load: Adopted")
	}
	if _, ok, err := s1.SynCookieKey(); err != nil || ok {
		t.Errorf("first load: SynCookieKey ok=%v, %v; want never set", ok, err)
	}
	key := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if err := s1.SetSynCookieKey(key); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s1.InvalidateFlows(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	// One flow of each family: flows4 and flows are both handed over.
	for _, f := range []Flow{
		{Src: inet.AddrFromNetip(mustAddr(t, client4)), Dst: inet.AddrFromNetip(mustAddr(t, vip4)), SrcPort: 1000, DstPort: 80, Proto: unix.IPPROTO_TCP},
		{Src: inet.AddrFromNetip(mustAddr(t, client6)), Dst: inet.AddrFromNetip(mustAddr(t, vip6)), SrcPort: 1000, DstPort: 443, Proto: unix.IPPROTO_TCP},
	} {
		if err := s1.InstallFlow(nil, f, &FlowAction{Op: FlowForward, Ifindex: 1}, s1.FlowGeneration()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"fast_cfg", "flows", "flows4", "syncookie_keys"}
	if got := pinned(t, opts.PinPath); !slices.Equal(got, want) {
		t.Fatalf("pinned after Close: %v, want %v", got, want)
	}

	s2 := loadPinned(t, opts)
	if !s2.Adopted() {
		t.Error("second load: not Adopted")
	}
	if got, ok, err := s2.SynCookieKey(); err != nil || !ok || got != key {
		t.Errorf("second load: SynCookieKey = %x, %v, %v; want %x", got, ok, err, key)
	}
	if g := s2.FlowGeneration(); g != 2 {
		t.Errorf("second load: FlowGeneration = %d, want 2", g)
	}
	if !s2.FastPathEnabled() || s2.FlowCount() != 2 {
		t.Errorf("second load: fast path on %v, %d flows; want on, 2", s2.FastPathEnabled(), s2.FlowCount())
	}
	if err := s2.SetFastPath(false); err != nil {
		t.Fatal(err)
	}
	if g := s2.FlowGeneration(); g != 2 {
		t.Errorf("SetFastPath moved the generation to %d", g)
	}
	if g, err := s2.InvalidateFlows(); err != nil || g != 3 {
		t.Errorf("InvalidateFlows = %d, %v; want 3", g, err)
	}

	// Stop for good: nothing stays.
	if err := s2.Unpin(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(opts.PinPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pin path after Unpin and Close: %v, want it gone", err)
	}
	s3 := loadPinned(t, opts)
	if s3.Adopted() || s3.FlowGeneration() != 0 {
		t.Errorf("load after Unpin: Adopted %v, generation %d; want fresh", s3.Adopted(), s3.FlowGeneration())
	}
}

// TestPinnedIncompatible: state maps pinned with another size are refused,
// with a hint to clean up, and Cleanup removes them.
func TestPinnedIncompatible(t *testing.T) {
	dir := pinTestDir(t)
	s := loadPinned(t, SteeringOptions{MaxFlows: 4096, PinPath: dir})
	s.Close()
	_, err := LoadSteeringWith(SteeringOptions{MaxFlows: 8192, PinPath: dir})
	if !errors.Is(err, ErrPinnedIncompatible) || !strings.Contains(err.Error(), "flows") ||
		!strings.Contains(err.Error(), "govsd --cleanup") {
		t.Fatalf("load over a flow map of another size: %v; want ErrPinnedIncompatible naming flows and govsd --cleanup", err)
	}
	removed, err := Cleanup(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"fast_cfg", "flows", "flows4", "syncookie_keys"}; !slices.Equal(removed, want) {
		t.Errorf("Cleanup removed %v, want %v", removed, want)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pin path after Cleanup: %v, want it gone", err)
	}
	if removed, err := Cleanup(dir); err != nil || removed != nil {
		t.Errorf("Cleanup of nothing: %v, %v", removed, err)
	}
	if s := loadPinned(t, SteeringOptions{MaxFlows: 8192, PinPath: dir}); s.Adopted() {
		t.Error("load after Cleanup: Adopted")
	}
}

// TestPinnedPartialState: a set of state maps with one missing (a process
// died while pinning them) is not adopted: the flows would lack their
// generation.
func TestPinnedPartialState(t *testing.T) {
	dir := pinTestDir(t)
	s := loadPinned(t, SteeringOptions{PinPath: dir})
	if err := s.SetSynCookieKey([16]byte{1}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Remove(filepath.Join(dir, "fast_cfg")); err != nil {
		t.Fatal(err)
	}
	s = loadPinned(t, SteeringOptions{PinPath: dir})
	if s.Adopted() {
		t.Error("partial state: Adopted")
	}
	if _, ok, err := s.SynCookieKey(); err != nil || ok {
		t.Errorf("partial state: SynCookieKey ok=%v, %v; want a fresh map", ok, err)
	}
}

// TestPinPathNotBPFFS: a pin path on another filesystem is refused, and
// Cleanup never removes files there.
func TestPinPathNotBPFFS(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	if _, err := LoadSteeringWith(SteeringOptions{PinPath: dir}); err == nil || !strings.Contains(err.Error(), "bpf filesystem") {
		t.Errorf("load with a pin path in %s: %v; want refused, not a bpf filesystem", dir, err)
	}
	file := filepath.Join(dir, "flows")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Cleanup(dir); err == nil {
		t.Error("Cleanup of a plain directory succeeded")
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("Cleanup of a plain directory: %v", err)
	}
}

// xdpProgID returns the id of the XDP program netlink reports on the link,
// with its attach mode; 0 and XDP_ATTACHED_NONE when none.
func xdpProgID(t *testing.T, h *netlink.Handle, name string) (uint32, uint32) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	xdp := l.Attrs().Xdp
	if xdp == nil || !xdp.Attached {
		return 0, nl.XDP_ATTACHED_NONE
	}
	return xdp.ProgId, xdp.AttachMode
}

func progID(t *testing.T, s *Steering) uint32 {
	t.Helper()
	info, err := s.Program().Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("no program id")
	}
	return uint32(id)
}

// TestAttachPinned: a pinned link keeps the program attached past Close;
// the next load swaps its program in on the same link; a recreated
// interface gets a new link; ReleaseInterface and Cleanup detach.
func TestAttachPinned(t *testing.T) {
	h := enterTestNetns(t, "pin")
	dir := pinTestDir(t)
	ifindex := addVeth(t, h, "gbp0", "gbp1", 1)
	dotted := addVeth(t, h, "gbq.5", "gbq1", 1) // a VLAN-like name: bpffs refuses dots
	opts := SteeringOptions{PinPath: dir}

	s1 := loadPinned(t, opts)
	used, replaced, err := s1.AttachPinned(ifindex, "gbp0", ModeGeneric)
	if err != nil || used != ModeGeneric || replaced {
		t.Fatalf("first AttachPinned: %v, replaced %v, %v; want generic, new", used, replaced, err)
	}
	if _, _, err := s1.AttachPinned(ifindex, "gbp0", ModeGeneric); err == nil {
		t.Error("AttachPinned twice in one Steering succeeded")
	}
	if _, _, err := s1.AttachPinned(dotted, "gbq.5", ModeGeneric); err != nil {
		t.Fatal(err)
	}
	id1 := progID(t, s1)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if id, mode := xdpProgID(t, h, "gbp0"); id != id1 || mode != nl.XDP_ATTACHED_SKB {
		t.Errorf("after Close: program %d in mode %d attached, want the first (%d) in generic mode", id, mode, id1)
	}
	if names, err := PinnedInterfaces(dir); err != nil || !slices.Equal(names, []string{"gbp0", "gbq.5"}) {
		t.Errorf("PinnedInterfaces = %v, %v; want gbp0 and gbq.5", names, err)
	}

	// The next process: same link, its program, the link's mode.
	s2 := loadPinned(t, opts)
	used, replaced, err = s2.AttachPinned(ifindex, "gbp0", ModeNative)
	if err != nil || used != ModeGeneric || !replaced {
		t.Fatalf("second AttachPinned: %v, replaced %v, %v; want generic (the link's), replaced", used, replaced, err)
	}
	id2 := progID(t, s2)
	if id, mode := xdpProgID(t, h, "gbp0"); id != id2 || id2 == id1 || mode != nl.XDP_ATTACHED_SKB {
		t.Errorf("after the swap: program %d in mode %d, want the second (%d) in generic mode", id, mode, id2)
	}
	if err := s2.ReleaseInterface("gbq.5"); err != nil {
		t.Fatal(err)
	}
	if id, _ := xdpProgID(t, h, "gbq.5"); id != 0 {
		t.Errorf("after ReleaseInterface: program %d still attached", id)
	}
	if names, err := PinnedInterfaces(dir); err != nil || !slices.Equal(names, []string{"gbp0"}) {
		t.Errorf("PinnedInterfaces after ReleaseInterface = %v, %v; want gbp0", names, err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}

	// The interface recreated: the old link went with it; a new one is made.
	l, err := h.LinkByName("gbp0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	ifindex = addVeth(t, h, "gbp0", "gbp1", 1)
	s3 := loadPinned(t, opts)
	used, replaced, err = s3.AttachPinned(ifindex, "gbp0", ModeGeneric)
	if err != nil || used != ModeGeneric || replaced {
		t.Fatalf("AttachPinned on the recreated interface: %v, replaced %v, %v; want generic, new", used, replaced, err)
	}
	if id, _ := xdpProgID(t, h, "gbp0"); id != progID(t, s3) {
		t.Errorf("recreated interface: program %d attached, want %d", id, progID(t, s3))
	}
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}

	// No director runs: Cleanup removes everything.
	removed, err := Cleanup(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"fast_cfg", "flows", "flows4", "syncookie_keys", "xdp_gbp0"}; !slices.Equal(removed, want) {
		t.Errorf("Cleanup removed %v, want %v", removed, want)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pin path after Cleanup: %v, want it gone", err)
	}
	if id, mode := xdpProgID(t, h, "gbp0"); id != 0 || mode != nl.XDP_ATTACHED_NONE {
		t.Errorf("after Cleanup: program %d attached in mode %d", id, mode)
	}
}

// TestUnpinDetaches: Unpin, then Close, detaches a pinned link; Detach
// unpins it too.
func TestUnpinDetaches(t *testing.T) {
	h := enterTestNetns(t, "unpin")
	dir := pinTestDir(t)
	a := addVeth(t, h, "gbu0", "gbu1", 1)
	b := addVeth(t, h, "gbw0", "gbw1", 1)
	s := loadPinned(t, SteeringOptions{PinPath: dir})
	for ifindex, name := range map[int]string{a: "gbu0", b: "gbw0"} {
		if _, _, err := s.AttachPinned(ifindex, name, ModeGeneric); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Detach(b); err != nil {
		t.Fatal(err)
	}
	if id, _ := xdpProgID(t, h, "gbw0"); id != 0 {
		t.Errorf("after Detach: program %d attached", id)
	}
	if names, _ := PinnedInterfaces(dir); !slices.Equal(names, []string{"gbu0"}) {
		t.Errorf("PinnedInterfaces after Detach = %v, want gbu0", names)
	}
	if err := s.Unpin(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pin path after Unpin: %v, want it gone", err)
	}
	if id, _ := xdpProgID(t, h, "gbu0"); id != progID(t, s) {
		t.Errorf("after Unpin, before Close: program %d attached, want still %d", id, progID(t, s))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if id, _ := xdpProgID(t, h, "gbu0"); id != 0 {
		t.Errorf("after Unpin and Close: program %d attached", id)
	}
}

// TestAttachPinnedWithoutPinPath is Attach.
func TestAttachPinnedWithoutPinPath(t *testing.T) {
	h := enterTestNetns(t, "nopin")
	ifindex := addVeth(t, h, "gbn0", "gbn1", 1)
	s := loadPinned(t, SteeringOptions{})
	if used, replaced, err := s.AttachPinned(ifindex, "gbn0", ModeGeneric); err != nil || used != ModeGeneric || replaced {
		t.Fatalf("AttachPinned: %v, %v, %v", used, replaced, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if id, _ := xdpProgID(t, h, "gbn0"); id != 0 {
		t.Errorf("after Close: program %d attached, want none (nothing pinned)", id)
	}
}

// installFlowBeforeFlows4 writes f's entry as a govs from before flows4
// did: into flows, IPv4 flows too (IPv4-mapped key).
func installFlowBeforeFlows4(t *testing.T, s *Steering, f Flow, a *FlowAction) {
	t.Helper()
	v, err := flowEntry(&f, a, s.FlowGeneration())
	if err != nil {
		t.Fatal(err)
	}
	k := f.key()
	if err := s.objs.Flows.Update(&k, &v, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

// legacyEntries returns the IPv4 entries in s's flows map.
func legacyEntries(t *testing.T, s *Steering) map[steerFlowKey]steerFlowAction {
	t.Helper()
	m := map[steerFlowKey]steerFlowAction{}
	err := s.legacyFlows4(func(keys []steerFlowKey, vals []steerFlowAction) error {
		for i := range keys {
			m[keys[i]] = vals[i]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// movedFlow is a flow of the pin directory a govs from before flows4 left.
type movedFlow struct {
	name string
	pkt  fpkt
	spec flowSpec
}

var movedFlows = []movedFlow{
	{"dnat tcp4", ack4, dnat4},
	{"dnat udp4", udp4, dnat4U},
	{"snat tcp4", reply4, snat4},
	{"snat udp4", reply4U, snat4U}, // ended in the gap
	{"dnat tcp6", ack6, dnat6},
}

// pinBeforeFlows4 makes dir the pin directory a govs from before flows4
// leaves: its program attached through pinned links on ifaces (ifindex ->
// name), flow entries of movedFlows all in flows, generation 1, the fast
// path on, and no flows4. It returns the actions written.
func pinBeforeFlows4(t *testing.T, dir string, opts SteeringOptions, ifaces map[int]string) []FlowAction {
	t.Helper()
	old := loadPinned(t, opts)
	for ifindex, name := range ifaces {
		if _, _, err := old.AttachPinned(ifindex, name, ModeGeneric); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.InvalidateFlows(); err != nil {
		t.Fatal(err)
	}
	if err := old.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	var actions []FlowAction
	for i, c := range movedFlows {
		a := c.spec.action(t, c.pkt.frame(t), uint32(i+1))
		installFlowBeforeFlows4(t, old, c.pkt.flow(t), &a)
		actions = append(actions, a)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	// The program attached keeps its own flows4 alive; unpinned, the
	// directory is laid out as that govs left it.
	if err := os.Remove(filepath.Join(dir, "flows4")); err != nil {
		t.Fatal(err)
	}
	return actions
}

// checkMovedForwarded runs each moved flow's packet (but skip's) through
// s's program and expects the workers' rewrite.
func checkMovedForwarded(t *testing.T, s *Steering, actions []FlowAction, skip string) {
	t.Helper()
	for i, c := range movedFlows {
		if c.name == skip {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			in := c.pkt.frame(t)
			action, out, delta := runOut(t, s, in)
			if action != xdpRedirect || delta != (Counters{FastForwarded: 1}) {
				t.Fatalf("action %d, counters moved by %+v, want XDP_REDIRECT and one fast-forwarded packet", action, delta)
			}
			if want := oracle(t, in, &actions[i]); !bytes.Equal(out, want) {
				t.Errorf("output differs from the workers' rewrite: %s", diffBytes(out, want))
			}
		})
	}
}

// TestPinnedFlows4Moved: the pin directory of a govs from before flows4,
// its IPv4 flow entries in flows, is adopted without losing a flow. The
// IPv4 entries are copied to flows4 at load, so the new program forwards
// them, and stay in flows, where the previous program, attached until the
// swap, reads them; once no interface runs it (swapped on one, released
// on the other) they leave flows and flows4 is pinned. A govsd that dies
// before the swap leaves the old layout, moved again by the next one.
func TestPinnedFlows4Moved(t *testing.T) {
	h := enterTestNetns(t, "mv4")
	dir := pinTestDir(t)
	swapped := addVeth(t, h, "gbm0", "gbm1", 1)
	released := addVeth(t, h, "gbr0", "gbr1", 1)
	opts := SteeringOptions{MaxFlows: 4096, PinPath: dir}
	actions := pinBeforeFlows4(t, dir, opts, map[int]string{swapped: "gbm0", released: "gbr0"})
	oldLayout := []string{"fast_cfg", "flows", "syncookie_keys", "xdp_gbm0", "xdp_gbr0"}
	if got := pinned(t, dir); !slices.Equal(got, oldLayout) {
		t.Fatalf("pinned by the previous govsd: %v, want %v", got, oldLayout)
	}

	// A govsd that dies before its swap.
	s1 := loadPinned(t, opts)
	if !s1.Adopted() || !s1.moving4.Load() {
		t.Errorf("load over the old layout: Adopted %v, moving %v; want both", s1.Adopted(), s1.moving4.Load())
	}
	if n, legacy := s1.FlowCount(), len(legacyEntries(t, s1)); n != 5 || legacy != 4 {
		t.Errorf("while moving: FlowCount %d, %d IPv4 entries in flows; want 5, 4", n, legacy)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if got := pinned(t, dir); !slices.Equal(got, oldLayout) {
		t.Fatalf("pinned after a govsd died before its swap: %v, want the old layout %v", got, oldLayout)
	}

	// The next one adopts every flow of the current generation.
	s2 := loadPinned(t, opts)
	configureTestSteering(t, s2)
	if !s2.Adopted() || s2.FlowGeneration() != 1 || !s2.FastPathEnabled() {
		t.Errorf("adopted %v, generation %d, fast path %v; want adopted, 1, on", s2.Adopted(), s2.FlowGeneration(), s2.FastPathEnabled())
	}
	for _, c := range movedFlows {
		if !s2.FlowCurrent(c.pkt.flow(t)) {
			t.Errorf("%s: not FlowCurrent after the load", c.name)
		}
	}
	if n := s2.FlowCount(); n != 5 {
		t.Errorf("FlowCount %d while moving, want 5 (each flow once)", n)
	}
	t.Run("forwarded from flows4 before the swap", func(t *testing.T) { checkMovedForwarded(t, s2, actions, "") })
	legacy := legacyEntries(t, s2)
	if len(legacy) != 4 {
		t.Fatalf("%d IPv4 entries left in flows before the swap, want 4 for the previous program", len(legacy))
	}

	// The previous program stamps its copies until the swap.
	f := ack4.flow(t)
	seen4, ok := s2.FlowLastSeen(nil, f)
	if !ok {
		t.Fatal("FlowLastSeen: no entry")
	}
	k := f.key()
	v := legacy[k]
	v.LastSeen = uint64(seen4 + int64(time.Second))
	if err := s2.objs.Flows.Update(&k, &v, ebpf.UpdateExist); err != nil {
		t.Fatal(err)
	}
	if seen, _ := s2.FlowLastSeen(nil, f); seen != int64(v.LastSeen) {
		t.Errorf("FlowLastSeen %d while moving, want the previous program's later stamp %d", seen, v.LastSeen)
	}

	// A flow ended in the gap leaves both maps: the previous program must
	// stop forwarding it too.
	ended := reply4U.flow(t)
	if err := s2.DeleteFlow(nil, ended); err != nil {
		t.Fatal(err)
	}
	if _, ok := legacyEntries(t, s2)[ended.key()]; ok || s2.FlowCurrent(ended) {
		t.Errorf("after DeleteFlow: in flows %v, FlowCurrent %v; want neither", ok, s2.FlowCurrent(ended))
	}

	// Swapped on one interface: the other still runs the previous program.
	if _, replaced, err := s2.AttachPinned(swapped, "gbm0", ModeGeneric); err != nil || !replaced {
		t.Fatalf("AttachPinned: replaced %v, %v", replaced, err)
	}
	if n := len(legacyEntries(t, s2)); n != 3 || !s2.moving4.Load() {
		t.Errorf("after one of two swaps: %d IPv4 entries in flows, moving %v; want 3, still moving", n, s2.moving4.Load())
	}
	if err := s2.ReleaseInterface("gbr0"); err != nil {
		t.Fatal(err)
	}
	if n := len(legacyEntries(t, s2)); n != 0 || s2.moving4.Load() {
		t.Errorf("once no interface runs the previous program: %d IPv4 entries in flows, moving %v; want none, done", n, s2.moving4.Load())
	}
	if want := []string{"fast_cfg", "flows", "flows4", "syncookie_keys", "xdp_gbm0"}; !slices.Equal(pinned(t, dir), want) {
		t.Errorf("pinned after the move: %v, want %v", pinned(t, dir), want)
	}
	if seen, _ := s2.FlowLastSeen(nil, f); seen != seen4 {
		t.Errorf("FlowLastSeen %d after the move, want flows4's %d", seen, seen4)
	}
	if n := s2.FlowCount(); n != 4 {
		t.Errorf("FlowCount %d after the move, want 4", n)
	}
	t.Run("forwarded after the move", func(t *testing.T) { checkMovedForwarded(t, s2, actions, "snat udp4") })
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}

	// And the next govsd adopts the new layout as it is.
	s3 := loadPinned(t, opts)
	if !s3.Adopted() || s3.moving4.Load() || s3.FlowCount() != 4 {
		t.Errorf("load after the move: Adopted %v, moving %v, FlowCount %d; want adopted, not moving, 4",
			s3.Adopted(), s3.moving4.Load(), s3.FlowCount())
	}
	for _, c := range movedFlows[:3] {
		if !s3.FlowCurrent(c.pkt.flow(t)) {
			t.Errorf("%s: not FlowCurrent after the move", c.name)
		}
	}
}

// TestPinnedFlows4MovedAtLoad: with no program of the previous govsd
// attached any more, the IPv4 entries are moved at load.
func TestPinnedFlows4MovedAtLoad(t *testing.T) {
	dir := pinTestDir(t)
	opts := SteeringOptions{MaxFlows: 4096, PinPath: dir}
	actions := pinBeforeFlows4(t, dir, opts, nil)
	s := loadPinned(t, opts)
	configureTestSteering(t, s)
	if !s.Adopted() || s.moving4.Load() {
		t.Errorf("Adopted %v, moving %v; want adopted, moved", s.Adopted(), s.moving4.Load())
	}
	if n, legacy := s.FlowCount(), len(legacyEntries(t, s)); n != 5 || legacy != 0 {
		t.Errorf("FlowCount %d, %d IPv4 entries in flows; want 5, none", n, legacy)
	}
	if want := []string{"fast_cfg", "flows", "flows4", "syncookie_keys"}; !slices.Equal(pinned(t, dir), want) {
		t.Errorf("pinned: %v, want %v", pinned(t, dir), want)
	}
	checkMovedForwarded(t, s, actions, "")
}

// TestPinnedFlows4Incompatible: a pinned flows4 that differs from this
// build's (size, type) is refused as flows is.
func TestPinnedFlows4Incompatible(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*ebpf.MapSpec)
	}{
		{"size", func(ms *ebpf.MapSpec) { ms.MaxEntries *= 2 }},
		{"type", func(ms *ebpf.MapSpec) { ms.Type, ms.Flags = ebpf.LRUHash, 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := pinTestDir(t)
			opts := SteeringOptions{MaxFlows: 4096, PinPath: dir}
			loadPinned(t, opts).Close()
			spec, err := loadSteer()
			if err != nil {
				t.Fatal(err)
			}
			ms := spec.Maps[steerMapFlows4].Copy()
			ms.MaxEntries = 4096
			c.edit(ms)
			path := filepath.Join(dir, "flows4")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			m, err := ebpf.NewMap(ms)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if err := m.Pin(path); err != nil {
				t.Fatal(err)
			}
			_, err = LoadSteeringWith(opts)
			if !errors.Is(err, ErrPinnedIncompatible) || !strings.Contains(err.Error(), "flows4") {
				t.Fatalf("load over a flows4 of another %s: %v; want ErrPinnedIncompatible naming flows4", c.name, err)
			}
		})
	}
}
