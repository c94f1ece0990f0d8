package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/govs/govs/control"
	"github.com/govs/govs/version"
)

// shape is what -S and -R carry of a service: everything but counters and
// health.
type shape struct {
	Protocol, VIP, Scheduler, Netmask string
	Port                              uint16
	Flags, LocalAddresses             []string
	Persistent                        int
	ProxyProtocol                     string
	TOA                               bool
	Dests                             []destShape
}

type destShape struct {
	Address, Forward   string
	Port               uint16
	Weight             int
	UpperThresh, Lower uint32
}

func shapes(svcs []control.Service) []shape {
	svcs = append([]control.Service(nil), svcs...)
	sortServices(svcs)
	var out []shape
	for _, s := range svcs {
		sh := shape{Protocol: s.Protocol, VIP: s.VIP, Scheduler: s.Scheduler, Netmask: s.Netmask, Port: s.Port,
			Flags: s.Flags, LocalAddresses: s.LocalAddresses, Persistent: s.Persistent, ProxyProtocol: s.ProxyProtocol, TOA: s.TOA}
		for _, d := range s.Dests {
			sh.Dests = append(sh.Dests, destShape{Address: d.Address, Forward: d.Forward, Port: d.Port,
				Weight: d.Weight, UpperThresh: d.UpperThresh, Lower: d.LowerThresh})
		}
		out = append(out, sh)
	}
	return out
}

