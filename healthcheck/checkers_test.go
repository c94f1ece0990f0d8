package healthcheck

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/testutil"
)

const testTimeout = 500 * time.Millisecond

func target(ap netip.AddrPort, hc Spec) *Target {
	if hc.Timeout == 0 {
		hc.Timeout = testTimeout
	}
	hc.Interval, hc.Rise, hc.Fall = time.Second, 1, 1
	return &Target{Key: "test/" + ap.String(), Service: "test", Addr: ap.Addr(), Port: ap.Port(), Check: hc}
}

func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func wantResult(t *testing.T, got Result, ok bool, reason string) {
	t.Helper()
	if got.OK != ok || got.Reason != reason {
		t.Errorf("result = {OK:%v Reason:%q}, want {OK:%v Reason:%q}", got.OK, got.Reason, ok, reason)
	}
}

func tcpListen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// closedPort returns a loopback port with nothing listening (for TCP and,
// with network "udp", for UDP).
func closedPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	var a net.Addr
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a = c.LocalAddr()
		c.Close()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a = ln.Addr()
		ln.Close()
	}
	return addrPort(t, a)
}

// acceptAll accepts connections and keeps them open, unanswered, until
// the test ends.
func acceptAll(t *testing.T, ln net.Listener) {
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
}

func TestTCPCheck(t *testing.T) {
	ln := tcpListen(t, "tcp", "127.0.0.1:0")
	acceptAll(t, ln)
	wantResult(t, TCPChecker{}.Check(t.Context(), target(addrPort(t, ln.Addr()), Spec{Probe: TCPProbe{}})), true, "ok")

	wantResult(t, TCPChecker{}.Check(t.Context(), target(closedPort(t, "tcp"), Spec{Probe: TCPProbe{}})), false, "refused")
}

func TestTCPCheckIPv6(t *testing.T) {
	ln := tcpListen(t, "tcp6", "[::1]:0")
	acceptAll(t, ln)
	wantResult(t, TCPChecker{}.Check(t.Context(), target(addrPort(t, ln.Addr()), Spec{Probe: TCPProbe{}})), true, "ok")
}

// TestTCPCheckTimeout fills the accept queue of a listener that never
// accepts: the kernel then drops further SYNs and the connect times out.
func TestTCPCheckTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	full := false
	for range 8 {
		c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	if !full {
		t.Skip("the accept queue did not fill; cannot provoke a connect timeout")
	}
	wantResult(t, TCPChecker{}.Check(t.Context(), target(ap, Spec{Probe: TCPProbe{}, Timeout: 200 * time.Millisecond})), false, "timeout")
}

