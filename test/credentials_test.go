package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// TestControlCredentials: govsd checks who calls (SO_PEERCRED), not only the
// socket file's mode. With the socket at 0666, govsadm run as uid 65534 is
// refused a change and a listing with a clear message; as a member of
// director.control_group it may list but still not change; root may both.
func TestControlCredentials(t *testing.T) {
	needRoot(t)
	lab := newLab(t, "cred", topo.LabOptions{RealServers: 1})
	g := startGovsd(t, lab.Director, testutil.Config{
		Director: []string{`control_group: "4242"`},
		Services: []testutil.Service{httpService("web", labVIP4, 80, 1)},
	}.YAML())
	if fi, err := os.Stat(g.Socket); err != nil || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != 4242 {
		t.Errorf("control socket with control_group 4242: %v %v", fi.Mode(), err)
	}
	// Open the way for uid 65534: the socket, its directories, a copy of
	// govsadm it may run.
	for _, p := range []string{filepath.Dir(filepath.Dir(g.Socket)), filepath.Dir(g.Socket)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(g.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	admDir, err := os.MkdirTemp("", "govs-cred")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(admDir) })
	if err := os.Chmod(admDir, 0o755); err != nil {
		t.Fatal(err)
	}
	adm := filepath.Join(admDir, "govsadm")
	data, err := os.ReadFile(filepath.Join(binDir, "govsadm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adm, data, 0o755); err != nil {
		t.Fatal(err)
	}
	as := func(cred *syscall.Credential, args ...string) (string, int) {
		cmd := exec.Command(adm, append([]string{"--socket", g.Socket}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{4242}}
	add := []string{"-A", "-t", "198.18.0.200:80", "-s", "rr"}

	out, code := as(nobody, add...)
	if code != 1 || !strings.Contains(out, "permission denied: changing govsd's configuration needs root or CAP_NET_ADMIN (caller: uid 65534)") {
		t.Errorf("uid 65534, -A: exit %d\n%s", code, out)
	}
	out, code = as(nobody, "-L", "-n")
	if code != 1 || !strings.Contains(out, "permission denied: listing needs root, CAP_NET_ADMIN or membership of group 4242") {
		t.Errorf("uid 65534, -L -n: exit %d\n%s", code, out)
	}
	out, code = as(member, "-L", "-n")
	if code != 0 || !strings.Contains(out, "198.18.0.100:80") {
		t.Errorf("uid 65534 in group 4242, -L -n: exit %d\n%s", code, out)
	}
	if out, code = as(member, add...); code != 1 || !strings.Contains(out, "permission denied") {
		t.Errorf("uid 65534 in group 4242, -A: exit %d\n%s", code, out)
	}
	if list := g.admOK(t, "-L", "-n"); strings.Contains(list, "198.18.0.200") {
		t.Errorf("a refused -A was applied:\n%s", list)
	}
	if out, code = as(nil, add...); code != 0 {
		t.Errorf("root, -A: exit %d\n%s", code, out)
	}
}
