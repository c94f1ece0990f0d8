package test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

var binDir string

// pinRoot is a bpf filesystem mounted for this test process: govsd runs
// under ip netns exec, which gives it a fresh /sys (without the host's
// bpffs), so its pins go here, where every govsd the tests start (and
// govsd --cleanup) sees them.
var pinRoot string

func TestMain(m *testing.M) {
	code := func() int {
		if !testutil.IsRoot() {
			return m.Run() // every test skips; nothing to build
		}
		dir, err := os.MkdirTemp("", "govs-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		pinRoot = filepath.Join(dir, "bpffs")
		if err := os.Mkdir(pinRoot, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := syscall.Mount("bpf", pinRoot, "bpf", 0, "mode=0700"); err != nil {
			fmt.Fprintln(os.Stderr, "mount a bpf filesystem for the tests:", err)
			return 1
		}
		defer syscall.Unmount(pinRoot, syscall.MNT_DETACH)
		if err := testutil.Build(dir, "govsd", "govsadm"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

func needRoot(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t, "end-to-end tests build network namespaces and run XDP and AF_XDP")
}

// prefix returns a namespace prefix unique to this test process.
func prefix(tag string) string { return fmt.Sprintf("ge%d%s", os.Getpid()%10000, tag) }

// newLab builds the standard topology and removes it when the test ends.
func newLab(t *testing.T, tag string, o topo.LabOptions) *topo.Lab {
	t.Helper()
	lab, err := topo.NewLab(prefix(tag), o)
	if err != nil {
		t.Fatalf("build topology: %v", err)
	}
	t.Cleanup(func() { lab.Close() })
	return lab
}

// newServingLab is newLab with the VIPs (198.18.0.100 when none are given)
// on the director and every real server answering HTTP on 8080 and UDP
// echo on 5353 until the test ends.
func newServingLab(t *testing.T, tag string, o topo.LabOptions, vips ...string) *topo.Lab {
	t.Helper()
	lab := newLab(t, tag, o)
	if len(vips) == 0 {
		vips = []string{"198.18.0.100"}
	}
	for _, vip := range vips {
		if err := lab.AddVIP(mustAddr(vip)); err != nil {
			t.Fatal(err)
		}
	}
	stopHTTP, err := lab.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopHTTP)
	stopUDP, err := lab.ServeUDPEcho(5353)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopUDP)
	return lab
}

// govsd is a govsd process running in the director namespace ns of a
// test (testutil's harness, tied to the test's lifetime).
type govsd struct {
	*testutil.Govsd
	t  *testing.T
	ns *topo.NS
}

// pinSeq numbers the bpffs directories of the govsds this process starts.
var pinSeq atomic.Int32

// startGovsd writes cfg (with a control socket of the test's own, and a
// bpf_pin_path of its own unless cfg sets one) and runs govsd in ns until
// the test ends, when it is stopped for good: SIGTERM, then govsd
// --cleanup (what a stopped govsd leaves for its successor is removed). It
// waits until the control socket answers.
func startGovsd(t *testing.T, ns *topo.NS, cfg string) *govsd {
	t.Helper()
	dir := t.TempDir()
	cfg = testutil.WithPinPath(cfg, filepath.Join(pinRoot, fmt.Sprintf("govs%d", pinSeq.Add(1))))
	path, socket, err := testutil.WriteConfig(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A copy for govsd --cleanup: a test may leave a broken file at path
	// (a refused reload).
	initial := filepath.Join(dir, "govs-initial.yaml")
	data, err := os.ReadFile(path)
	if err == nil {
		err = os.WriteFile(initial, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Registered before the process's own cleanup, so it runs after
		// it: the govsd has stopped (SIGTERM keeps its state).
		if out, err := ns.Exec(filepath.Join(binDir, "govsd"), "--cleanup", "-c", initial); err != nil {
			t.Errorf("govsd --cleanup: %v\n%s", err, out)
		}
	})
	return runGovsd(t, ns, path, socket)
}

// runGovsd runs govsd with the configuration file at path (whose control
// socket is socket) and extra arguments, and waits until its control
// socket answers; the process is stopped (SIGTERM) when the test ends.
func runGovsd(t *testing.T, ns *topo.NS, path, socket string, args ...string) *govsd {
	t.Helper()
	return runGovsdBin(t, ns, filepath.Join(binDir, "govsd"), path, socket, args...)
}

// runGovsdBin is runGovsd with the govsd binary at bin (another build of
// it: the upgrade procedure).
func runGovsdBin(t *testing.T, ns *topo.NS, bin, path, socket string, args ...string) *govsd {
	t.Helper()
	p, err := testutil.StartGovsd(ns.Command(context.Background(), bin, append([]string{"-c", path}, args...)...), path, socket)
	if err != nil {
		t.Fatal(err)
	}
	g := &govsd{Govsd: p, t: t, ns: ns}
	t.Cleanup(func() {
		g.stop(syscall.SIGTERM)
		if t.Failed() || os.Getenv("GOVS_E2E_LOGS") != "" {
			t.Logf("govsd (pid %d) log:\n%s", g.Cmd.Process.Pid, g.Logs())
		}
	})
	if err := g.WaitReady(15*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	return g
}

// stop signals govsd and waits for it (SIGKILL after 10 s).
func (g *govsd) stop(sig syscall.Signal) { g.Stop(sig, 10*time.Second) }

// shutdown stops govsd for good (govsadm --shutdown) and waits for it to
// exit.
func (g *govsd) shutdown(t *testing.T) {
	t.Helper()
	if out, err := g.adm("--shutdown"); err != nil {
		t.Fatalf("govsadm --shutdown: %v\n%s", err, out)
	}
	select {
	case <-g.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("govsd still runs 10 s after --shutdown")
	}
}

// adm runs govsadm against this govsd.
func (g *govsd) adm(args ...string) (string, error) {
	return testutil.Adm(filepath.Join(binDir, "govsadm"), g.Socket, args...)
}

// xdpAttached reports whether dev in ns has an XDP program.
func xdpAttached(t *testing.T, ns *topo.NS, dev string) bool {
	t.Helper()
	ok, err := testutil.XDPAttached(ns, dev)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// udpExchange sends msg from ns to addr and returns the answer.
func udpExchange(ns *topo.NS, addr, msg string, timeout time.Duration) (string, error) {
	c, err := ns.Dial("udp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// startProcess runs a helper program in ns until the test ends (SIGTERM,
// then SIGKILL after 5 s; only the process we started, by PID), and logs
// its output if the test failed.
func startProcess(t *testing.T, ns *topo.NS, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := ns.Command(context.Background(), name, args...)
	out := &testutil.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s %s log:\n%s", ns.Name, name, out)
		}
	})
	return cmd
}

// writeSyncKey writes a random shared key for the sync daemons.
func writeSyncKey(t *testing.T) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "sync.key")
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

// serveTCP runs a TCP server on port of every real server of lab until the
// test ends: each connection is handled by handle in a goroutine of its
// own, and closed after it.
func serveTCP(t *testing.T, lab *topo.Lab, port int, handle func(net.Conn)) {
	t.Helper()
	for _, rs := range lab.Reals {
		ln, err := rs.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					handle(c)
				}()
			}
		}()
	}
}
