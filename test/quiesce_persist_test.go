package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// TestQuiescePersistence: a persistent client bound to a real server whose
// check fails is not sent to it any more when the server is quiesced
// (on_failure: quiesce) and expire_quiescent_template is on (the default):
// its template is expired and its next connections go to another server.
// A second service with expire_quiescent_template: false is the control:
// there the template keeps the client on the dead server, as IPVS does
// without the sysctl.
func TestQuiescePersistence(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "qp", topo.LabOptions{RealServers: 3})
	if err := lab.AddVIP(mustAddr("198.18.0.100")); err != nil {
		t.Fatal(err)
	}
	stops := make([]func(), 3)
	for i := range stops {
		s, err := lab.ServeHTTPOn(i, 8080)
		if err != nil {
			t.Fatal(err)
		}
		stops[i] = s
	}
	t.Cleanup(func() {
		for _, s := range stops {
			if s != nil {
				s()
			}
		}
	})
	quiesced := func(s testutil.Service, settings ...string) testutil.Service {
		s.Settings = append([]string{"persistence: {timeout: 300s}",
			"health_check: {type: tcp, interval: 300ms, timeout: 200ms, rise: 1, fall: 2}", "on_failure: quiesce"}, settings...)
		return s
	}
	g := startGovsd(t, lab.Director, testutil.Config{Services: []testutil.Service{
		quiesced(httpService("web", labVIP4, 80, 3)),
		quiesced(httpService("control", labVIP4, 81, 3), "expire_quiescent_template: false"),
	}}.YAML())
	client := topo.HTTPClient(lab.Client, time.Second)
	get := func(url string) (string, error) {
		body, err := topo.Get(context.Background(), client, url)
		if err != nil {
			return "", err
		}
		return strings.Fields(body)[0], nil
	}
	// The client is bound: every request goes to the same server.
	bound := func(url string) string {
		t.Helper()
		first, err := getRetryName(get, url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		for i := 0; i < 5; i++ {
			if rs, err := get(url); err != nil || rs != first {
				t.Fatalf("persistent client: request %d to %s went to %q (%v), the first to %s", i, url, rs, err, first)
			}
		}
		return first
	}
	a := bound("http://198.18.0.100/")
	ctl := bound("http://198.18.0.100:81/")
	idx := int(a[2] - '1') // "rs1" -> 0
	addrA := "198.18.1." + a[2:] + ":8080"
	t.Logf("client bound to %s (%s); control service bound to %s", a, addrA, ctl)

	// A's server stops: its check fails and it is quiesced.
	stops[idx]()
	stops[idx] = nil
	waitFor(t, 5*time.Second, a+" quiesced", func() bool { return weightOf(t, g, addrA) == 0 })

	// The client's next connections go elsewhere, without a failure once the
	// template is gone (expiry runs right after the quiesce).
	var first string
	deadline := time.Now().Add(2 * time.Second)
	for {
		rs, err := get("http://198.18.0.100/")
		if err == nil {
			first = rs
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client still cannot connect 2 s after %s was quiesced (template not expired?): %v\n%s", a, err, g.admOK(t, "-L", "-n", "-c"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first == a {
		t.Fatalf("request went to the quiesced %s", a)
	}
	for i := 0; i < 10; i++ {
		rs, err := get("http://198.18.0.100/")
		if err != nil || rs != first {
			t.Fatalf("after the quiesce, request %d: %q, %v; want %s (the new binding)", i, rs, err, first)
		}
	}
	if !strings.Contains(g.Logs(), "persistence templates of a quiesced server expired") {
		t.Errorf("no log line for the expired templates:\n%s", g.Logs())
	}

	// Control: with expire_quiescent_template: false the template stands
	// and the client is still sent to the dead server.
	if ctl == a {
		if rs, err := get("http://198.18.0.100:81/"); err == nil {
			t.Errorf("expire_quiescent_template: false: the client reached %s; want it still bound to the quiesced %s", rs, a)
		}
	} else {
		t.Logf("control service bound to %s, not %s: control check skipped", ctl, a)
	}
}

// getRetryName retries a request a few times (the first one may meet
// unresolved next hops).
func getRetryName(get func(string) (string, error), url string) (string, error) {
	var err error
	for try := 0; try < 5; try++ {
		var rs string
		if rs, err = get(url); err == nil {
			return rs, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", err
}
