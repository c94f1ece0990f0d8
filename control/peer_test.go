package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/govs/govs/internal/testutil"
)

// TestAuthorize: the decision, for every kind of caller.
func TestAuthorize(t *testing.T) {
	const staff = 50
	group := Access{ListGroup: staff, GroupName: "staff", Owner: -1}
	cases := []struct {
		name        string
		p           Peer
		a           Access
		list, write bool
		msg         string // part of the refusal of a write
	}{
		{"root", Peer{Known: true, UID: 0, GID: 0}, AdminOnly, true, true, ""},
		{"CAP_NET_ADMIN", Peer{Known: true, UID: 1000, GID: 1000, CapEff: 1 << 12}, AdminOnly, true, true, ""},
		{"other capabilities", Peer{Known: true, UID: 1000, GID: 1000, CapEff: 1<<21 | 1<<13}, AdminOnly, false, false, "needs root or CAP_NET_ADMIN (caller: uid 1000)"},
		{"nobody", Peer{Known: true, UID: 65534, GID: 65534}, AdminOnly, false, false, "needs root or CAP_NET_ADMIN (caller: uid 65534)"},
		{"nobody, group configured", Peer{Known: true, UID: 65534, GID: 65534}, group, false, false, "CAP_NET_ADMIN"},
		{"primary group", Peer{Known: true, UID: 1000, GID: staff}, group, true, false, "CAP_NET_ADMIN"},
		{"supplementary group", Peer{Known: true, UID: 1000, GID: 1000, Groups: []int{4, staff}}, group, true, false, "CAP_NET_ADMIN"},
		{"group without a configured group", Peer{Known: true, UID: 1000, GID: staff}, AdminOnly, false, false, "CAP_NET_ADMIN"},
		{"unidentified", Peer{}, group, false, false, "cannot identify"},
		{"govsd's own user", Peer{Known: true, UID: 1000, GID: 1000}, Access{ListGroup: -1, Owner: 1000}, true, true, ""},
		{"another user than govsd's", Peer{Known: true, UID: 1001, GID: 1000}, Access{ListGroup: -1, Owner: 1000}, false, false, "CAP_NET_ADMIN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.a.Authorize(c.p, false); (err == nil) != c.list {
				t.Errorf("listing: %v, want allowed=%v", err, c.list)
			} else if err != nil && !errors.Is(err, ErrPermission) {
				t.Errorf("listing refusal %v does not wrap ErrPermission", err)
			}
			err := c.a.Authorize(c.p, true)
			if (err == nil) != c.write {
				t.Errorf("change: %v, want allowed=%v", err, c.write)
			}
			if err != nil && !strings.Contains(err.Error(), c.msg) {
				t.Errorf("change refused with %q, want it to say %q", err, c.msg)
			}
		})
	}
	if err := group.Authorize(Peer{Known: true, UID: 65534, GID: 65534}, false); err == nil || !strings.Contains(err.Error(), "group staff") {
		t.Errorf("a listing refusal should name the group: %v", err)
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tgovsadm\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 \nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n"
	capEff, groups := parseStatus(bufio.NewScanner(strings.NewReader(status)))
	if capEff != 1<<12 || fmt.Sprint(groups) != "[4 24 27]" {
		t.Errorf("CapEff %#x groups %v", capEff, groups)
	}
	if capEff, groups := parseStatus(bufio.NewScanner(strings.NewReader("Groups:\t\nCapEff:\t000001ffffffffff\n"))); capEff != 0x1ffffffffff || groups != nil {
		t.Errorf("CapEff %#x groups %v", capEff, groups)
	}
}

// TestPeerCredentials (root): a client running as uid 65534 is refused a
// change and a listing on a socket of mode 0666, gets a listing as a
// member of the configured group, and root gets both.
func TestPeerCredentials(t *testing.T) {
	testutil.RequireRoot(t, "runs a child process as uid 65534")
	dir, err := os.MkdirTemp("", "govs-peer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary, where uid 65534 may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "control.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	const staff = 4242
	sock := filepath.Join(dir, "govs.sock")
	srv, err := ListenAccess(sock, stubBackend{}, slog.New(slog.NewTextHandler(io.Discard, nil)), Access{ListGroup: staff, GroupName: "staff"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	run := func(cred *syscall.Credential) string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^TestPeerClient$")
		cmd.Env = append(os.Environ(), "GOVS_PEER_SOCKET="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client: %v\n%s", err, out)
		}
		return string(out)
	}
	nobody := run(&syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}})
	for _, want := range []string{"list: 403 permission denied: listing needs root, CAP_NET_ADMIN or membership of group staff",
		"change: 403 permission denied: changing govsd's configuration needs root or CAP_NET_ADMIN (caller: uid 65534)"} {
		if !strings.Contains(nobody, want) {
			t.Errorf("uid 65534:\n%s\nwant %q", nobody, want)
		}
	}
	member := run(&syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{staff}})
	if !strings.Contains(member, "list: ok") || !strings.Contains(member, "change: 403") {
		t.Errorf("uid 65534 in group %d:\n%s\nwant the listing allowed, the change refused", staff, member)
	}
	root := run(nil)
	if !strings.Contains(root, "list: ok") || !strings.Contains(root, "change: ok") {
		t.Errorf("root:\n%s", root)
	}
}

// TestPeerClient is TestPeerCredentials's child: it lists and changes
// through the socket and prints the outcomes.
func TestPeerClient(t *testing.T) {
	sock := os.Getenv("GOVS_PEER_SOCKET")
	if sock == "" {
		t.Skip("run by TestPeerCredentials")
	}
	c := NewClient(sock)
	show := func(what string, err error) {
		var ae *APIError
		switch {
		case err == nil:
			fmt.Printf("%s: ok\n", what)
		case errors.As(err, &ae):
			fmt.Printf("%s: %d %s\n", what, ae.Code, ae.Msg)
		default:
			fmt.Printf("%s: error %v\n", what, err)
		}
	}
	_, err := c.Services()
	show("list", err)
	show("change", c.AddService(ServiceSpec{ServiceKey: ServiceKey{Protocol: "tcp", VIP: "198.18.0.100", Port: 80}}))
}
