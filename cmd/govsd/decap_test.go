package main

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/bpf"
)

// TestDecapArguments: `govsd decap` refuses incomplete arguments before it
// touches an interface or loads a program (so this needs no root).
func TestDecapArguments(t *testing.T) {
	for _, args := range [][]string{
		{"--vip", "198.18.2.100"}, // no interface
		{"--interface", "eth0", "--vip", "198.18.2.100", "--xdp-mode", "offloaded"}, // bad mode
		{"--interface", "eth0", "--vip", "not-an-address"},                          // bad VIP
	} {
		if code := run(append([]string{"decap"}, args...), nil, nil); code != 2 {
			t.Errorf("govsd decap %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	log := slog.New(slog.DiscardHandler)
	if err := decap(t.Context(), "eth0", nil, bpf.ModeAuto, log); err == nil || !strings.Contains(err.Error(), "--vip") {
		t.Errorf("decap without a VIP: %v", err)
	}
	vips := []netip.Addr{netip.MustParseAddr("198.18.2.100")}
	if err := decap(t.Context(), "govs-no-such-if", vips, bpf.ModeAuto, log); err == nil || !strings.Contains(err.Error(), "govs-no-such-if") {
		t.Errorf("decap on a missing interface: %v", err)
	}
}