// -S output fed to -R on an empty govsd rebuilds the same table.
func TestSaveRestoreRoundTrip(t *testing.T) {
	from := goldenBackend()
	rules := mustRun(t, serve(t, from), "-S", "-n")

	to := newFakeBackend()
	socket := serve(t, to)
	r := runAdm(t, socket, rules, "-R")
	if r.code != 0 || r.stderr != "" || r.stdout != "" {
		t.Fatalf("-R: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got, want := shapes(to.Services()), shapes(from.Services()); !reflect.DeepEqual(got, want) {
		t.Errorf("restored table\n%+v\nwant\n%+v", got, want)
	}
	if again := mustRun(t, socket, "-S"); again != rules {
		t.Errorf("-S after -R:\n%s\nwant\n%s", again, rules)
	}
	// The listings agree too, but for the counters that -S does not carry.
	if got, want := mustRun(t, socket, "-Ln", "--thresholds"), mustRun(t, serve(t, stripCounters(from)), "-Ln", "--thresholds"); got != want {
		t.Errorf("-Ln --thresholds after -R:\n%s\nwant\n%s", got, want)
	}
}

func stripCounters(b *fakeBackend) *fakeBackend {
	c := newFakeBackend()
	c.services = b.Services()
	for i := range c.services {
		s := &c.services[i]
		s.Stats, s.Rates = control.Stats{}, control.Rates{}
		for j := range s.Dests {
			d := &s.Dests[j]
			d.ActiveConns, d.InactiveConns, d.PersistConns = 0, 0, 0
			d.Stats, d.Rates = control.Stats{}, control.Rates{}
		}
	}
	return c
}

// A script of ipvsadm command lines restores as well: "ipvsadm" words,
// comments and blank lines are skipped, and lines apply in order.
func TestRestoreIpvsadmScript(t *testing.T) {
	b := newFakeBackend()
	socket := serve(t, b)
	script := `# web service
ipvsadm -A -t 198.18.0.100:80 -s rr

/sbin/ipvsadm -a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m -w 2   # first
-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -m
-e -t 198.18.0.100:80 -r 198.18.1.2:8080 -w 4
--add-server -t 198.18.0.100:80 -r 198.18.1.3
`
	r := runAdm(t, socket, script, "-R")
	if r.code != 0 {
		t.Fatalf("-R: exit %d: %s", r.code, r.stderr)
	}
	want := `-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m -w 2
-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -m -w 4
-a -t 198.18.0.100:80 -r 198.18.1.3:80 -g -w 1
`
	if got := mustRun(t, socket, "-S"); got != want {
		t.Errorf("-S:\n%s\nwant\n%s", got, want)
	}
}

// A line that does not parse stops -R before anything is applied.
func TestRestoreChecksEveryLineFirst(t *testing.T) {
	b := newFakeBackend()
	socket := serve(t, b)
	r := runAdm(t, socket, "-A -t 198.18.0.100:80\n-a -t 198.18.0.100:80 -r 198.18.1.1 -w 2147483648\n", "-R")
	if r.code != 2 || !strings.Contains(r.stderr, "line 2: illegal weight specified") {
		t.Fatalf("exit %d, stderr %q; want 2 and line 2's error", r.code, r.stderr)
	}
	if len(b.Services()) != 0 {
		t.Errorf("services were added: %+v", b.Services())
	}
}

// A line govsd refuses is reported with its number; the others still apply.
func TestRestoreGoesOnAfterRefusal(t *testing.T) {
	b := newFakeBackend()
	socket := serve(t, b)
	rules := "-A -t 198.18.0.100:80 -s rr\n-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m\n"
	r := runAdm(t, socket, rules, "-R")
	if r.code != 1 || r.stderr != "line 2: Service already exists\n" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if s := b.Services(); len(s) != 1 || len(s[0].Dests) != 1 {
		t.Errorf("table after -R: %+v", s)
	}
}

// Each command reaches govsd with ipvsadm's meaning.
func TestCommands(t *testing.T) {
	b := newFakeBackend()
	socket := serve(t, b)
	for _, args := range [][]string{
		{"-A", "-t", "198.18.0.100:80", "-s", "rr", "-p", "60", "-M", "255.255.255.0"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.1.1:8080", "-m", "-w", "2"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.1.2"},
		{"--add-laddr", "-t", "198.18.0.100:80", "-z", "198.18.1.250"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.1.3:8081", "--fullnat"},
		// -e changes only what is given: the forwarding method stays.
		{"-e", "-t", "198.18.0.100:80", "-r", "198.18.1.1:8080", "-w", "5", "-x", "10"},
		{"-A", "-u", "[2001:db8::100]:53"},
		{"-a", "-u", "[2001:db8::100]:53", "-r", "[2001:db8::1]:5353", "-m"},
	} {
		mustRun(t, socket, args...)
	}
	want := `-A -t 198.18.0.100:80 -s rr -p 60 -M 255.255.255.0
--add-laddr -t 198.18.0.100:80 -z 198.18.1.250
-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m -w 5 -x 10
-a -t 198.18.0.100:80 -r 198.18.1.2:80 -g -w 1
-a -t 198.18.0.100:80 -r 198.18.1.3:8081 --fullnat -w 1
-A -u [2001:db8::100]:53 -s wlc
-a -u [2001:db8::100]:53 -r [2001:db8::1]:5353 -m -w 1
`
	if got := mustRun(t, socket, "-S", "-n"); got != want {
		t.Errorf("-S:\n%s\nwant\n%s", got, want)
	}

	// -E sets the whole service, as ipvsadm does: no -p, no persistence.
	mustRun(t, socket, "-E", "-t", "198.18.0.100:80", "-s", "wrr")
	mustRun(t, socket, "-d", "-t", "198.18.0.100:80", "-r", "198.18.1.2")
	mustRun(t, socket, "--del-laddr", "-t", "198.18.0.100:80", "-z", "198.18.1.250")
	mustRun(t, socket, "-D", "-u", "[2001:db8::100]:53")
	want = `-A -t 198.18.0.100:80 -s wrr
-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m -w 5 -x 10
-a -t 198.18.0.100:80 -r 198.18.1.3:8081 --fullnat -w 1
`
	if got := mustRun(t, socket, "-S"); got != want {
		t.Errorf("-S:\n%s\nwant\n%s", got, want)
	}

	mustRun(t, socket, "--set", "1000", "0", "60")
	if got := mustRun(t, socket, "-L", "--timeout"); got != "Timeout (tcp tcpfin udp): 1000 120 60\n" {
		t.Errorf("-L --timeout: %q", got)
	}
	mustRun(t, socket, "-Z", "-t", "198.18.0.100:80")
	mustRun(t, socket, "-Z")
	if !reflect.DeepEqual(b.zeroed, []string{"tcp 198.18.0.100", "all"}) {
		t.Errorf("zeroed %v", b.zeroed)
	}
	mustRun(t, socket, "--shutdown")
	if b.shutdowns != 1 {
		t.Errorf("shutdowns %d", b.shutdowns)
	}
	mustRun(t, socket, "--reload")
	if b.reloads != 1 {
		t.Errorf("reloads %d", b.reloads)
	}
	mustRun(t, socket, "-C")
	if got := mustRun(t, socket, "-S"); got != "" {
		t.Errorf("-S after -C: %q", got)
	}
	if got := mustRun(t, socket, "-Ln", "--json"); got != "[]\n" {
		t.Errorf("-Ln --json of an empty table: %q", got)
	}
}

// govsd's refusals come out in ipvsadm's words, with exit status 1.
func TestRefusals(t *testing.T) {
	b := newFakeBackend()
	socket := serve(t, b)
	mustRun(t, socket, "-A", "-t", "198.18.0.100:80", "-s", "rr")
	mustRun(t, socket, "-a", "-t", "198.18.0.100:80", "-r", "198.18.1.1:8080", "-m")
	mustRun(t, socket, "--add-laddr", "-t", "198.18.0.100:80", "-z", "198.18.1.250")
	mustRun(t, socket, "-A", "-t", "198.18.0.102:80")
	cases := []struct {
		args string
		msg  string
	}{
		{"-A -t 198.18.0.100:80", "Service already exists"},
		{"-E -t 198.18.0.101:80", "No such service"},
		{"-D -t 198.18.0.101:80", "No such service"},
		{"-Z -t 198.18.0.101:80", "No such service"},
		{"-Ln -t 198.18.0.101:80", "No such service"},
		{"-a -t 198.18.0.101:80 -r 198.18.1.1", "Service not defined"},
		{"-a -t 198.18.0.100:80 -r 198.18.1.1:8080 -m", "Destination already exists"},
		{"-e -t 198.18.0.100:80 -r 198.18.1.9:8080 -w 2", "No such destination"},
		{"-e -t 198.18.0.101:80 -r 198.18.1.1:8080 -w 2", "Service not defined"},
		{"-d -t 198.18.0.100:80 -r 198.18.1.9", "No such destination"},
		{"-d -t 198.18.0.101:80 -r 198.18.1.1", "Service not defined"},
		{"--add-laddr -t 198.18.0.100:80 -z 198.18.1.250", "Local address already exists"},
		{"--add-laddr -t 198.18.0.101:80 -z 198.18.1.250", "Service not defined"},
		{"--del-laddr -t 198.18.0.100:80 -z 198.18.1.9", "No such local address"},
		{"--del-laddr -t 198.18.0.101:80 -z 198.18.1.250", "Service not defined"},
		// -g keeps the service's port, so this names 198.18.1.1:80.
		{"-e -t 198.18.0.100:80 -r 198.18.1.1:8080 -g", "No such destination"},
		// Other refusals keep govsd's words.
		{"-a -t 198.18.0.102:80 -r 198.18.1.1:8080 --fullnat", "invalid: full-NAT needs a local address first (--add-laddr)"},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			r := runAdm(t, socket, "", strings.Fields(tc.args)...)
			if r.code != exitError || r.stderr != tc.msg+"\n" {
				t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, tc.msg)
			}
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	r := runAdm(t, "/nonexistent.sock", "", "-a", "-t", "198.18.0.100:80")
	if r.code != exitUsage || r.stderr != "You need to supply the 'real-server' option for the 'add-server' command\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = runAdm(t, "/nonexistent.sock", "", "--bogus")
	if r.code != exitUsage || r.stderr != "unknown option `--bogus'\n"+tryHelp+"\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = runAdm(t, "/nonexistent.sock", "", "-h")
	if r.code != exitOK || !strings.Contains(r.stdout, "--add-laddr") {
		t.Errorf("-h: exit %d, stdout %q", r.code, r.stdout)
	}
}

// With no govsd, every command that needs it says so and names the socket.
func TestDaemonNotRunning(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{}, {"-Ln"}, {"-Lnc"}, {"-S"}, {"-A", "-t", "198.18.0.100:80"}, {"--reload"}, {"--counters"}} {
		r := runAdm(t, missing, "", args...)
		if r.code != exitError || !strings.Contains(r.stderr, "govsd is not running") || !strings.Contains(r.stderr, missing) {
			t.Errorf("govsadm %v: exit %d, stderr %q; want 1 naming %s", args, r.code, r.stderr, missing)
		}
	}
	r := runAdm(t, missing, "-C\n", "-R")
	if r.code != exitError || !strings.Contains(r.stderr, missing) {
		t.Errorf("-R: exit %d, stderr %q", r.code, r.stderr)
	}
	// --socket wins over $GOVS_SOCKET.
	socket := serve(t, goldenBackend())
	r = runAdm(t, missing, "", "--socket", socket, "-L", "--timeout")
	if r.code != exitOK || r.stdout != "Timeout (tcp tcpfin udp): 900 120 300\n" {
		t.Errorf("--socket: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestSyncDaemonCommands(t *testing.T) {
	b := newFakeBackend()
	socket := serve(t, b)
	mustRun(t, socket, "--start-daemon", "master", "--mcast-interface", "eth1", "--syncid", "7", "--sync-key", "/etc/govs/sync.key")
	if got := mustRun(t, socket, "-L", "--daemon"); got != "master sync daemon (mcast=eth1, syncid=7)\n" {
		t.Errorf("-L --daemon = %q", got)
	}
	if d := b.SyncDaemons(); len(d) != 1 || d[0].KeyFile != "/etc/govs/sync.key" || d[0].Group != "" {
		t.Errorf("daemon sent to govsd: %+v", d)
	}
	if r := runAdm(t, socket, "", "--start-daemon", "master", "--mcast-interface", "eth1"); r.code != 1 {
		t.Errorf("second master start: exit %d, want 1 (%q)", r.code, r.stderr)
	}
	if r := runAdm(t, socket, "", "--start-daemon", "master"); r.code != 2 {
		t.Errorf("--start-daemon without --mcast-interface: exit %d, want 2 (%q)", r.code, r.stderr)
	}
	if r := runAdm(t, socket, "", "--start-daemon", "primary", "--mcast-interface", "eth1"); r.code != 2 {
		t.Errorf("--start-daemon primary: exit %d, want 2", r.code)
	}
	mustRun(t, socket, "--stop-daemon", "master")
	if r := runAdm(t, socket, "", "--stop-daemon", "master"); r.code != 1 {
		t.Errorf("stopping a stopped daemon: exit %d, want 1", r.code)
	}
	// Unicast: the peers reach govsd, and the listing names them.
	mustRun(t, socket, "--start-daemon", "backup", "--mcast-interface", "eth1", "--sync-peer", "198.18.1.11", "--sync-peer", "198.18.1.13")
	if d := b.SyncDaemons(); len(d) != 1 || !reflect.DeepEqual(d[0].Peers, []string{"198.18.1.11", "198.18.1.13"}) || d[0].Group != "" {
		t.Errorf("unicast daemon sent to govsd: %+v", d)
	}
	if got := mustRun(t, socket, "-L", "--daemon"); got != "backup sync daemon (ucast=eth1, syncid=0, peers=198.18.1.11,198.18.1.13)\n" {
		t.Errorf("-L --daemon = %q", got)
	}
}

// TestVersionLine: -v prints ipvsadm's line, then govs's version.
func TestVersionLine(t *testing.T) {
	saved := version.Version
	defer func() { version.Version = saved }()
	version.Version = "v9.8.7"
	r := runAdm(t, "/nonexistent", "", "-v")
	if r.code != 0 || r.stdout != versionText+"\ngovs v9.8.7\n" {
		t.Errorf("govsadm -v: exit %d, %q", r.code, r.stdout)
	}
}
