package bpf

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
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
// link's program when the last file descriptor to it closes: if the daemon
// dies, its interfaces fall back to the plain kernel path instead of
// redirecting into sockets nobody reads.
type attachments struct {
	mu    sync.Mutex
	links map[int]link.Link
}

func (a *attachments) attach(prog *ebpf.Program, ifindex int, mode Mode) (Mode, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.links[ifindex]; ok {
		return 0, fmt.Errorf("attach xdp to ifindex %d: already attached", ifindex)
	}

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
		return 0, fmt.Errorf("attach xdp to ifindex %d: invalid mode %v", ifindex, mode)
	}
	if err != nil {
		return 0, fmt.Errorf("attach xdp to ifindex %d in %v mode: %w", ifindex, mode, err)
	}
	if a.links == nil {
		a.links = make(map[int]link.Link)
	}
	a.links[ifindex] = l
	return used, nil
}

func attachXDP(prog *ebpf.Program, ifindex int, flags link.XDPAttachFlags) (link.Link, error) {
	return link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
}

func (a *attachments) detach(ifindex int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.links[ifindex]
	if !ok {
		return fmt.Errorf("detach xdp from ifindex %d: not attached", ifindex)
	}
	delete(a.links, ifindex)
	if err := l.Close(); err != nil {
		return fmt.Errorf("detach xdp from ifindex %d: %w", ifindex, err)
	}
	return nil
}

func (a *attachments) detachAll() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for ifindex, l := range a.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach xdp from ifindex %d: %w", ifindex, err))
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
