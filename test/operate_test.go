package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// operateConfig is a web service of the lab's first n real servers, with
// the metrics listener on.
func operateConfig(n int) string {
	return testutil.Config{
		Director: []string{"metrics_listen: 127.0.0.1:9469"},
		Services: []testutil.Service{httpService("web", labVIP4, 80, n)},
	}.YAML()
}

// admOK runs govsadm and fails the test on a non-zero exit.
func (g *govsd) admOK(t *testing.T, args ...string) string {
	t.Helper()
	out, err := g.adm(args...)
	if err != nil {
		t.Fatalf("govsadm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// admFails runs govsadm, wants a non-zero exit and a message containing want.
func (g *govsd) admFails(t *testing.T, want string, args ...string) {
	t.Helper()
	out, err := g.adm(args...)
	if err == nil {
		t.Errorf("govsadm %s succeeded, want an error:\n%s", strings.Join(args, " "), out)
	} else if !strings.Contains(strings.ToLower(out), strings.ToLower(want)) {
		t.Errorf("govsadm %s said %q, want it to mention %q", strings.Join(args, " "), out, want)
	}
}

// keepAliveGet sends a request on an open HTTP/1.1 connection and returns
// the name of the real server that answered.
func keepAliveGet(t *testing.T, rw *bufio.ReadWriter) string {
	t.Helper()
	fmt.Fprintf(rw, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
	rw.Flush()
	length := 0
	for {
		line, err := rw.ReadString('\n')
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
			length, _ = strconv.Atoi(v)
		}
	}
	body := make([]byte, length)
	if _, err := ioReadFull(rw, body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	return strings.Fields(string(body))[0]
}

func ioReadFull(r *bufio.ReadWriter, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func metric(t *testing.T, lab *topo.Lab, name string) float64 {
	t.Helper()
	body, err := topo.Get(context.Background(), topo.HTTPClient(lab.Director, 2*time.Second), "http://127.0.0.1:9469/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	re := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s not exported", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestOperate(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "op", topo.LabOptions{RealServers: 3})
	if err := lab.AddVIP(mustAddr("198.18.0.100")); err != nil {
		t.Fatal(err)
	}
	stop, err := lab.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	g := startGovsd(t, lab.Director, operateConfig(1))

	t.Run("govsadm adds a service that carries traffic", func(t *testing.T) {
		g.admOK(t, "-A", "-t", "198.18.0.100:81", "-s", "rr")
		g.admOK(t, "-a", "-t", "198.18.0.100:81", "-r", "198.18.1.2:8080", "-m")
		g.admOK(t, "-a", "-t", "198.18.0.100:81", "-r", "198.18.1.3:8080", "-m", "-w", "2")
		hits := spread(t, lab, "http://198.18.0.100:81/", 12)
		if hits["rs2"] == 0 || hits["rs3"] == 0 || hits["rs1"] != 0 {
			t.Errorf("service added with govsadm spread %v, want rs2 and rs3 only", hits)
		}
		out := g.admOK(t, "-L", "-n")
		for _, want := range []string{"TCP  198.18.0.100:81 rr", "-> 198.18.1.3:8080", "Masq    2"} {
			if !strings.Contains(out, want) {
				t.Errorf("-L -n lacks %q:\n%s", want, out)
			}
		}
		g.admFails(t, "exists", "-a", "-t", "198.18.0.100:81", "-r", "198.18.1.3:8080", "-m")
		g.admFails(t, "no such service", "-D", "-t", "198.18.0.100:99")
		g.admFails(t, "", "-a", "-t", "198.18.0.100:81", "-r", "not-an-address", "-m")
	})

	t.Run("-d drains: established connections go on", func(t *testing.T) {
		c, err := lab.Client.Dial("tcp", "198.18.0.100:81", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
		first := keepAliveGet(t, rw)
		rs := map[string]string{"rs2": "198.18.1.2:8080", "rs3": "198.18.1.3:8080"}[first]
		g.admOK(t, "-d", "-t", "198.18.0.100:81", "-r", rs)
		for i := 0; i < 5; i++ {
			if got := keepAliveGet(t, rw); got != first {
				t.Fatalf("after -d, the established connection moved from %s to %s", first, got)
			}
		}
		for name := range spread(t, lab, "http://198.18.0.100:81/", 6) {
			if name == first {
				t.Errorf("new connections still go to the deleted server %s", first)
			}
		}
	})

	t.Run("stats, rates and zero", func(t *testing.T) {
		out := g.admOK(t, "-L", "-n", "--stats", "--exact")
		if !regexp.MustCompile(`TCP  198\.18\.0\.100:81\s+[1-9]\d*\s+[1-9]`).MatchString(out) {
			t.Errorf("--stats shows no traffic for :81:\n%s", out)
		}
		g.admOK(t, "-Z")
		out = g.admOK(t, "-L", "-n", "--stats", "--exact")
		if !regexp.MustCompile(`TCP  198\.18\.0\.100:81\s+0\s+0\s+0\s+0\s+0`).MatchString(out) {
			t.Errorf("-Z did not zero the counters:\n%s", out)
		}
	})

	t.Run("save, clear, restore", func(t *testing.T) {
		saved := g.admOK(t, "-S", "-n")
		if !strings.Contains(saved, "-A -t 198.18.0.100:81 -s rr") {
			t.Fatalf("-S output lacks the service:\n%s", saved)
		}
		g.admOK(t, "-C")
		if out := g.admOK(t, "-L", "-n"); strings.Contains(out, "198.18.0.100") {
			t.Fatalf("-C left services:\n%s", out)
		}
		cmd := exec.Command(filepath.Join(binDir, "govsadm"), "--socket", g.Socket, "-R")
		cmd.Stdin = strings.NewReader(saved)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("-R: %v\n%s", err, out)
		}
		if again := g.admOK(t, "-S", "-n"); again != saved {
			t.Errorf("-S after -R differs:\n%s\nwant:\n%s", again, saved)
		}
		spread(t, lab, "http://198.18.0.100:81/", 3)
	})

	t.Run("metrics move with traffic", func(t *testing.T) {
		inbound := regexp.QuoteMeta(`govs_datapath_packets_total{event="inbound"}`)
		before := metric(t, lab, inbound)
		spread(t, lab, "http://198.18.0.100:80/", 5)
		if after := metric(t, lab, inbound); after <= before {
			t.Errorf("inbound packets metric did not move: %v -> %v", before, after)
		}
		// -C and -R renamed the services (ipvsadm's syntax has no names).
		if v := metric(t, lab, `govs_real_server_connections_total\{server="198\.18\.1\.1:8080",service="[^"]*"\}`); v < 5 {
			t.Errorf("per-server connections metric %v, want >= 5", v)
		}
	})

	t.Run("SIGHUP", func(t *testing.T) {
		cfg := strings.ReplaceAll(operateConfig(2), testutil.SocketPlaceholder, g.Socket)
		if err := os.WriteFile(g.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		g.Cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, 3*time.Second, "the new server after SIGHUP", func() bool {
			return strings.Contains(g.admOK(t, "-L", "-n"), "-> 198.18.1.2:8080")
		})
		if hits := spread(t, lab, "http://198.18.0.100:80/", 6); hits["rs2"] == 0 {
			t.Errorf("the server added by SIGHUP takes no traffic: %v", hits)
		}
		before := g.admOK(t, "-L", "-n")
		if err := os.WriteFile(g.Config, []byte("director:\n  interfaces: [d0]\nservices:\n  - name: x\n    vip: nonsense\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		g.Cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, 3*time.Second, "the refusal in the log", func() bool {
			return strings.Contains(g.Logs(), "reload refused")
		})
		if !strings.Contains(g.Logs(), "services[0].vip") {
			t.Errorf("the log does not say why the reload was refused:\n%s", g.Logs())
		}
		if after := g.admOK(t, "-L", "-n"); after != before {
			t.Errorf("a broken file changed the running table:\n%s\nwas:\n%s", after, before)
		}
		spread(t, lab, "http://198.18.0.100:80/", 2)
	})

	t.Run("daemon not running", func(t *testing.T) {
		out, err := exec.Command(filepath.Join(binDir, "govsadm"), "--socket", "/nonexistent/govs.sock", "-L", "-n").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "/nonexistent/govs.sock") {
			t.Errorf("govsadm without a daemon: %v %q, want an error naming the socket", err, out)
		}
	})
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
