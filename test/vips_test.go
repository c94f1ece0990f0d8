package test

import (
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// TestManageVIPs: with director.manage_vips govsd puts the VIPs on its
// interface, announces them (gratuitous ARP, unsolicited neighbour
// advertisement) so that a neighbour's stale entry is corrected at once, and
// takes them away when it stops.
func TestManageVIPs(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "vip", topo.LabOptions{RealServers: 1})
	stop, err := lab.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// The client believes the VIPs live at some other MAC (a previous
	// director, say).
	if err := lab.Client.MustExec(
		[]string{"ip", "neigh", "replace", "198.18.0.100", "lladdr", "02:00:00:00:00:99", "dev", topo.ClientIf, "nud", "stale"},
		[]string{"ip", "-6", "neigh", "replace", "2001:db8::100", "lladdr", "02:00:00:00:00:99", "dev", topo.ClientIf, "nud", "stale"},
	); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the neighbour table's locktime
	mac, err := lab.Director.MAC(topo.DirectorClientIf)
	if err != nil {
		t.Fatal(err)
	}
	g := startGovsd(t, lab.Director, testutil.Config{
		Director: []string{"manage_vips: true"},
		Services: []testutil.Service{httpService("web", labVIP4, 80, 1), httpService("web6", labVIP6, 80, 1)},
	}.YAML())
	out, _ := lab.Director.Exec("ip", "addr", "show", "dev", topo.DirectorClientIf)
	if !strings.Contains(out, "198.18.0.100/32") || !strings.Contains(out, "2001:db8::100/128") {
		t.Fatalf("VIPs not on %s:\n%s", topo.DirectorClientIf, out)
	}
	for _, vip := range []string{"198.18.0.100", "2001:db8::100"} {
		deadline := time.Now().Add(3 * time.Second)
		for {
			out, _ := lab.Client.Exec("ip", "neigh", "show", vip, "dev", topo.ClientIf)
			if strings.Contains(out, mac.String()) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("client's neighbour entry for %s was not corrected to %s: %q", vip, mac, out)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	spread(t, lab, "http://198.18.0.100/", 3)
	spread(t, lab, "http://[2001:db8::100]/", 3)
	// SIGTERM keeps the VIPs for the next govsd; a stop for good removes them.
	g.shutdown(t)
	out, _ = lab.Director.Exec("ip", "addr", "show", "dev", topo.DirectorClientIf)
	if strings.Contains(out, "198.18.0.100") || strings.Contains(out, "2001:db8::100") {
		t.Errorf("VIPs still on %s after govsadm --shutdown:\n%s", topo.DirectorClientIf, out)
	}
}
