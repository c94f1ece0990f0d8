// Package packaging_test checks the Debian package (make package) and its
// sources: the manual pages, the bash completion, the starting
// configuration and govsd.service. TestPackageInstall installs the package
// on this machine and removes it again; it needs root and dpkg.
package packaging_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/config"
	"github.com/govs/govs/internal/testutil"
)

// repo is the repository root (the tests run in packaging/).
const repo = ".."

// The package's files, as dpkg-deb --contents lists them (less "./").
var packageFiles = []string{
	"usr/sbin/govsd",
	"usr/sbin/govsadm",
	"lib/systemd/system/govsd.service",
	"etc/govs/govs.yaml",
	"usr/share/man/man8/govsd.8.gz",
	"usr/share/man/man8/govsadm.8.gz",
	"usr/share/man/man5/govs.yaml.5.gz",
	"usr/share/bash-completion/completions/govsadm",
	"usr/share/doc/govs/copyright",
	"usr/share/doc/govs/examples/nat-web.yaml",
}

var manPages = []string{"govsd.8", "govsadm.8", "govs.yaml.5"}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// renderMan checks that man renders page (a roff file, gzipped or not)
// without a warning, and returns the text.
func renderMan(t *testing.T, page string) string {
	t.Helper()
	cmd := exec.Command("man", "--warnings", "-l", page)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8", "MANPAGER=cat", "PAGER=cat")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("man -l %s: %v\n%s", page, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("man -l %s warns:\n%s", page, stderr.String())
	}
	// Bold and underline as overstrike (X\bX, _\bX) when the output is not
	// a terminal, whatever MAN_KEEP_FORMATTING says.
	text := regexp.MustCompile(`.\x08`).ReplaceAllString(stdout.String(), "")
	if !strings.Contains(text, "NAME") || len(text) < 1000 {
		t.Errorf("man -l %s: too little output:\n%s", page, text)
	}
	return text
}

// TestManPages generates the pages from packaging/man and renders them.
func TestManPages(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed (apt-get install man-db)")
	}
	out := t.TempDir()
	srcs, _ := filepath.Glob(filepath.Join("man", "*.md"))
	args := append([]string{"run", "./mangen", "-root", repo, "-version", "test", "-date", "2025-01-01", "-o", out}, srcs...)
	run(t, ".", nil, "go", args...)
	for _, p := range manPages {
		text := renderMan(t, filepath.Join(out, p))
		switch p {
		case "govs.yaml.5":
			// The schema comes from config/doc.go: a key from its end.
			for _, want := range []string{"SCHEMA", "HEALTH CHECKS", "expire_quiescent_template", "exec:"} {
				if !strings.Contains(text, want) {
					t.Errorf("%s lacks %q", p, want)
				}
			}
		case "govsadm.8":
			for _, want := range []string{"--shutdown", "--add-laddr", "Exit status"} {
				if !strings.Contains(text, want) {
					t.Errorf("%s lacks %q (from govsadm's usage text)", p, want)
				}
			}
		}
	}
}

