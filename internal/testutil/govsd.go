package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govs/govs/internal/topo"
)

// SocketPlaceholder in a configuration is replaced by the control socket
// the harness chooses (see WriteConfig).
const SocketPlaceholder = "@SOCKET@"

// LogBuffer collects a process's output; it is safe for concurrent writes
// (stdout and stderr) and reads.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Build builds the named commands of govs (cmd/<name>) into dir.
func Build(dir string, names ...string) error {
	for _, name := range names {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "github.com/govs/govs/cmd/"+name).CombinedOutput()
		if err != nil {
			return fmt.Errorf("build %s: %w\n%s", name, err, out)
		}
	}
	return nil
}

// WriteConfig writes the configuration cfg to dir/govs.yaml with its
// SocketPlaceholder replaced by dir/govs.sock, and returns both paths.
func WriteConfig(dir, cfg string) (path, socket string, err error) {
	path, socket = filepath.Join(dir, "govs.yaml"), filepath.Join(dir, "govs.sock")
	cfg = strings.ReplaceAll(cfg, SocketPlaceholder, socket)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return "", "", err
	}
	return path, socket, nil
}

// WithPinPath returns cfg with the director's bpf_pin_path set to pin,
// unless cfg sets one itself. Processes under `ip netns exec` get a /sys
// of their own, without the host's bpf filesystem, so a test gives each
// govsd a directory on a bpffs it mounted.
func WithPinPath(cfg, pin string) string {
	if strings.Contains(cfg, "bpf_pin_path:") {
		return cfg
	}
	return strings.Replace(cfg, "director:\n", "director:\n  bpf_pin_path: "+pin+"\n", 1)
}

// Govsd is a govsd process the harness started: its configuration file
// and control socket, and its output.
type Govsd struct {
	Cmd    *exec.Cmd
	Config string // the configuration file (-c)
	Socket string // the control socket that configuration names

	logs LogBuffer
	done chan struct{}
}

// StartGovsd starts cmd, a command line that runs govsd with the
// configuration file config (directly, or under ip netns exec, nice,
// taskset...), collecting its output. It does not wait for govsd to come
// up: see WaitReady.
func StartGovsd(cmd *exec.Cmd, config, socket string) (*Govsd, error) {
	g := &Govsd{Cmd: cmd, Config: config, Socket: socket, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &g.logs, &g.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start govsd: %w", err)
	}
	go func() { cmd.Wait(); close(g.done) }()
	return g, nil
}

// Logs returns what govsd has written so far.
func (g *Govsd) Logs() string { return g.logs.String() }

// Done is closed when the process has exited.
func (g *Govsd) Done() <-chan struct{} { return g.done }

// WaitReady waits until govsd's control socket answers and then until
// ready (if not nil) reports true, polling both. It fails early when the
// process exits.
func (g *Govsd) WaitReady(timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if c, err := net.Dial("unix", g.Socket); err == nil {
			c.Close()
			if ready == nil || ready() {
				return nil
			}
		}
		select {
		case <-g.done:
			return fmt.Errorf("govsd exited early: %v\n%s", g.Cmd.ProcessState, g.Logs())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("govsd did not come up in time\n%s", g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop signals the process (the one started, by PID) and waits for it to
// exit; after grace it kills it. It returns at once if the process has
// already exited.
func (g *Govsd) Stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-g.done:
		return
	default:
	}
	g.Cmd.Process.Signal(sig)
	select {
	case <-g.done:
	case <-time.After(grace):
		g.Cmd.Process.Kill()
		<-g.done
	}
}

// Adm runs the govsadm binary at bin against the control socket and
// returns its combined output.
func Adm(bin, socket string, args ...string) (string, error) {
	out, err := exec.Command(bin, append([]string{"--socket", socket}, args...)...).CombinedOutput()
	return string(out), err
}

// XDPAttached reports whether dev in ns has an XDP program attached (in
// any mode).
func XDPAttached(ns *topo.NS, dev string) (bool, error) {
	out, err := ns.Exec("ip", "-d", "link", "show", "dev", dev)
	if err != nil {
		return false, err
	}
	return strings.Contains(out, "prog/xdp") || strings.Contains(out, "xdpgeneric") || strings.Contains(out, "xdpdrv"), nil
}
