package topo_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// TestLab checks the topology itself, without govs: the director's kernel
// routes the client to each real server over IPv4 and IPv6, and the real
// servers see the client's own address.
func TestLab(t *testing.T) {
	testutil.RequireRoot(t, "creates network namespaces")
	l, err := topo.NewLab(fmt.Sprintf("gtl%d", os.Getpid()%10000), topo.LabOptions{RealServers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	stop, err := l.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := topo.HTTPClient(l.Client, 3*time.Second)
	for _, u := range []struct{ url, want string }{
		{"http://198.18.1.2:8080/", "rs2 198.18.0.1"},
		{"http://[2001:db8:1::1]:8080/", "rs1 2001:db8::1"},
	} {
		body, err := topo.Get(context.Background(), c, u.url)
		if err != nil {
			t.Fatalf("GET %s: %v", u.url, err)
		}
		if !strings.Contains(body, u.want) {
			t.Errorf("GET %s = %q, want %q", u.url, body, u.want)
		}
	}
}
