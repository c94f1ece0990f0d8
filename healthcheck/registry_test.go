package healthcheck

import (
	"reflect"
	"slices"
	"testing"
)

// TestRegistry: every built-in probe finds its checker by its kind, in the
// order the configuration lists them, and a kind cannot be registered twice.
func TestRegistry(t *testing.T) {
	want := []string{"tcp", "http", "https", "udp", "dns", "exec"}
	if got := Kinds(); !slices.Equal(got, want) {
		t.Errorf("Kinds() = %v, want %v", got, want)
	}
	for _, p := range []Probe{TCPProbe{}, HTTPProbe{}, HTTPProbe{TLS: true}, UDPProbe{}, DNSProbe{}, ExecProbe{}} {
		if CheckerFor(p.Kind()) == nil {
			t.Errorf("no checker for %T kind %q", p, p.Kind())
		}
	}
	if CheckerFor("none") != nil {
		t.Error("a checker for kind none: an unchecked target has no probe")
	}
	if Lookup("https") != Lookup("http") {
		t.Error("http and https do not share a registration")
	}
	defer func() {
		if recover() == nil {
			t.Error("a duplicate Register did not panic")
		}
	}()
	Register(&Registration{Kinds: []string{"tcp"}, Checker: TCPChecker{}, NewProbe: tcpRegistration.NewProbe})
}

// TestNewProbe: each registration builds its own probe from settings, with
// its defaults for what is left out, and refuses bad values per setting.
func TestNewProbe(t *testing.T) {
	for _, tc := range []struct {
		kind string
		v    Values
		want Probe
		errs []SettingError
	}{
		{"tcp", nil, TCPProbe{}, nil},
		{"http", nil, HTTPProbe{Method: "GET", Path: "/", ExpectStatus: []int{200}}, nil},
		{"https", Values{"method": "HEAD", "path": "/h", "host": "web.test", "expect_status": []int64{200, 204}, "expect_body": "ok"},
			HTTPProbe{TLS: true, Method: "HEAD", Path: "/h", Host: "web.test", ExpectStatus: []int{200, 204}, ExpectBody: "ok"}, nil},
		{"http", Values{"method": "get", "path": "h", "host": "a/b", "expect_status": []int64{}},
			HTTPProbe{Method: "GET", Path: "/", Host: "a/b"}, []SettingError{
				badSetting("method", `"get" is not an HTTP method (methods are upper case, e.g. GET)`),
				badSetting("path", `"h": the path must start with / and contain no spaces`),
				badSetting("host", `"a/b" is not a valid host`),
				badSetting("expect_status", "at least one status is required")}},
		{"udp", Values{"send": "ping", "expect": "pong"}, UDPProbe{Send: "ping", Expect: "pong"}, nil},
		{"dns", Values{"query": "web.test.", "type": "aaaa"}, DNSProbe{Query: "web.test.", QType: 28}, nil},
		{"dns", Values{"query": "a..b", "type": "AXFR"}, DNSProbe{QType: 1}, []SettingError{
			badSetting("query", `"a..b" is not a valid domain name`),
			badSetting("type", `"AXFR" is not a supported query type (valid: A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, ANY)`)}},
		{"exec", Values{"command": []string{"/bin/true", "{address}"}}, ExecProbe{Command: []string{"/bin/true", "{address}"}}, nil},
		{"exec", Values{"command": []string{}}, ExecProbe{}, []SettingError{badSetting("command", "must name a program")}},
	} {
		r := Lookup(tc.kind)
		got, errs := r.NewProbe(tc.kind, tc.v)
		if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(errs, tc.errs) {
			t.Errorf("%s %v: %#v %v, want %#v %v", tc.kind, tc.v, got, errs, tc.want, tc.errs)
		}
		if got.Kind() != tc.kind {
			t.Errorf("%s: probe of kind %q", tc.kind, got.Kind())
		}
	}
}

// TestExecCheckHost: an exec probe's program must exist and be executable.
func TestExecCheckHost(t *testing.T) {
	if errs := (ExecProbe{Command: []string{"sh", "-c", "true"}}).CheckHost(); errs != nil {
		t.Errorf("sh: %v", errs)
	}
	dir := t.TempDir()
	for cmd, want := range map[string]string{
		"no-such-program-govs": `"no-such-program-govs": not found in $PATH`,
		dir:                    `"` + dir + `" is a directory`,
		dir + "/missing":       `"` + dir + `/missing": no such file or directory`,
	} {
		errs := ExecProbe{Command: []string{cmd}}.CheckHost()
		if len(errs) != 1 || errs[0] != badSetting("command", "%s", want) {
			t.Errorf("%s: %v, want %s", cmd, errs, want)
		}
	}
}
