package pktgen

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// xdpLinks are one program's native-mode XDP attachments, by interface
// index: what Sink and RefBalancer attach and detach.
type xdpLinks struct {
	name string // the program's, for errors

	mu    sync.Mutex
	links map[int]link.Link
}

func newXDPLinks(name string) xdpLinks { return xdpLinks{name: name, links: make(map[int]link.Link)} }

// attach attaches prog to an interface of the calling thread's network
// namespace, in native (driver) mode: veth has it, and it is the mode that
// receives frames a peer transmits with XDP_TX or XDP_REDIRECT.
func (x *xdpLinks) attach(prog *ebpf.Program, ifindex int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.links[ifindex]; ok {
		return fmt.Errorf("attach %s to ifindex %d: already attached", x.name, ifindex)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		return fmt.Errorf("attach %s to ifindex %d: %w", x.name, ifindex, err)
	}
	x.links[ifindex] = l
	return nil
}

// close detaches the program from every interface, then closes objs.
func (x *xdpLinks) close(objs interface{ Close() error }) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	var errs []error
	for ifindex, l := range x.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach %s from ifindex %d: %w", x.name, ifindex, err))
		}
		delete(x.links, ifindex)
	}
	if err := objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close %s objects: %w", x.name, err))
	}
	return errors.Join(errs...)
}
