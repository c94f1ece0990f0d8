package topo

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLab checks the topology itself, without govs: the director's kernel
// routes the client to each real server over IPv4 and IPv6, and the real
// servers see the client's own address.
func TestLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	l, err := NewLab(fmt.Sprintf("gtl%d", os.Getpid()%10000), LabOptions{RealServers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	stop, err := l.ServeHTTP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := HTTPClient(l.Client, 3*time.Second)
	for _, u := range []struct{ url, want string }{
		{"http://198.18.1.2:8080/", "rs2 198.18.0.1"},
		{"http://[2001:db8:1::1]:8080/", "rs1 2001:db8::1"},
	} {
		body, err := Get(context.Background(), c, u.url)
		if err != nil {
			t.Fatalf("GET %s: %v", u.url, err)
		}
		if !strings.Contains(body, u.want) {
			t.Errorf("GET %s = %q, want %q", u.url, body, u.want)
		}
	}
}
