package topo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// Topology owns a set of namespaces; Close deletes them all.
type Topology struct {
	Prefix string

	mu  sync.Mutex
	nss []*NS
}

// New returns an empty topology whose namespaces are named prefix+name.
func New(prefix string) *Topology { return &Topology{Prefix: prefix} }

// NS is one network namespace of a topology.
type NS struct {
	Name string // full name, as `ip netns` knows it
	topo *Topology
}

// AddNS creates a namespace with loopback up.
func (t *Topology) AddNS(name string) (*NS, error) {
	full := t.Prefix + name
	// A namespace left over from a crashed run with the same name goes first.
	_ = exec.Command("ip", "netns", "del", full).Run()
	if err := run("ip", "netns", "add", full); err != nil {
		return nil, err
	}
	ns := &NS{Name: full, topo: t}
	t.mu.Lock()
	t.nss = append(t.nss, ns)
	t.mu.Unlock()
	if _, err := ns.Exec("ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	// No duplicate address detection on the links made here, link-local
	// addresses included (the others are added nodad): while an
	// interface's link-local address is tentative, the kernel sends no
	// neighbour solicitation for a packet whose source is an address of
	// another interface (a DR or TUN real server's answer from the VIP on
	// its loopback) and waits for the neighbour timer: the first SYN-ACK
	// of a freshly made lab came a second late. A server that has been up
	// for a second never sees it.
	if _, err := ns.Exec("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"); err != nil {
		return nil, err
	}
	return ns, nil
}

// Close deletes every namespace of the topology (which also removes the veth
// pairs inside them, and with them any XDP program attached there).
func (t *Topology) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for i := len(t.nss) - 1; i >= 0; i-- {
		if err := run("ip", "netns", "del", t.nss[i].Name); err != nil {
			errs = append(errs, err)
		}
	}
	t.nss = nil
	return errors.Join(errs...)
}

// Exec runs a command inside the namespace and returns its combined output.
func (n *NS) Exec(name string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", n.Name, name}, args...)
	cmd := exec.Command("ip", full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: ip %s: %w: %s", n.Name, strings.Join(full, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// MustExec runs commands in order and stops at the first error.
func (n *NS) MustExec(cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := n.Exec(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// Command returns an exec.Cmd that runs inside the namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	full := append([]string{"netns", "exec", n.Name, name}, args...)
	return exec.CommandContext(ctx, "ip", full...)
}

// Do runs fn with the calling goroutine's OS thread inside the namespace.
// Sockets created by fn stay in the namespace after Do returns, so listeners
// and connections made here can be served from any goroutine.
func (n *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(n.Name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", n.Name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", n.Name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace; do not let the runtime
		// reuse it: it dies with the goroutine when it exits locked.
		panic(fmt.Sprintf("topo: cannot return to the original netns: %v", err))
	}
	return fnErr
}

// Listen opens a listener inside the namespace.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() (err error) { l, err = net.Listen(network, addr); return })
	return l, err
}

// ListenPacket opens a packet socket inside the namespace.
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() (err error) { c, err = net.ListenPacket(network, addr); return })
	return c, err
}

// Dial connects from inside the namespace.
func (n *NS) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) { c, err = net.DialTimeout(network, addr, timeout); return })
	return c, err
}

// DialContext is Dial for use as http.Transport.DialContext.
func (n *NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return
	})
	return c, err
}

// Veth creates a veth pair with one end in each namespace, both up, with the
// kernel's default offloads, as a container's veth has them: TX checksum
// offload on, so a sender's TCP and UDP segments reach the peer (and an XDP
// program on it) with their checksums unfinished, which govs finishes.
// TxChecksumOff turns that off where a test needs complete checksums on
// the wire.
func Veth(a *NS, aName string, b *NS, bName string) error { return VethQueues(a, aName, b, bName, 1) }

// VethQueues is Veth with several TX and RX queues on each end, so that
// flows spread over RX queues as on a multi-queue NIC.
func VethQueues(a *NS, aName string, b *NS, bName string, queues int) error {
	q := strconv.Itoa(max(queues, 1))
	tmp := fmt.Sprintf("gv%d%s", os.Getpid()%100000, bName)
	if len(tmp) > 15 {
		tmp = tmp[:15]
	}
	if err := run("ip", "link", "add", aName, "numtxqueues", q, "numrxqueues", q, "netns", a.Name, "type", "veth",
		"peer", "name", tmp, "numtxqueues", q, "numrxqueues", q, "netns", b.Name); err != nil {
		return err
	}
	if _, err := b.Exec("ip", "link", "set", tmp, "name", bName); err != nil {
		return err
	}
	for _, e := range []struct {
		ns  *NS
		dev string
	}{{a, aName}, {b, bName}} {
		if _, err := e.ns.Exec("ip", "link", "set", e.dev, "up"); err != nil {
			return err
		}
	}
	return nil
}

// TxChecksumOff turns TX checksum offload off on an interface of the
// namespace: its sender then finishes every TCP and UDP checksum itself,
// as frames from a real NIC arrive (ethtool -K DEV tx off).
func (n *NS) TxChecksumOff(dev string) error {
	_, err := n.Exec("ethtool", "-K", dev, "tx", "off")
	return err
}

// MAC returns the hardware address of an interface in the namespace.
func (n *NS) MAC(dev string) (net.HardwareAddr, error) {
	var hw net.HardwareAddr
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		hw = ifi.HardwareAddr
		return nil
	})
	return hw, err
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
