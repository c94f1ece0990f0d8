package topo

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestLabSmoke(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("root")
	}
	l, err := NewLab("gtl", LabOptions{RealServers: 2})
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
	// director forwards by kernel
	b, err := Get(context.Background(), c, "http://198.18.1.2:8080/")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(b)
	b, err = Get(context.Background(), c, "http://[2001:db8:1::1]:8080/")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(b)
}
