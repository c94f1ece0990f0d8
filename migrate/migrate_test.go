package migrate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./migrate -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test ./migrate -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func messages(r *Result) []byte {
	var b strings.Builder
	for _, m := range r.Messages {
		b.WriteString(m.String() + "\n")
	}
	return []byte(b.String())
}

func convertFile(t *testing.T, path string, opts Options) *Result {
	t.Helper()
	if strings.HasSuffix(path, ".rules") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return Ipvsadm(data, path, opts)
	}
	r, err := Keepalived(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGolden converts every input in testdata and compares the YAML and
// the messages with NAME.yaml and NAME.msgs. An output without errors must
// pass config.Parse; one with errors names its problems by file:line.
func TestGolden(t *testing.T) {
	cases := []struct {
		file       string
		interfaces []string
		wantErrors []string // substrings of "file:line: message" error lines
	}{
		{file: "keepalived_full.conf"}, // interfaces from vrrp_instance
		{file: "keepalived_include.conf", interfaces: []string{"eth0"},
			wantErrors: []string{"conf.d/web.conf:7: unknown or unsupported keyword bogus_keyword in virtual_server"}},
		{file: "keepalived_errors.conf", interfaces: []string{"eth0", "eth1"}, wantErrors: []string{
			"keepalived_errors.conf:2: lvs_sync_daemon",
			"keepalived_errors.conf:7: fwmark 7: the mark is set by an iptables/nftables rule",
			"keepalived_errors.conf:12: quorum_up",
			"keepalived_errors.conf:14: notify_down",
			"keepalived_errors.conf:18: digest",
			"keepalived_errors.conf:20: url: govs checks one path per server",
			"keepalived_errors.conf:24: TCP_CHECK: govs checks a server with one check",
			"keepalived_errors.conf:28: SMTP_CHECK",
			"keepalived_errors.conf:33: lb_algo bogus",
			"keepalived_errors.conf:34: alpha",
			"keepalived_errors.conf:35: unknown or unsupported keyword frobnicate in virtual_server",
			"keepalived_errors.conf:36: persistence_engine",
			"keepalived_errors.conf:40: bindto",
			"keepalived_errors.conf:43: govs's on_failure is per service",
			"keepalived_errors.conf:48: tcp-198.18.0.100-80 is defined twice (first at testdata/keepalived_errors.conf:32)",
			"keepalived_errors.conf:51: unknown keyword unknown_block",
		}},
		{file: "ipvsadm_save.rules", interfaces: []string{"eth0", "eth1"}},
		{file: "ipvsadm_commands.rules", interfaces: []string{"bond0"}},
		{file: "ipvsadm_errors.rules", interfaces: []string{"eth0"}, wantErrors: []string{
			"ipvsadm_errors.rules:1: fwmark 2: IPVS takes the mark from netfilter",
			"ipvsadm_errors.rules:3: \"www.example.test\" is not an IP address",
			"ipvsadm_errors.rules:4: -s bogus",
			"ipvsadm_errors.rules:5: -o: govs has no one-packet scheduling",
			"ipvsadm_errors.rules:6: no such service",
			"ipvsadm_errors.rules:7: --start-daemon: the sync daemon is govs's director.sync",
			"ipvsadm_errors.rules:8: full-NAT real servers need local addresses",
			"ipvsadm_errors.rules:10: -L: lists are not rules",
			"ipvsadm_errors.rules:11: --proxy-protocol and --toa are only for tcp services (-t): left out",
			"ipvsadm_errors.rules:14: --proxy-protocol and --toa need full-NAT real servers (--fullnat); 198.18.1.9 at line 15 uses nat: left out",
			"ipvsadm_errors.rules:16: --proxy-protocol v3: want v1, v2 or none",
			"ipvsadm_errors.rules:17: a service option (--toa) on a real server command",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			res := convertFile(t, filepath.Join("testdata", tc.file), Options{Interfaces: tc.interfaces})
			base := strings.TrimSuffix(tc.file, filepath.Ext(tc.file))
			golden(t, base+".yaml", res.YAML)
			golden(t, base+".msgs", messages(res))
			var errs []string
			for _, m := range res.Messages {
				if m.Severity == Error {
					errs = append(errs, m.String())
				}
			}
			if len(tc.wantErrors) == 0 {
				if len(errs) > 0 || res.Failed() {
					t.Errorf("unexpected errors:\n%s", strings.Join(errs, "\n"))
				}
				if _, err := config.Parse(res.YAML, "converted"); err != nil {
					t.Errorf("the output does not validate:\n%v\n%s", err, res.YAML)
				}
				return
			}
			if !res.Failed() {
				t.Error("Failed() = false with errors")
			}
			for _, w := range tc.wantErrors {
				found := false
				for _, e := range errs {
					found = found || strings.Contains(e, w)
				}
				if !found {
					t.Errorf("no error containing %q in:\n%s", w, strings.Join(errs, "\n"))
				}
			}
			if len(errs) != len(tc.wantErrors) {
				t.Errorf("%d errors, want %d:\n%s", len(errs), len(tc.wantErrors), strings.Join(errs, "\n"))
			}
		})
	}
}

// TestFwmarkByHand: the fwmark service's output becomes valid once the
// match the TODO comment shows is written (here: uncommented).
func TestFwmarkByHand(t *testing.T) {
	res := Ipvsadm([]byte("-A -f 2 -s rr -p 300\n-a -f 2 -r 198.18.1.1:0 -m -w 1\n"), "rules", Options{Interfaces: []string{"eth0"}})
	if !res.Failed() || res.Invalid == nil {
		t.Fatalf("want an error and an invalid output (no match), got %v", res.Messages)
	}
	if !strings.Contains(res.Invalid.Error(), "fwmark 2 needs a match") {
		t.Errorf("config.Parse: %v", res.Invalid)
	}
	var out []string
	in := false
	for _, l := range strings.Split(string(res.YAML), "\n") {
		switch {
		case strings.TrimSpace(l) == "# match:":
			in = true
			l = strings.Replace(l, "# ", "", 1)
		case in && strings.HasPrefix(strings.TrimSpace(l), "#   "):
			l = strings.Replace(l, "# ", "", 1)
		default:
			in = false
		}
		out = append(out, l)
	}
	if _, err := config.Parse([]byte(strings.Join(out, "\n")), "edited"); err != nil {
		t.Errorf("with the match written: %v\n%s", err, strings.Join(out, "\n"))
	}
}

func TestExpandRange(t *testing.T) {
	for spec, want := range map[string]int{
		"198.18.0.1": 1, "198.18.0.1-10": 10, "198.18.0.250-198.18.1.5": 12, "198.18.0.8/29": 8,
		"2001:db8::1-a": 10, "198.18.0.0/16": -1, "198.18.0.10-1": -1, "nonsense": -1,
	} {
		got, ok := expandRange(spec)
		if want < 0 {
			if ok {
				t.Errorf("%s: want refused, got %d addresses", spec, len(got))
			}
			continue
		}
		if !ok || len(got) != want {
			t.Errorf("%s: got %d addresses (ok %v), want %d", spec, len(got), ok, want)
		}
	}
}

func TestSplitKeepalivedLine(t *testing.T) {
	for line, want := range map[string]string{
		`real_server 1.2.3.4 80 {   # comment`:  `real_server|1.2.3.4|80|{`,
		`misc_path "/bin/check 'a b'" user ! c`: `misc_path|/bin/check 'a b'|user`,
		`url{ path / }`:                         `url|{|path|/|}`,
		`}`:                                     `}`,
	} {
		got, ok := splitKeepalivedLine(line)
		if !ok || strings.Join(got, "|") != want {
			t.Errorf("%q: got %q, want %q", line, strings.Join(got, "|"), want)
		}
	}
	if _, ok := splitKeepalivedLine(`misc_path "open`); ok {
		t.Error("an unterminated quote was accepted")
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/healthz": "/healthz", "yes": `"yes"`, "123": `"123"`, "a b": `"a b"`, "x:y": `"x:y"`, "": `""`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
