package testutil

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNetns runs fn on a fresh OS thread switched into the network namespace
// named name (as `ip netns` knows it) and returns fn's error. The thread
// stays locked and dies with its goroutine, so it never returns to the
// scheduler's pool inside the wrong namespace; sockets fn opens stay in
// the namespace. topo.NS.Do is the same for a namespace of a topology, on
// the calling goroutine.
func InNetns(name string, fn func() error) error {
	h, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer h.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
