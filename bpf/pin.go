package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/inet"
)

// Pinning keeps the steering program and its state alive while no director
// process runs (a restart, a crash, an upgrade): under a directory of a BPF
// filesystem ([SteeringOptions.PinPath]) lie
//
//   - xdp_<ifname>: the XDP link of each served interface, so the program
//     stays attached and its fast path keeps forwarding established flows;
//   - flows, flows4, fast_cfg, syncookie_keys: the maps that carry state
//     from one process to the next (flow entries and their generation,
//     the SYN cookie key);
//   - conns: the connection mirror (store.go).
//
// Every other map is the process's own: the old program keeps its copies
// alive through its pinned link until the next process swaps in its own
// program (AttachPinned).

// ErrPinnedIncompatible is wrapped by the errors of LoadSteeringWith and
// OpenStore when a pinned map differs from the one this build would create
// (another govs version's, or sized by another configuration): the state
// cannot be adopted, and `govsd --cleanup` removes it.
var ErrPinnedIncompatible = errors.New("pinned map incompatible with this govs version or configuration")

// stateMaps are the steering program's maps pinned by name: the state a
// director process hands to the next.
var stateMaps = [...]string{steerMapFlows, steerMapFlows4, steerMapFastCfg, steerMapSyncookieKeys}

// pinnedNames are the names Cleanup removes besides xdp_* links: the state
// maps and the connection mirror. Anything else in the directory is not
// govs's and stays.
var pinnedNames = map[string]bool{
	steerMapFlows: true, steerMapFlows4: true, steerMapFastCfg: true, steerMapSyncookieKeys: true, "conns": true,
}

// linkPrefix starts the pin name of an interface's XDP link.
const linkPrefix = "xdp_"

// linkPinName is the pin name of interface name's XDP link. bpffs refuses
// names with a dot (reserved for its own files), which VLAN interfaces
// have (eth0.100); a colon never occurs in an interface name (the kernel
// refuses it), so it stands in for the dot reversibly.
func linkPinName(name string) string {
	return linkPrefix + strings.ReplaceAll(name, ".", ":")
}

// ifaceOfPin is the interface name of a link pin name, or "" when it is not one.
func ifaceOfPin(pin string) string {
	name, ok := strings.CutPrefix(pin, linkPrefix)
	if !ok || name == "" {
		return ""
	}
	return strings.ReplaceAll(name, ":", ".")
}

// preparePinPath creates dir and checks that it is on a BPF filesystem:
// pins elsewhere fail with an obscure error, and Cleanup must never remove
// plain files.
func preparePinPath(dir string) error {
	if err := mountDefaultBPFFS(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create pin path: %w (is a bpf filesystem mounted there? mount -t bpf bpf /sys/fs/bpf)", err)
	}
	return checkBPFFS(dir)
}

// DefaultBPFFS is where systemd mounts the bpf filesystem.
const DefaultBPFFS = "/sys/fs/bpf"

// mountDefaultBPFFS mounts a bpf filesystem on /sys/fs/bpf when dir is
// below it and none is mounted there (a host without systemd's mount, or a
// fresh sysfs: ip netns exec mounts one), as cilium and bpftool do. A mount
// in a mount namespace of the process's own dies with it, and what was
// pinned there with it: restarts keep state only where the mount is shared.
func mountDefaultBPFFS(dir string) error {
	if dir != DefaultBPFFS && !strings.HasPrefix(dir, DefaultBPFFS+"/") {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(DefaultBPFFS, &st); err != nil || st.Type == unix.BPF_FS_MAGIC {
		return nil // absent (MkdirAll will say) or mounted
	}
	if err := unix.Mount("bpf", DefaultBPFFS, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount a bpf filesystem on %s: %w", DefaultBPFFS, err)
	}
	return nil
}

func checkBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("pin path %s: %w", dir, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("pin path %s: not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)", dir)
	}
	return nil
}

// adoptStateMaps marks the state maps of spec to be pinned by name in dir
// and reports whether all of them are already pinned there, from a previous
// process. A pinned map that differs from spec is an error wrapping
// ErrPinnedIncompatible. A partial set (a process that died while pinning
// them) is removed: state maps only make sense together, the flow entries
// with their generation. The exception is a set that lacks flows4 alone:
// a govs from before IPv4 flows had a map of their own left it, with its
// IPv4 entries in flows. It is adopted (move4), flows4 created unpinned,
// for the caller to move them (moveFlows4).
func adoptStateMaps(spec *ebpf.CollectionSpec, dir string) (adopted, move4 bool, err error) {
	found := map[string]bool{}
	for _, name := range stateMaps {
		ms := spec.Maps[name]
		ms.Pinning = ebpf.PinByName
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, false, fmt.Errorf("open pinned map %s in %s: %w", name, dir, err)
		}
		err = ms.Compatible(m)
		m.Close()
		if err != nil {
			return false, false, fmt.Errorf("pinned map %s in %s: %w: %w (run govsd --cleanup to remove the old state)",
				name, dir, ErrPinnedIncompatible, err)
		}
		found[name] = true
	}
	switch {
	case len(found) == len(stateMaps):
		return true, false, nil
	case len(found) == len(stateMaps)-1 && !found[steerMapFlows4]:
		// Pinned once its entries are in (finishMove4): until then a
		// crash leaves the old set, which the next process moves again.
		spec.Maps[steerMapFlows4].Pinning = ebpf.PinNone
		return true, true, nil
	case len(found) > 0:
		for _, name := range stateMaps {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, false, fmt.Errorf("remove partial pinned state: %w", err)
			}
		}
	}
	return false, false, nil
}

