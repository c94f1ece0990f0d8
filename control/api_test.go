package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// recBackend records each call with its arguments and answers with err.
type recBackend struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (b *recBackend) rec(format string, args ...any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
	return b.err
}

func (b *recBackend) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls
	b.calls = nil
	return c
}

var (
	testInfo     = Info{Version: "1.2.1", ConnTable: 4096, Config: "/etc/govs/govs.yaml"}
	testServices = []Service{{Name: "web", Protocol: "TCP", VIP: "198.18.0.100", Port: 80, Scheduler: "rr", Flags: []string{"sh-port"},
		Persistent: 30, Netmask: "255.255.255.0", LocalAddresses: []string{"198.18.2.1"}, ProxyProtocol: "v2", TOA: true,
		Stats: Stats{Conns: 1, InPkts: 2, OutPkts: 3, InBytes: 4, OutBytes: 5}, Rates: Rates{CPS: 6, InPPS: 7, OutPPS: 8, InBPS: 9, OutBPS: 10},
		Dests: []Dest{{Address: "198.18.1.1", Port: 8080, Forward: "Masq", Weight: 3, ActiveConns: 11, InactiveConns: 12, PersistConns: 13,
			UpperThresh: 14, LowerThresh: 15, Up: true, Stats: Stats{Conns: 16}, Rates: Rates{OutBPS: 17}}}}}
	testTimeouts = Timeouts{TCP: 900, TCPFin: 120, UDP: 300}
	testConns    = []Connection{{Protocol: "TCP", Expire: 1000, State: "ESTABLISHED", Source: "198.18.3.1:40000", Virtual: "198.18.0.100:80",
		Dest: "198.18.1.1:8080", Local: "198.18.2.1:61000", Template: true}}
	testSync = []SyncDaemon{
		{Role: "master", Interface: "lo", Group: "224.0.0.81", Peers: []string{"198.18.0.2"}, Port: 8848, SyncID: 3, KeyFile: "/k"},
		// The listing's counters go through the API whole.
		{Role: "master", Mode: "unicast", Interface: "eth1", Peers: []string{"198.18.1.12", "198.18.1.13"}, Port: 8849, SyncID: 7,
			Sent: &SyncSent{Messages: 10, Entries: 250, Errors: 1, Dropped: 2}},
		{Role: "backup", Mode: "multicast", Interface: "eth1", Group: "239.255.81.49", Port: 8849, SyncID: 7,
			Received: &SyncReceived{Messages: 9, Entries: 240, Rejected: 4, RejectedBy: map[string]uint64{"bad_mac": 3, "own": 1}}},
	}
	testBGP = BGP{Enabled: true, ASN: 65001, RouterID: "198.18.0.254",
		Peers: []BGPPeer{
			{Address: "198.18.0.1", ASN: 65000, Port: 179, State: "established", Password: true},
			{Address: "2001:db8::1", ASN: 65002, Port: 1179, State: "active", Passive: true, Multihop: 2},
		},
		Announced: []string{"198.18.0.100/32", "2001:db8::100/128"}}
)

func (b *recBackend) Info() Info          { b.rec("Info"); return testInfo }
func (b *recBackend) Services() []Service { b.rec("Services"); return testServices }
func (b *recBackend) AddService(s ServiceSpec) error {
	return b.rec("AddService %s", specString(s))
}
func (b *recBackend) EditService(s ServiceSpec) error { return b.rec("EditService %s", specString(s)) }
func (b *recBackend) DeleteService(k ServiceKey) error {
	return b.rec("DeleteService %+v", k)
}
func (b *recBackend) Clear() error { return b.rec("Clear") }
func (b *recBackend) AddDest(d DestSpec) error {
	return b.rec("AddDest %s", destString(d))
}
func (b *recBackend) EditDest(d DestSpec) error { return b.rec("EditDest %s", destString(d)) }
func (b *recBackend) DeleteDest(k ServiceKey, addr string, port uint16) error {
	return b.rec("DeleteDest %+v %s %d", k, addr, port)
}
func (b *recBackend) AddLocalAddr(l LocalAddr) error    { return b.rec("AddLocalAddr %+v", l) }
func (b *recBackend) DeleteLocalAddr(l LocalAddr) error { return b.rec("DeleteLocalAddr %+v", l) }
func (b *recBackend) Zero(k *ServiceKey) error {
	if k == nil {
		return b.rec("Zero all")
	}
	return b.rec("Zero %+v", *k)
}
func (b *recBackend) Timeouts() Timeouts { b.rec("Timeouts"); return testTimeouts }
func (b *recBackend) SetTimeouts(t Timeouts) error {
	return b.rec("SetTimeouts %+v", t)
}
func (b *recBackend) Connections(_ context.Context, templates bool) ([]Connection, error) {
	return testConns, b.rec("Connections %v", templates)
}
func (b *recBackend) Counters() (Counters, error) {
	return Counters{DataPath: map[string]uint64{"tx_errors": 5}}, b.rec("Counters")
}
func (b *recBackend) Reload() error             { return b.rec("Reload") }
func (b *recBackend) Shutdown() error           { return b.rec("Shutdown") }
func (b *recBackend) Handover() error           { return b.rec("Handover") }
func (b *recBackend) SyncDaemons() []SyncDaemon { b.rec("SyncDaemons"); return testSync }
func (b *recBackend) BGP() BGP                  { b.rec("BGP"); return testBGP }
func (b *recBackend) StartSyncDaemon(sd SyncDaemon) error {
	return b.rec("StartSyncDaemon %+v", sd)
}
func (b *recBackend) StopSyncDaemon(role string) error { return b.rec("StopSyncDaemon %s", role) }