// TestCompletion checks that the bash completion offers every option of
// govsadm's usage text, and that bash reads it.
func TestCompletion(t *testing.T) {
	usage, err := os.ReadFile(filepath.Join(repo, "cmd", "govsadm", "usage.go"))
	if err != nil {
		t.Fatal(err)
	}
	comp, err := os.ReadFile(filepath.Join("completion", "govsadm"))
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(string(comp))
	for _, opt := range slices.Compact(slices.Sorted(slices.Values(regexp.MustCompile(`(?m)^  (--[a-z0-9-]+)`).FindAllString(string(usage), -1)))) {
		opt = strings.TrimSpace(opt)
		if !slices.Contains(words, opt) && !strings.Contains(string(comp), opt+"|") && !strings.Contains(string(comp), opt+")") {
			t.Errorf("the completion does not offer %s", opt)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		out := run(t, ".", nil, bash, "-c", `source completion/govsadm; COMP_WORDS=(govsadm -s w); COMP_CWORD=2; _govsadm; echo "${COMPREPLY[*]}"`)
		if strings.TrimSpace(out) != "wrr wlc" {
			t.Errorf("completing govsadm -s w: %q", out)
		}
	}
}

// TestConffile checks /etc/govs/govs.yaml as govsd -t does, on this
// machine's loopback instead of the placeholder interfaces.
func TestConffile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("deb", "govs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "govs.yaml")
	if err := os.WriteFile(path, onLoopback(t, data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.CheckHost(cfg, path); err != nil {
		t.Fatal(err)
	}
}

// onLoopback replaces the configuration's interfaces with lo.
func onLoopback(t *testing.T, yaml []byte) []byte {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(  interfaces: )\[[^\]]*\]`)
	if !re.Match(yaml) {
		t.Fatal("no director.interfaces line to rewrite")
	}
	return re.ReplaceAll(yaml, []byte("${1}[lo]"))
}

// TestUnit checks what govsd.service must say; systemd-analyze verify runs
// on the installed unit in TestPackageInstall.
func TestUnit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("systemd", "govsd.service"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
		"ExecStart=/usr/sbin/govsd -c /etc/govs/govs.yaml", "LimitMEMLOCK=infinity"} {
		if !slices.Contains(lines, want) {
			t.Errorf("govsd.service lacks %s", want)
		}
	}
	for _, l := range lines {
		// SIGTERM keeps the state for the next govsd: a stop hook that
		// cleaned up would make every restart lose the connections.
		if strings.HasPrefix(l, "ExecStop") && (strings.Contains(l, "shutdown") || strings.Contains(l, "cleanup")) {
			t.Errorf("govsd.service stops for good on a restart: %s", l)
		}
		if caps, ok := strings.CutPrefix(l, "CapabilityBoundingSet="); ok {
			for _, c := range strings.Fields(caps) {
				if !strings.Contains(string(data), "#   "+c+" ") {
					t.Errorf("capability %s is not explained in the unit's comments", c)
				}
			}
		}
	}
}

// TestPackageInstall builds the package with make package, checks its
// metadata and contents, installs it with dpkg, runs what it installed,
// and removes and purges it, leaving nothing.
func TestPackageInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and installs a package")
	}
	testutil.RequireRoot(t, "installs a package")
	for _, tool := range []string{"dpkg-deb", "dpkg", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: not a Debian machine", tool)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "govs").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Skip("a govs package is installed on this machine: not replacing it")
	}
	for _, f := range packageFiles {
		if _, err := os.Lstat("/" + f); err == nil {
			t.Skipf("/%s exists without the govs package: not overwriting it", f)
		}
	}

	dist := t.TempDir()
	out := run(t, repo, []string{"DIST=" + dist}, "make", "--no-print-directory", "package")
	debs, _ := filepath.Glob(filepath.Join(dist, "govs_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make package made %v:\n%s", debs, out)
	}
	deb := debs[0]
	t.Logf("built %s", filepath.Base(deb))
	if !regexp.MustCompile(`^govs_[0-9][A-Za-z0-9.+~]*_[a-z0-9]+\.deb$`).MatchString(filepath.Base(deb)) {
		t.Errorf("file name %s: not govs_VERSION_ARCH.deb with a Debian version", filepath.Base(deb))
	}

	info := run(t, ".", nil, "dpkg-deb", "--info", deb)
	for _, want := range []string{"Package: govs", "Architecture: ", "Maintainer: ", "Description: ", "postinst", "prerm", "postrm", "conffiles"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(info, "Depends:") {
		t.Errorf("the package depends on something, but its binaries are static:\n%s", info)
	}
	if conffiles := run(t, ".", nil, "dpkg-deb", "--info", deb, "conffiles"); strings.TrimSpace(conffiles) != "/etc/govs/govs.yaml" {
		t.Errorf("conffiles: %q", conffiles)
	}
	contents := run(t, ".", nil, "dpkg-deb", "--contents", deb)
	for _, f := range packageFiles {
		if !strings.Contains(contents, " ./"+f+"\n") {
			t.Errorf("the package lacks /%s", f)
		}
	}
	for _, l := range strings.Split(contents, "\n") {
		if l != "" && !strings.HasPrefix(l, "drwxr-xr-x root/root") && !strings.HasPrefix(l, "-rw-r--r-- root/root") &&
			!strings.HasPrefix(l, "-rwxr-xr-x root/root") {
			t.Errorf("mode or owner: %s", l)
		}
	}
	version := strings.TrimSpace(run(t, ".", nil, "dpkg-deb", "--field", deb, "Version"))

	// Install; whatever happens next, purge.
	installed := false
	t.Cleanup(func() {
		if installed {
			if out, err := dpkg("--purge", "govs"); err != nil {
				t.Errorf("cleanup: dpkg --purge govs: %v\n%s", err, out)
			}
		}
	})
	installed = true
	if out, err := dpkg("-i", deb); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}

	for _, bin := range []string{"/usr/sbin/govsd", "/usr/sbin/govsadm"} {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked: the package would need Depends", bin)
			}
		}
		f.Close()
	}
	v := run(t, "/", nil, "/usr/sbin/govsd", "-version")
	if !strings.HasPrefix(v, "govsd ") {
		t.Errorf("govsd -version: %q", v)
	}
	t.Logf("package %s: %s", version, strings.TrimSpace(v))
	if v := run(t, "/", nil, "/usr/sbin/govsadm", "-v"); !strings.Contains(v, "govsadm") {
		t.Errorf("govsadm -v: %q", v)
	}

	// The configuration as installed: valid but for its placeholder
	// interfaces, which this machine need not have; on lo, valid.
	cmd := exec.Command("/usr/sbin/govsd", "-t", "-c", "/etc/govs/govs.yaml")
	if out, err := cmd.CombinedOutput(); err != nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.Contains(l, "director.interfaces[") || !strings.Contains(l, "does not exist on this machine") {
				t.Errorf("govsd -t -c /etc/govs/govs.yaml: %s", l)
			}
		}
	}
	conf, err := os.ReadFile("/etc/govs/govs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lo := filepath.Join(t.TempDir(), "govs.yaml")
	if err := os.WriteFile(lo, onLoopback(t, conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "/", nil, "/usr/sbin/govsd", "-t", "-c", lo)

	if _, err := exec.LookPath("man"); err != nil {
		t.Log("man is not installed (apt-get install man-db): the pages are not rendered")
	} else {
		for _, p := range manPages {
			path := "/usr/share/man/man" + p[len(p)-1:] + "/" + p + ".gz"
			if _, err := os.Stat(path); err != nil {
				// dpkg's path-exclude (slim images) drops /usr/share/man.
				t.Logf("%s not installed (%v): rendering it from the package", path, err)
				x := t.TempDir()
				run(t, ".", nil, "dpkg-deb", "-x", deb, x)
				path = filepath.Join(x, path)
			}
			renderMan(t, path)
		}
	}
	run(t, ".", nil, "bash", "-n", "/usr/share/bash-completion/completions/govsadm")

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified")
	} else {
		cmd := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/govsd.service")
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify govsd.service: %v\n%s", err, out)
		}
	}

	// dpkg -r keeps the conffile, --purge removes it too.
	if out, err := dpkg("-r", "govs"); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	for _, f := range packageFiles {
		_, err := os.Lstat("/" + f)
		if f == "etc/govs/govs.yaml" {
			if err != nil {
				t.Errorf("dpkg -r removed the conffile /%s", f)
			}
		} else if err == nil {
			t.Errorf("/%s is left after dpkg -r", f)
		}
	}
	if out, err := dpkg("--purge", "govs"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	installed = false
	for _, f := range append(packageFiles, "etc/govs", "usr/share/doc/govs", "lib/systemd/system/multi-user.target.wants/govsd.service") {
		if _, err := os.Lstat("/" + f); err == nil {
			t.Errorf("/%s is left after dpkg --purge", f)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "govs").CombinedOutput(); err == nil && strings.Contains(string(out), "installed") {
		t.Errorf("dpkg still lists govs: %s", out)
	}
}

// dpkg runs dpkg, waiting while another dpkg or apt holds its lock (the
// machine's own package installs).
func dpkg(args ...string) ([]byte, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("lock")) || time.Now().After(deadline) {
			if err != nil {
				err = errors.Join(err, errors.New(strings.TrimSpace(string(out))))
			}
			return out, err
		}
		time.Sleep(2 * time.Second)
	}
}