// flowBatch is how many flow entries one batch call reads, writes or
// deletes. The batch calls (Linux 5.6) are older than the program's
// helpers (bpf_ktime_get_coarse_ns, 5.11), so no fallback is needed.
const flowBatch = 4096

// moveFlows4 copies the IPv4 entries of flows, pinned by a govs from
// before flows4, into flows4, where this program looks them up: the
// connections adopted with them stay in the fast path once it is swapped
// in. They stay in flows meanwhile, since the previous program, attached
// until AttachPinned swaps this one in, reads them there: established
// IPv4 flows are forwarded through the gap as they always were.
// finishMove4 deletes them once no interface runs that program. Until
// then DeleteFlow deletes both copies and FlowLastSeen shows the later
// stamp of the two; InstallFlow writes flows4 alone, which the previous
// program does not read (no packet reaches this process's workers before
// the swap either, the previous program's sockets being gone).
func (s *Steering) moveFlows4() error {
	keys4 := make([]steerFlowKey4, flowBatch)
	err := s.legacyFlows4(func(keys []steerFlowKey, vals []steerFlowAction) error {
		for i := range keys {
			keys4[i] = steerFlowKey4{Saddr: [4]uint8(keys[i].Saddr[12:]), Daddr: [4]uint8(keys[i].Daddr[12:]),
				Sport: keys[i].Sport, Dport: keys[i].Dport, Proto: keys[i].Proto}
		}
		_, err := s.objs.Flows4.BatchUpdate(keys4[:len(keys)], vals, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("move IPv4 flows to flows4: %w", err)
	}
	s.moving4.Store(true)
	return s.finishMove4()
}

// legacyFlows4 calls fn with the IPv4 entries in flows, a batch at a time.
// fn may delete them.
func (s *Steering) legacyFlows4(fn func(keys []steerFlowKey, vals []steerFlowAction) error) error {
	keys := make([]steerFlowKey, flowBatch)
	vals := make([]steerFlowAction, flowBatch)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := s.objs.Flows.BatchLookup(&cursor, keys, vals, nil)
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
		m := 0
		for i := range n {
			if inet.Addr(keys[i].Saddr).Is4() && inet.Addr(keys[i].Daddr).Is4() {
				keys[m], vals[m] = keys[i], vals[i]
				m++
			}
		}
		if m > 0 {
			if err := fn(keys[:m], vals[:m]); err != nil {
				return err
			}
		}
		if err != nil {
			return nil // ErrKeyNotExist: the last batch
		}
	}
}

// finishMove4 ends moveFlows4 once no interface runs the previous program
// (AttachPinned swapped this one in on each, or ReleaseInterface detached
// it); until then it does nothing. flows4 is pinned, then the IPv4
// entries are deleted from flows. In that order a crash in between leaves
// copies in flows that no program reads, never entries in neither map.
func (s *Steering) finishMove4() error {
	s.moveMu.Lock()
	defer s.moveMu.Unlock()
	if !s.moving4.Load() {
		return nil
	}
	if old, err := s.previousProgramAttached(); err != nil || old {
		return err
	}
	if !s.objs.Flows4.IsPinned() {
		if err := s.objs.Flows4.Pin(filepath.Join(s.pinPath, steerMapFlows4)); err != nil {
			return fmt.Errorf("pin flows4: %w", err)
		}
	}
	err := s.legacyFlows4(func(keys []steerFlowKey, _ []steerFlowAction) error {
		for len(keys) > 0 {
			// A batch stops at a key DeleteFlow took meanwhile: skip it.
			n, err := s.objs.Flows.BatchDelete(keys, nil)
			if err == nil {
				return nil
			}
			if !errors.Is(err, ebpf.ErrKeyNotExist) {
				return err
			}
			keys = keys[n+1:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete IPv4 flows moved to flows4: %w", err)
	}
	s.moving4.Store(false)
	return nil
}

// previousProgramAttached reports whether an XDP link pinned in the pin
// path runs another program than s's on an interface: a previous govsd's.
func (s *Steering) previousProgramAttached() (bool, error) {
	info, err := s.objs.Steer.Info()
	if err != nil {
		return false, fmt.Errorf("steering program info: %w", err)
	}
	id, _ := info.ID()
	names, err := PinnedInterfaces(s.pinPath)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		l, err := link.LoadPinnedLink(filepath.Join(s.pinPath, linkPinName(name)), nil)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("open pinned link of %s: %w", name, err)
		}
		li, err := l.Info()
		l.Close()
		if err != nil {
			return false, fmt.Errorf("pinned link of %s: %w", name, err)
		}
		// A link whose interface is gone (ifindex 0) runs nowhere.
		if xdp := li.XDP(); xdp != nil && xdp.Ifindex != 0 && li.Program != id {
			return true, nil
		}
	}
	return false, nil
}

// Adopted reports whether LoadSteeringWith reused pinned state maps, a
// previous director process's: its flow entries, their generation and its
// SYN cookie key.
func (s *Steering) Adopted() bool { return s.adopted }

// SynCookieKey returns the SYN cookie key in the program's map; ok is false
// when it was never set (all zeros), so that the caller draws one. An
// adopted key must be kept: the cookies minted while no process ran were
// made with it.
func (s *Steering) SynCookieKey() (key [16]byte, ok bool, err error) {
	var v steerSyncookieKey
	if err := s.objs.SyncookieKeys.Lookup(uint32(0), &v); err != nil {
		return key, false, fmt.Errorf("read syn cookie key: %w", err)
	}
	binary.LittleEndian.PutUint64(key[0:8], v.K0)
	binary.LittleEndian.PutUint64(key[8:16], v.K1)
	return key, v.K0 != 0 || v.K1 != 0, nil
}

// AttachPinned attaches the program to interface name (ifindex) and pins
// its link as PinPath/xdp_<name>, so that it outlives the process. If a
// previous process's link is pinned there on the same ifindex, the program
// is swapped on it atomically (no packet meets no program or the kernel
// path): replaced is true and used is the mode netlink reports for the
// interface (the link keeps the mode it was created with; mode is only
// the fallback). A pinned link of another ifindex (the interface was
// recreated) is dropped first. Without a PinPath it is Attach.
func (s *Steering) AttachPinned(ifindex int, name string, mode Mode) (used Mode, replaced bool, err error) {
	if s.pinPath == "" {
		used, err := s.Attach(ifindex, mode)
		return used, false, err
	}
	if name == "" || strings.ContainsRune(name, '/') {
		return 0, false, fmt.Errorf("attach xdp to ifindex %d: invalid interface name %q", ifindex, name)
	}
	a := &s.attached
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.links[ifindex]; ok {
		return 0, false, fmt.Errorf("attach xdp to %s (ifindex %d): already attached", name, ifindex)
	}
	path := filepath.Join(s.pinPath, linkPinName(name))

	old, err := link.LoadPinnedLink(path, nil)
	switch {
	case err == nil:
		if pinnedIfindex(old) == ifindex {
			if err := old.Update(s.objs.Steer); err != nil {
				old.Close()
				return 0, false, fmt.Errorf("swap xdp program on %s (ifindex %d): %w", name, ifindex, err)
			}
			a.add(ifindex, &attachment{l: old, name: name, pinned: true})
			return attachedMode(ifindex, mode), true, s.finishMove4After("swap on " + name)
		}
		// Another interface's link (or a detached one, ifindex 0): unpinned
		// and closed, it goes away with the program it held.
		err = old.Unpin()
		old.Close()
		if err != nil {
			return 0, false, fmt.Errorf("drop stale pinned link %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return 0, false, fmt.Errorf("open pinned link %s: %w", path, err)
	}

	l, used, err := attachLink(s.objs.Steer, ifindex, mode)
	if err != nil {
		return 0, false, err
	}
	if err := l.Pin(path); err != nil {
		l.Close()
		return 0, false, fmt.Errorf("pin xdp link of %s: %w", name, err)
	}
	a.add(ifindex, &attachment{l: l, name: name, pinned: true})
	return used, false, s.finishMove4After("attach to " + name)
}

// finishMove4After runs finishMove4 after what (an attach or release that
// succeeded): its error says that this much was done.
func (s *Steering) finishMove4After(what string) error {
	if err := s.finishMove4(); err != nil {
		return fmt.Errorf("%s done, but: %w", what, err)
	}
	return nil
}

// pinnedIfindex returns the interface of an XDP link, 0 when it is not an
// XDP link or its interface is gone.
func pinnedIfindex(l link.Link) int {
	info, err := l.Info()
	if err != nil || info.XDP() == nil {
		return 0
	}
	return int(info.XDP().Ifindex)
}

// ReleaseInterface stops serving interface name for good: its pinned link
// is unpinned and closed, which detaches the program. It is for interfaces
// dropped from the configuration, whether this Steering attached them or a
// previous process pinned them. An interface with nothing pinned is not an
// error.
func (s *Steering) ReleaseInterface(name string) error {
	if s.pinPath == "" {
		return nil
	}
	a := &s.attached
	a.mu.Lock()
	for ifindex, at := range a.links {
		if at.pinned && at.name == name {
			delete(a.links, ifindex)
			a.mu.Unlock()
			return releaseLink(at.l, name)
		}
	}
	a.mu.Unlock()
	if err := releasePinnedLink(filepath.Join(s.pinPath, linkPinName(name)), name); err != nil {
		return err
	}
	// It may have been the last interface the previous program ran on.
	return s.finishMove4After("release of " + name)
}

func releaseLink(l link.Link, name string) error {
	err := l.Unpin()
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("release xdp link of %s: %w", name, err)
	}
	return nil
}

// releasePinnedLink unpins and closes the link pinned at path, if any.
func releasePinnedLink(path, name string) error {
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open pinned link %s: %w", path, err)
	}
	return releaseLink(l, name)
}

// Unpin removes every pin of the program: its links (this process's and
// any other xdp_* link left in PinPath) and its state maps; the directory
// too once empty (the connection mirror's pin, conns, is the Store's to
// remove). The program stays attached until Close, which then detaches it
// and frees everything: it is how a director stops for good.
func (s *Steering) Unpin() error {
	if s.pinPath == "" {
		return nil
	}
	var errs []error
	held := map[string]bool{}
	a := &s.attached
	a.mu.Lock()
	for _, at := range a.links {
		if !at.pinned {
			continue
		}
		if err := at.l.Unpin(); err != nil {
			errs = append(errs, fmt.Errorf("unpin xdp link of %s: %w", at.name, err))
			continue
		}
		at.pinned = false
		held[at.name] = true
	}
	a.mu.Unlock()
	names, err := PinnedInterfaces(s.pinPath)
	errs = append(errs, err)
	for _, name := range names {
		if !held[name] {
			errs = append(errs, releasePinnedLink(filepath.Join(s.pinPath, linkPinName(name)), name))
		}
	}
	// Nothing is handed over any more: an unfinished moveFlows4 stops
	// (flows4 unpinned is a no-op then).
	s.moveMu.Lock()
	s.moving4.Store(false)
	s.moveMu.Unlock()
	for _, m := range []*ebpf.Map{s.objs.Flows, s.objs.Flows4, s.objs.FastCfg, s.objs.SyncookieKeys} {
		if err := m.Unpin(); err != nil {
			errs = append(errs, fmt.Errorf("unpin map: %w", err))
		}
	}
	if err := removePinDir(s.pinPath); err != nil && !errors.Is(err, unix.ENOTEMPTY) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removePinDir removes the empty pin directory; a missing one is fine, and
// so is a mount point (the directory is the bpf filesystem's root).
func removePinDir(dir string) error {
	err := os.Remove(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.EBUSY) {
		return nil
	}
	return fmt.Errorf("remove pin path: %w", err)
}

// PinnedInterfaces lists the interfaces with an XDP link pinned in pinPath
// (none when the directory does not exist).
func PinnedInterfaces(pinPath string) ([]string, error) {
	entries, err := os.ReadDir(pinPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pinned interfaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		if name := ifaceOfPin(e.Name()); name != "" && !e.IsDir() {
			names = append(names, name)
		}
	}
	return names, nil
}

// Cleanup removes what a director process left in pinPath when none runs
// any more: it detaches and unpins the XDP links, unpins the state maps and
// the connection mirror and removes the directory. It returns the names it
// removed. Entries that are not govs's stay (and so does the directory
// then). With a director running, its links stay attached through its own
// file descriptors until it exits.
func Cleanup(pinPath string) (removed []string, err error) {
	entries, err := os.ReadDir(pinPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cleanup %s: %w", pinPath, err)
	}
	// Never remove plain files: a pin path set by mistake to an ordinary
	// directory is left alone.
	if err := checkBPFFS(pinPath); err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(pinPath, name)
		switch {
		case e.IsDir():
			continue
		case ifaceOfPin(name) != "":
			if err := releasePinnedLink(path, ifaceOfPin(name)); err != nil {
				errs = append(errs, err)
				continue
			}
		case pinnedNames[name]:
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("cleanup: %w", err))
				continue
			}
		default:
			continue
		}
		removed = append(removed, name)
	}
	if err := removePinDir(pinPath); err != nil && !errors.Is(err, unix.ENOTEMPTY) {
		errs = append(errs, fmt.Errorf("cleanup: %w", err))
	}
	return removed, errors.Join(errs...)
}
