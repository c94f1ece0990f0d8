package test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/govs/govs/control"
	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// TestMultiQueue runs govsd on interfaces with two RX queues: two workers,
// and requests and replies of one connection arriving on different queues.
// Every connection must still work, which needs the hand-off of frames to
// the worker that owns the connection.
func TestMultiQueue(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "mq", topo.LabOptions{RealServers: 3, Queues: 2})
	if err := lab.AddVIP(mustAddr("198.18.0.100")); err != nil {
		t.Fatal(err)
	}
	if err := lab.AddDirectorAddr(topo.DirectorRealIf, mustAddr("198.18.1.250")); err != nil {
		t.Fatal(err)
	}
	stop, err := lab.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	fullnat := httpService("fullnat", labVIP4, 81, 3)
	fullnat.Forward, fullnat.LocalAddresses = "fullnat", []string{"198.18.1.250"}
	// Persistence holds per client, not per worker: the client's
	// connections spread over both queues and both workers.
	sticky := httpService("sticky", labVIP4, 82, 3)
	sticky.Settings = append(sticky.Settings, "persistence: {timeout: 300s}")
	stickyFull := httpService("sticky-fullnat", labVIP4, 83, 3)
	stickyFull.Forward, stickyFull.LocalAddresses = "fullnat", []string{"198.18.1.250"}
	stickyFull.Settings = append(stickyFull.Settings, "persistence: {timeout: 300s}")
	g := startGovsd(t, lab.Director, testutil.Config{Services: []testutil.Service{httpService("nat", labVIP4, 80, 3), fullnat, sticky, stickyFull}}.YAML())
	if !strings.Contains(g.Logs(), "queues=2") {
		t.Fatalf("govsd did not serve two queues:\n%s", g.Logs())
	}
	for _, url := range []string{"http://198.18.0.100:80/", "http://198.18.0.100:81/"} {
		if hits := spread(t, lab, url, 40); len(hits) != 3 {
			t.Errorf("%s: spread %v, want all three servers", url, hits)
		}
	}
	for _, url := range []string{"http://198.18.0.100:82/", "http://198.18.0.100:83/"} {
		if hits := spread(t, lab, url, 40); len(hits) != 1 {
			t.Errorf("%s (persistent): spread %v, want one server for the one client", url, hits)
		}
	}
	// The listing shows one template per client and service, as IPVS's,
	// though each worker that served the client holds one.
	conns := g.admOK(t, "-L", "-n", "-c", "--persistent-conn")
	for _, vport := range []string{"198.18.0.100:82", "198.18.0.100:83"} {
		n := 0
		for _, line := range strings.Split(conns, "\n") {
			if strings.Contains(line, "NONE") && strings.Contains(line, vport) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d template lines, want 1:\n%s", vport, n, conns)
		}
	}
	out, err := g.adm("--counters", "--json")
	if err != nil {
		t.Fatalf("counters: %v\n%s", err, out)
	}
	var k control.Counters
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatalf("counters: %v\n%s", err, out)
	}
	t.Logf("handed off %d of %d received frames; drops: no_service %d no_conn %d",
		k.DataPath["handed_off"], k.DataPath["rx"], k.DataPath["drop_no_service"], k.DataPath["drop_no_conn"])
	if k.DataPath["handed_off"] == 0 {
		t.Errorf("no frame was handed to another worker: the test did not exercise two queues")
	}
	// One named thread per worker, each of which ran: an operator's top -H
	// (and make bench) tells the workers' CPU time apart.
	// The process keeps its name (pidof, keepalived's track_process).
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", g.Cmd.Process.Pid)); strings.TrimSpace(string(comm)) != "govsd" {
		t.Errorf("govsd's process name is %q", comm)
	}
	threads, err := testutil.Threads(g.Cmd.Process.Pid, "govs-w")
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) != 2 || threads[0].Name != "govs-w0" || threads[1].Name != "govs-w1" {
		t.Errorf("worker threads: %+v, want govs-w0 and govs-w1", threads)
	}
	for _, th := range threads {
		if th.CPU <= 0 {
			t.Errorf("worker thread %s ran no CPU time", th.Name)
		}
	}
}
