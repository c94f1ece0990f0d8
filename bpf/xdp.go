package bpf

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// Mode selects how an XDP program is attached to an interface.
type Mode int

const (
	// ModeAuto tries native mode and falls back to generic mode.
	ModeAuto Mode = iota
	// ModeNative runs the program in the driver, before any skb is built.
	ModeNative
	// ModeGeneric runs the program on skbs; it works with every driver,
	// at a fraction of native speed, and is what AF_XDP copy mode pairs with.
	ModeGeneric
)

// ParseMode parses "auto" (or ""), "native" (or "driver", "drv") and
// "generic" (or "skb"), ignoring case.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ModeAuto, nil
	case "native", "driver", "drv":
		return ModeNative, nil
	case "generic", "skb":
		return ModeGeneric, nil
	}
	return 0, fmt.Errorf("unknown xdp mode %q (want auto, native or generic)", s)
}

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// attachments holds the XDP links of one program, one per interface. Links
// (rather than netlink attachment) are used because the kernel removes a
// link's program when the last reference to it goes: without pinning, if
// the daemon dies, its interfaces fall back to the plain kernel path
// instead of redirecting into sockets nobody reads; pinned (pin.go), the
// program stays until the next daemon swaps its own in on the same link.
type attachments struct {
	mu    sync.Mutex
	links map[int]*attachment
}

// attachment is one interface's link.
type attachment struct {
	l      link.Link
	name   string // the interface's name, for pinned links
	pinned bool   // pinned in the pin path: closing it does not detach
}

func (a *attachments) add(ifindex int, at *attachment) {
	if a.links == nil {
		a.links = make(map[int]*attachment)
	}
	a.links[ifindex] = at
}

func (a *attachments) attach(prog *ebpf.Program, ifindex int, mode Mode) (Mode, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.links[ifindex]; ok {
		return 0, fmt.Errorf("attach xdp to ifindex %d: already attached", ifindex)
	}
	l, used, err := attachLink(prog, ifindex, mode)
	if err != nil {
		return 0, err
	}
	a.add(ifindex, &attachment{l: l})
	return used, nil
}

// attachLink attaches prog to an interface in mode and returns the link and
// the mode in use (ModeAuto tries native first).
func attachLink(prog *ebpf.Program, ifindex int, mode Mode) (link.Link, Mode, error) {
	var (
		l   link.Link
		err error
	)
	used := mode
	switch mode {
	case ModeNative:
		l, err = attachXDP(prog, ifindex, link.XDPDriverMode)
	case ModeGeneric:
		l, err = attachXDP(prog, ifindex, link.XDPGenericMode)
	case ModeAuto:
		used = ModeNative
		l, err = attachXDP(prog, ifindex, link.XDPDriverMode)
		if err != nil {
			nativeErr := err
			used = ModeGeneric
			l, err = attachXDP(prog, ifindex, link.XDPGenericMode)
			if err != nil {
				err = errors.Join(fmt.Errorf("native: %w", nativeErr), fmt.Errorf("generic: %w", err))
			}
		}
	default:
		return nil, 0, fmt.Errorf("attach xdp to ifindex %d: invalid mode %v", ifindex, mode)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("attach xdp to ifindex %d in %v mode: %w", ifindex, mode, err)
	}
	return l, used, nil
}

func attachXDP(prog *ebpf.Program, ifindex int, flags link.XDPAttachFlags) (link.Link, error) {
	return link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
}

// attachedMode returns the mode in which netlink reports an XDP program
// attached to the interface, or fallback when it reports none (or fails).
func attachedMode(ifindex int, fallback Mode) Mode {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil || l.Attrs().Xdp == nil || !l.Attrs().Xdp.Attached {
		return fallback
	}
	switch l.Attrs().Xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		return ModeNative
	case nl.XDP_ATTACHED_SKB:
		return ModeGeneric
	}
	return fallback
}

// detach removes the program from an interface: a pinned link is unpinned
// first, since closing it alone would leave the program attached.
func (a *attachments) detach(ifindex int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.links[ifindex]
	if !ok {
		return fmt.Errorf("detach xdp from ifindex %d: not attached", ifindex)
	}
	delete(a.links, ifindex)
	var err error
	if at.pinned {
		err = at.l.Unpin()
	}
	if cerr := at.l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("detach xdp from ifindex %d: %w", ifindex, err)
	}
	return nil
}

// detachAll closes every link: unpinned ones detach, pinned ones stay
// attached (Unpin first to detach them too).
func (a *attachments) detachAll() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for ifindex, at := range a.links {
		if err := at.l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close xdp link of ifindex %d: %w", ifindex, err))
		}
		delete(a.links, ifindex)
	}
	return errors.Join(errs...)
}

// loadError wraps an object load failure; when the verifier rejected a
// program, its full log is appended, since the error text alone only holds
// the last lines.
func loadError(what string, err error) error {
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return fmt.Errorf("load %s objects: %w\nverifier log:\n%+v", what, err, verr)
	}
	return fmt.Errorf("load %s objects: %w", what, err)
}