func TestTCPCheckBindAddr(t *testing.T) {
	ln := tcpListen(t, "tcp", "127.0.0.1:0")
	remote := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		remote <- c.RemoteAddr().String()
		c.Close()
	}()
	tg := target(addrPort(t, ln.Addr()), Spec{Probe: TCPProbe{}})
	tg.BindAddr = netip.MustParseAddr("127.0.0.2")
	wantResult(t, TCPChecker{}.Check(t.Context(), tg), true, "ok")
	select {
	case r := <-remote:
		if !strings.HasPrefix(r, "127.0.0.2:") {
			t.Errorf("check came from %s, want 127.0.0.2", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
}

func TestDialerSetsMark(t *testing.T) {
	testutil.RequireRoot(t, "SO_MARK needs CAP_NET_ADMIN")
	ln := tcpListen(t, "tcp", "127.0.0.1:0")
	acceptAll(t, ln)
	tg := target(addrPort(t, ln.Addr()), Spec{Probe: TCPProbe{}})
	tg.Mark = 0x6768
	conn, err := dialer(tg, "tcp").DialContext(t.Context(), "tcp", dialAddr(tg))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	var gerr error
	rc.Control(func(fd uintptr) { mark, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK) })
	if gerr != nil || mark != 0x6768 {
		t.Errorf("SO_MARK = %#x, %v; want 0x6768", mark, gerr)
	}
	wantResult(t, TCPChecker{}.Check(t.Context(), tg), true, "ok")
}

func httpCheck(h HTTPProbe) Spec {
	return Spec{Probe: h}
}

func TestHTTPCheck(t *testing.T) {
	type seen struct{ method, path, host, ua string }
	got := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.URL.RequestURI(), r.Host, r.UserAgent()}
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "all good here")
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusMovedPermanently)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ap := addrPort(t, srv.Listener.Addr())
	c := HTTPChecker{}

	cases := []struct {
		name   string
		check  HTTPProbe
		ok     bool
		reason string
	}{
		{"status match", HTTPProbe{Method: "GET", Path: "/ok", ExpectStatus: []int{200}}, true, "ok"},
		{"status 503", HTTPProbe{Method: "GET", Path: "/down", ExpectStatus: []int{200}}, false, "status 503"},
		{"status in list", HTTPProbe{Method: "GET", Path: "/nocontent", ExpectStatus: []int{200, 204}}, true, "ok"},
		{"empty list means 2xx", HTTPProbe{Method: "GET", Path: "/nocontent"}, true, "ok"},
		{"404", HTTPProbe{Method: "GET", Path: "/missing", ExpectStatus: []int{200}}, false, "status 404"},
		{"redirect not followed", HTTPProbe{Method: "GET", Path: "/moved", ExpectStatus: []int{200}}, false, "status 301"},
		{"body match", HTTPProbe{Method: "GET", Path: "/ok", ExpectStatus: []int{200}, ExpectBody: "good"}, true, "ok"},
		{"body mismatch", HTTPProbe{Method: "GET", Path: "/ok", ExpectStatus: []int{200}, ExpectBody: "bad"}, false, "body mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantResult(t, c.Check(t.Context(), target(ap, httpCheck(tc.check))), tc.ok, tc.reason)
			<-got
		})
	}

	t.Run("method path host", func(t *testing.T) {
		res := c.Check(t.Context(), target(ap, httpCheck(HTTPProbe{Method: "HEAD", Path: "/ok?probe=1", Host: "web.example.test", ExpectStatus: []int{200}})))
		wantResult(t, res, true, "ok")
		s := <-got
		if s != (seen{"HEAD", "/ok?probe=1", "web.example.test", "govs-healthcheck"}) {
			t.Errorf("server saw %+v", s)
		}
	})
	t.Run("default host and no probe", func(t *testing.T) {
		res := c.Check(t.Context(), target(ap, Spec{}))
		wantResult(t, res, false, "status 404") // GET / wants 200
		if s := <-got; s.method != "GET" || s.path != "/" || s.host != ap.String() {
			t.Errorf("server saw %+v", s)
		}
	})
	t.Run("refused", func(t *testing.T) {
		wantResult(t, c.Check(t.Context(), target(closedPort(t, "tcp"), httpCheck(HTTPProbe{Path: "/"}))), false, "refused")
	})
}

func TestHTTPCheckTimeout(t *testing.T) {
	ln := tcpListen(t, "tcp", "127.0.0.1:0")
	acceptAll(t, ln) // accepts, never answers
	hc := httpCheck(HTTPProbe{Method: "GET", Path: "/", ExpectStatus: []int{200}})
	hc.Timeout = 200 * time.Millisecond
	wantResult(t, HTTPChecker{}.Check(t.Context(), target(addrPort(t, ln.Addr()), hc)), false, "timeout")
}

func TestHTTPCheckClosedWithoutAnswer(t *testing.T) {
	ln := tcpListen(t, "tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
	}()
	wantResult(t, HTTPChecker{}.Check(t.Context(), target(addrPort(t, ln.Addr()), httpCheck(HTTPProbe{Path: "/"}))), false, "connection closed")
}

func TestHTTPSCheck(t *testing.T) {
	sni := make(chan string, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni <- r.TLS.ServerName
		if r.URL.Path != "/health" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "healthy")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the plain-HTTP case below is logged otherwise
	srv.StartTLS()
	defer srv.Close()
	ap := addrPort(t, srv.Listener.Addr())
	c := HTTPChecker{}
	hc := httpCheck(HTTPProbe{TLS: true, Method: "GET", Path: "/health", Host: "secure.example.test:8443", ExpectStatus: []int{200}, ExpectBody: "healthy"})
	// The test server's certificate is self-signed and not for this name:
	// the check must not care.
	wantResult(t, c.Check(t.Context(), target(ap, hc)), true, "ok")
	if s := <-sni; s != "secure.example.test" {
		t.Errorf("SNI = %q, want secure.example.test", s)
	}
	hc.Probe = HTTPProbe{TLS: true, Method: "GET", Path: "/other", ExpectStatus: []int{200}}
	wantResult(t, c.Check(t.Context(), target(ap, hc)), false, "status 503")
	<-sni

	// Plain HTTP to a TLS server fails (the server answers 400).
	plain := httpCheck(HTTPProbe{Method: "GET", Path: "/health", ExpectStatus: []int{200}})
	wantResult(t, HTTPChecker{}.Check(t.Context(), target(ap, plain)), false, "status 400")
}