// specString is a ServiceSpec as %+v prints it, the PROXY protocol and
// TOA added only when given (TOA is a pointer).
func specString(s ServiceSpec) string {
	out := fmt.Sprintf("{ServiceKey:%+v Scheduler:%s Flags:%v Persistent:%d Netmask:%s}", s.ServiceKey, s.Scheduler, s.Flags, s.Persistent, s.Netmask)
	if s.ProxyProtocol != "" {
		out += " proxy_protocol=" + s.ProxyProtocol
	}
	if s.TOA != nil {
		out += fmt.Sprintf(" toa=%v", *s.TOA)
	}
	return out
}

func destString(d DestSpec) string {
	s := fmt.Sprintf("%+v %s %d %s", d.Service, d.Address, d.Port, d.Forward)
	if d.Weight != nil {
		s += fmt.Sprintf(" w%d", *d.Weight)
	}
	if d.Upper != nil {
		s += fmt.Sprintf(" x%d", *d.Upper)
	}
	if d.Lower != nil {
		s += fmt.Sprintf(" y%d", *d.Lower)
	}
	return s
}

func listen(t *testing.T, b Backend) (*Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "govs.sock")
	srv, err := Listen(path, b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return NewClient(path), path
}

// TestEveryCommand: each client call reaches the backend method it names with
// its arguments intact, and each kind of refusal comes back with its
// status: 404, 409, 400, and 500 for anything else (400 for a reload, which
// fails only on the file).
func TestEveryCommand(t *testing.T) {
	b := &recBackend{}
	c, _ := listen(t, b)
	k := ServiceKey{Protocol: "udp", VIP: "2001:db8::1", Port: 53}
	w, x, y := 7, uint32(100), uint32(10)
	yes, no := true, false
	cmds := []struct {
		name string
		call func() error
		want string
	}{
		{"-A", func() error {
			return c.AddService(ServiceSpec{ServiceKey: k, Scheduler: "sh", Flags: []string{"sh-port"}, Persistent: 60, Netmask: "/64"})
		}, "AddService {ServiceKey:{Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} Scheduler:sh Flags:[sh-port] Persistent:60 Netmask:/64}"},
		{"-E", func() error { return c.EditService(ServiceSpec{ServiceKey: k, Scheduler: "rr"}) },
			"EditService {ServiceKey:{Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} Scheduler:rr Flags:[] Persistent:0 Netmask:}"},
		{"-A --proxy-protocol --toa", func() error {
			return c.AddService(ServiceSpec{ServiceKey: k, Scheduler: "rr", ProxyProtocol: "v2", TOA: &yes})
		}, "AddService {ServiceKey:{Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} Scheduler:rr Flags:[] Persistent:0 Netmask:} proxy_protocol=v2 toa=true"},
		{"-E --proxy-protocol none --toa=false", func() error {
			return c.EditService(ServiceSpec{ServiceKey: k, Scheduler: "rr", ProxyProtocol: "none", TOA: &no})
		}, "EditService {ServiceKey:{Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} Scheduler:rr Flags:[] Persistent:0 Netmask:} proxy_protocol=none toa=false"},
		{"-D", func() error { return c.DeleteService(k) }, "DeleteService {Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0}"},
		{"-C", c.Clear, "Clear"},
		{"-a", func() error {
			return c.AddDest(DestSpec{Service: k, Address: "2001:db8::2", Port: 5353, Forward: "tun", Weight: &w, Upper: &x, Lower: &y})
		}, "AddDest {Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} 2001:db8::2 5353 tun w7 x100 y10"},
		{"-e", func() error { return c.EditDest(DestSpec{Service: k, Address: "2001:db8::2"}) },
			"EditDest {Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} 2001:db8::2 0 "},
		{"-d", func() error { return c.DeleteDest(k, "2001:db8::2", 5353) },
			"DeleteDest {Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} 2001:db8::2 5353"},
		{"--add-laddr", func() error { return c.AddLocalAddr(LocalAddr{Service: k, Address: "2001:db8::a"}) },
			"AddLocalAddr {Service:{Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} Address:2001:db8::a}"},
		{"--del-laddr", func() error { return c.DeleteLocalAddr(LocalAddr{Service: k, Address: "2001:db8::a"}) },
			"DeleteLocalAddr {Service:{Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0} Address:2001:db8::a}"},
		{"-Z service", func() error { return c.Zero(&k) }, "Zero {Protocol:udp VIP:2001:db8::1 Port:53 FwMark:0}"},
		{"-Z", func() error { return c.Zero(nil) }, "Zero all"},
		{"--set", func() error { return c.SetTimeouts(Timeouts{TCP: 1, TCPFin: 2, UDP: 3}) }, "SetTimeouts {TCP:1 TCPFin:2 UDP:3}"},
		{"-c", func() error { _, err := c.Connections(false); return err }, "Connections false"},
		{"-c --persistent-conn", func() error { _, err := c.Connections(true); return err }, "Connections true"},
		{"--counters", func() error { _, err := c.Counters(); return err }, "Counters"},
		{"--reload", c.Reload, "Reload"},
		{"--shutdown", c.Shutdown, "Shutdown"},
		{"takeover", c.Handover, "Handover"},
		{"--start-daemon", func() error {
			return c.StartSyncDaemon(SyncDaemon{Role: "backup", Interface: "eth1", Peers: []string{"198.18.0.2"}, Port: 9000, SyncID: 4, KeyFile: "/k"})
		}, "StartSyncDaemon {Role:backup Interface:eth1 Group: Peers:[198.18.0.2] Port:9000 SyncID:4 KeyFile:/k Mode: Sent:<nil> Received:<nil>}"},
		{"--stop-daemon", func() error { return c.StopSyncDaemon("backup") }, "StopSyncDaemon backup"},
	}
	refusals := []struct {
		err  error
		code int
	}{
		{nil, http.StatusOK},
		{fmt.Errorf("%w: no such service", ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("%w: service exists", ErrExists), http.StatusConflict},
		{fmt.Errorf("%w: bad weight", ErrInvalid), http.StatusBadRequest},
		{errors.New("data path stuck"), http.StatusInternalServerError},
	}
	for _, cmd := range cmds {
		for _, r := range refusals {
			b.err = r.err
			err := cmd.call()
			calls := b.take()
			if len(calls) != 1 || calls[0] != cmd.want {
				t.Errorf("%s: backend got %q, want %q", cmd.name, calls, cmd.want)
			}
			code := r.code
			if cmd.name == "--reload" && r.err != nil { // a reload fails only on its file
				code = http.StatusBadRequest
			}
			var ae *APIError
			switch {
			case r.err == nil && err != nil:
				t.Errorf("%s: %v", cmd.name, err)
			case r.err == nil:
			case !errors.As(err, &ae):
				t.Errorf("%s refused with %v: client error %v (%T), want an APIError", cmd.name, r.err, err, err)
			case ae.Code != code || !strings.Contains(ae.Error(), r.err.Error()):
				t.Errorf("%s refused with %v: status %d %q, want %d with the message", cmd.name, r.err, ae.Code, ae.Msg, code)
			}
		}
	}
	b.err = nil
	// The listings come back whole.
	if got, err := c.Info(); err != nil || got != testInfo {
		t.Errorf("info %+v %v", got, err)
	}
	if got, err := c.Services(); err != nil || !reflect.DeepEqual(got, testServices) {
		t.Errorf("services %+v %v", got, err)
	}
	if got, err := c.Timeouts(); err != nil || got != testTimeouts {
		t.Errorf("timeouts %+v %v", got, err)
	}
	if got, err := c.Connections(true); err != nil || !reflect.DeepEqual(got, testConns) {
		t.Errorf("connections %+v %v", got, err)
	}
	if got, err := c.SyncDaemons(); err != nil || !reflect.DeepEqual(got, testSync) {
		t.Errorf("sync daemons %+v %v", got, err)
	}
	if got, err := c.Counters(); err != nil || got.DataPath["tx_errors"] != 5 {
		t.Errorf("counters %+v %v", got, err)
	}
	if got, err := c.BGP(); err != nil || !reflect.DeepEqual(got, testBGP) {
		t.Errorf("bgp %+v %v", got, err)
	}
}

// TestBadRequests: input the API cannot read is refused with 400 (404 or 405
// for what it does not serve) before the backend sees it.
func TestBadRequests(t *testing.T) {
	b := &recBackend{}
	srv := httptest.NewServer(Handler(b, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	huge := `{"protocol":"tcp","vip":"` + strings.Repeat("1", 1<<20) + `","port":80}`
	cases := []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/v1/services", `{"protocol":"tcp",`, 400},
		{"POST", "/v1/services", `{"protocol":"tcp","vip":"198.18.0.100","port":80,"sheduler":"rr"}`, 400},
		{"POST", "/v1/services", `{"protocol":"tcp","vip":"198.18.0.100","port":65536}`, 400},
		{"POST", "/v1/services", huge, 400},
		{"POST", "/v1/services", `{"protocol":"tcp","vip":"198.18.0.100","port":80,"proxy_protocol":"v3"}`, 400},
		{"PUT", "/v1/services", `{"protocol":"tcp","vip":"198.18.0.100","port":80,"proxy_protocol":"haproxy"}`, 400},
		{"POST", "/v1/services", `{"protocol":"tcp","vip":"198.18.0.100","port":80,"toa":"yes"}`, 400},
		{"POST", "/v1/services", ``, 400},
		{"PUT", "/v1/services", `[]`, 400},
		{"DELETE", "/v1/services?protocol=tcp&vip=198.18.0.100&port=http", ``, 400},
		{"DELETE", "/v1/services?protocol=tcp&vip=198.18.0.100", ``, 400},
		{"POST", "/v1/dests", `{"service":{"protocol":"tcp"},"address":1}`, 400},
		{"PUT", "/v1/dests", `{"weight":"heavy"}`, 400},
		{"DELETE", "/v1/dests?address=198.18.1.1&rport=80", ``, 400},
		{"DELETE", "/v1/dests?protocol=tcp&vip=198.18.0.100&port=80&address=198.18.1.1&rport=x", ``, 400},
		{"DELETE", "/v1/dests?protocol=tcp&vip=198.18.0.100&port=80&address=198.18.1.1", ``, 400},
		{"DELETE", "/v1/dests?protocol=tcp&vip=198.18.0.100&port=-1&address=198.18.1.1&rport=80", ``, 400},
		{"POST", "/v1/laddrs", `{"address":"198.18.2.1","extra":1}`, 400},
		{"DELETE", "/v1/laddrs", `nonsense`, 400},
		{"POST", "/v1/zero?vip=198.18.0.100&port=99999", ``, 400},
		{"PUT", "/v1/timeouts", `{"tcp":"900s"}`, 400},
		{"POST", "/v1/daemon", `{"role":"master","sync_id":256}`, 400},
		{"GET", "/v1/nothing", ``, 404},
		{"PATCH", "/v1/services", `{}`, 405},
		{"POST", "/v1/info", ``, 405},
		{"GET", "/v1/reload", ``, 405},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s %.40q: status %d, want %d (%s)", c.method, c.path, c.body, resp.StatusCode, c.code, body)
		}
		if c.code == 400 && !strings.Contains(string(body), `"error":"invalid`) {
			t.Errorf("%s %s: body %s, want a JSON error", c.method, c.path, body)
		}
		if calls := b.take(); len(calls) != 0 {
			t.Errorf("%s %s %.40q reached the backend: %q", c.method, c.path, c.body, calls)
		}
	}
}

// TestSocket: the socket is private, a stale one is replaced, a live one is
// not taken over, and a client finds out when nothing runs.
func TestSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "govs.sock")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A stale socket: a file nobody listens on.
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, nil, 0o644)
	srv, err := Listen(path, &recBackend{}, log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %v %v, want a socket of mode 0600", fi, err)
	}
	if _, err := Listen(path, &recBackend{}, log); err == nil || !strings.Contains(err.Error(), "another govsd") {
		t.Errorf("a second govsd on a live socket: %v", err)
	}
	if _, err := NewClient(path).Info(); err != nil {
		t.Errorf("the first govsd stopped answering: %v", err)
	}
	srv.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if _, err := NewClient(path).Info(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no govsd: %v, want ErrNotRunning", err)
	}
	os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644)
	if _, err := Listen(filepath.Join(dir, "plain", "govs.sock"), &recBackend{}, log); err == nil {
		t.Error("a socket under a file was created")
	}

	// Something else on the socket: a non-JSON error is still an APIError
	// with the status; a non-JSON answer is an error.
	other := filepath.Join(dir, "other.sock")
	ln, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/info" {
			io.WriteString(w, "not json")
			return
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
	})}
	go hs.Serve(ln)
	defer hs.Close()
	var ae *APIError
	if err := NewClient(other).Clear(); !errors.As(err, &ae) || ae.Code != http.StatusBadGateway {
		t.Errorf("plain-text 502: %v", err)
	}
	if _, err := NewClient(other).Info(); err == nil {
		t.Error("a non-JSON answer was accepted")
	}
}
