package test

import (
	"encoding/json"
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
	g := startGovsd(t, lab.Director, testutil.Config{Services: []testutil.Service{httpService("nat", labVIP4, 80, 3), fullnat}}.YAML())
	if !strings.Contains(g.Logs(), "queues=2") {
		t.Fatalf("govsd did not serve two queues:\n%s", g.Logs())
	}
	for _, url := range []string{"http://198.18.0.100:80/", "http://198.18.0.100:81/"} {
		if hits := spread(t, lab, url, 40); len(hits) != 3 {
			t.Errorf("%s: spread %v, want all three servers", url, hits)
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