// udpServer answers each datagram with reply(payload); nil means silence.
func udpServer(t *testing.T, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(buf[:n]); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return addrPort(t, pc.LocalAddr())
}

func TestUDPCheck(t *testing.T) {
	echo := udpServer(t, func(b []byte) []byte { return append([]byte("re: "), b...) })
	wrong := udpServer(t, func([]byte) []byte { return []byte("nope") })
	silent := udpServer(t, func([]byte) []byte { return nil })
	udp := func(send, expect string) Spec {
		return Spec{Probe: UDPProbe{Send: send, Expect: expect}, Timeout: 200 * time.Millisecond}
	}
	c := UDPChecker{}
	wantResult(t, c.Check(t.Context(), target(echo, udp("ping", "re: ping"))), true, "ok")
	wantResult(t, c.Check(t.Context(), target(echo, udp("ping", "ping"))), true, "ok") // contained
	wantResult(t, c.Check(t.Context(), target(echo, udp("ping", ""))), true, "ok")
	wantResult(t, c.Check(t.Context(), target(wrong, udp("ping", "pong"))), false, "reply mismatch")
	wantResult(t, c.Check(t.Context(), target(silent, udp("ping", "pong"))), false, "timeout")
	// Nothing expected: silence is not a failure (keepalived's UDP_CHECK).
	wantResult(t, c.Check(t.Context(), target(silent, udp("ping", ""))), true, "ok")
	// An ICMP port unreachable is, with or without expect.
	wantResult(t, c.Check(t.Context(), target(closedPort(t, "udp"), udp("ping", ""))), false, "refused")
	wantResult(t, c.Check(t.Context(), target(closedPort(t, "udp"), udp("ping", "pong"))), false, "refused")
}

func TestExecCheck(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Run through /bin/sh rather than executing the written file: a file
	// just written may be "text file busy" while other goroutines fork.
	exe := func(args ...string) Spec {
		return Spec{Probe: ExecProbe{Command: append([]string{"/bin/sh"}, args...)}}
	}
	ap := netip.MustParseAddrPort("127.0.0.1:8080")
	c := ExecChecker{}

	wantResult(t, c.Check(t.Context(), target(ap, exe(script("ok.sh", "exit 0\n")))), true, "ok")
	wantResult(t, c.Check(t.Context(), target(ap, exe(script("fail.sh", "exit 1\n")))), false, "exit status 1")
	if res := c.Check(t.Context(), target(ap, Spec{Probe: ExecProbe{Command: []string{filepath.Join(dir, "missing")}}})); res.OK || !strings.Contains(res.Reason, "no such file") {
		t.Errorf("missing program: %+v", res)
	}

	t.Run("substitution", func(t *testing.T) {
		out := filepath.Join(dir, "args")
		s := script("args.sh", `printf '%s|%s|%s' "$1" "$2" "$3" > "$4"`+"\n")
		for _, tc := range []struct {
			ap   netip.AddrPort
			want string
		}{
			{ap, "127.0.0.1|8080|http://127.0.0.1:8080/"},
			{netip.MustParseAddrPort("[2001:db8::1]:53"), "2001:db8::1|53|http://2001:db8::1:53/"},
			{netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("::ffff:198.18.0.1").As16()), 443), "198.18.0.1|443|http://198.18.0.1:443/"},
		} {
			wantResult(t, c.Check(t.Context(), target(tc.ap, exe(s, "{address}", "{port}", "http://{address}:{port}/", out))), true, "ok")
			b, err := os.ReadFile(out)
			if err != nil || string(b) != tc.want {
				t.Errorf("script got %q (%v), want %q", b, err, tc.want)
			}
		}
	})

	t.Run("timeout kills the process group", func(t *testing.T) {
		pidFile := filepath.Join(dir, "child.pid")
		s := script("hang.sh", "sleep 30 &\necho $! > "+pidFile+"\nsleep 30\n")
		hc := exe(s)
		hc.Timeout = 300 * time.Millisecond
		wantResult(t, c.Check(t.Context(), target(ap, hc)), false, "timeout")
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		// The background sleep was in the script's group: it must be dead
		// (gone, or a zombie nobody reaped yet).
		deadline := time.Now().Add(5 * time.Second)
		for processAlive(pid) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("child %d of the timed-out script still runs", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		wantResult(t, c.Check(ctx, target(ap, exe(script("long.sh", "sleep 30\n")))), false, "cancelled")
	})
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}
