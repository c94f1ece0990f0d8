package test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/topo"
)

// keepalivedConfig is a VRRP instance that floats the VIP on the client
// side and the real servers' gateway (the DIP) on the other, as an LVS-NAT
// pair needs. The README shows the same configuration.
const keepalivedConfig = `
global_defs {
  router_id %s
}
vrrp_instance govs {
  state BACKUP
  interface d0
  virtual_router_id 51
  priority %d
  advert_int 1
  virtual_ipaddress {
    198.18.0.100/32 dev d0
    198.18.1.254/24 dev d1
  }
}
`

func startKeepalived(t *testing.T, ns *topo.NS, name string, priority int) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(keepalivedConfig, name, priority)), 0o644); err != nil {
		t.Fatal(err)
	}
	return startProcess(t, ns, "keepalived", "--dont-fork", "--log-console", "--vrrp",
		"-f", conf, "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))
}

func hasAddr(ns *topo.NS, dev, addr string) bool {
	out, _ := ns.Exec("ip", "addr", "show", "dev", dev)
	return strings.Contains(out, addr+"/")
}

// TestKeepalivedFailover: keepalived's VRRP moves the VIP and the real
// servers' gateway from one govsd director to the other; govsd's connection
// sync keeps an established LVS-NAT connection on its real server.
func TestKeepalivedFailover(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (Debian package keepalived; .ci/deps installs it)")
	}
	l := newSyncLabVia(t, "198.18.1.254")
	servers := &topo.Lab{Reals: l.reals}
	stop, err := servers.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	key := writeSyncKey(t)
	cfg := func(role string) string {
		return fmt.Sprintf(`
director:
  interfaces: [d0, d1]
  control_socket: @SOCKET@
  metrics_listen: ""
  sync: {role: %s, interface: d1, group: 239.255.81.49, sync_id: 9, key_file: %s}
services:
  - name: web
    vip: 198.18.0.100
    port: 80
    protocol: tcp
    scheduler: rr
    real_servers:
      - {address: 198.18.1.1, port: 8080}
      - {address: 198.18.1.2, port: 8080}
`, role, key)
	}
	// Both directors run govsd all the time, as with keepalived in front
	// of IPVS; the sync role would follow VRRP through notify scripts.
	startGovsd(t, l.dirA, cfg("master"))
	backup := startGovsd(t, l.dirB, cfg("backup"))
	ka := startKeepalived(t, l.dirA, "dira", 150)
	startKeepalived(t, l.dirB, "dirb", 100)
	waitFor(t, 15*time.Second, "director A to become VRRP master", func() bool {
		return hasAddr(l.dirA, "d0", "198.18.0.100") && hasAddr(l.dirA, "d1", "198.18.1.254")
	})

	c, err := l.client.Dial("tcp", "198.18.0.100:80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	first := keepAliveGet(t, rw)
	local := c.LocalAddr().String()
	waitFor(t, 3*time.Second, "the backup to learn the connection", func() bool {
		return strings.Contains(backup.admOK(t, "-L", "-n", "-c"), local)
	})

	// Director A's keepalived stops: VRRP hands both addresses to B.
	ka.Process.Signal(syscall.SIGTERM)
	waitFor(t, 10*time.Second, "director B to take the VIP and the gateway", func() bool {
		return hasAddr(l.dirB, "d0", "198.18.0.100") && hasAddr(l.dirB, "d1", "198.18.1.254")
	})
	before := backup.admOK(t, "--counters")
	for i := 0; i < 3; i++ {
		if got := keepAliveGet(t, rw); got != first {
			t.Fatalf("after the VRRP failover the connection reached %s, want %s", got, first)
		}
	}
	if after := backup.admOK(t, "--counters"); after == before {
		t.Errorf("director B's counters did not move: the traffic did not go through it")
	}
	t.Logf("connection %s stayed on %s across the keepalived failover", local, first)
}
