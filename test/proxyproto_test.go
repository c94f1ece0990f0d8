package test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/testutil"
	"github.com/govs/govs/internal/topo"
)

// The full-NAT local addresses of the PROXY protocol and TOA labs, on the
// director's real-server side.
const (
	ppLocal4 = "198.18.1.250"
	ppLocal6 = "2001:db8:1::250"
)

// The real servers' ports in these tests.
const (
	ppNginxPort   = 8080 // nginx, listen ... proxy_protocol
	ppFirstV1Port = 9001 // Go server: reads a PROXY v1 header, then speaks first
	ppFirstV2Port = 9002 // the same with a v2 header
	toaEchoPort   = 9100 // Go echo server without a PROXY header (TOA alone)
)

// ppBigSize is the size of the file nginx serves as /big.
const ppBigSize = 16 << 20

// ppLab is a full-NAT lab of n real servers: the real servers have no
// route back through the director, both VIPs are on the director and its
// local addresses on its real-server side.
func ppLab(t *testing.T, tag string, n int) *topo.Lab {
	t.Helper()
	lab := newLab(t, tag, topo.LabOptions{RealServers: n, NoReturnRoute: true})
	for _, a := range []string{labVIP4, labVIP6} {
		if err := lab.AddVIP(mustAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{ppLocal4, ppLocal6} {
		if err := lab.AddDirectorAddr(topo.DirectorRealIf, mustAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	return lab
}

// ppService is a full-NAT TCP service on vip:port to rport of the lab's
// first n real servers, with the local address of vip's family and
// further settings (proxy_protocol, toa, syn_proxy).
func ppService(name, vip string, port, rport, n int, settings ...string) testutil.Service {
	local := ppLocal4
	if strings.Contains(vip, ":") {
		local = ppLocal6
	}
	return testutil.Service{Name: name, VIP: vip, Port: port, Forward: "fullnat", LocalAddresses: []string{local},
		Settings: settings, Reals: testutil.Reals(rport, labReals(vip, n)...)}
}

// ppNginxConf is a real server's nginx: one process (master_process off,
// so that the process the test started, killed by its PID, is all there
// is), PROXY protocol required on both families. / answers the server's
// name, what the PROXY header said (client address and port, VIP and
// port) and the connection's own peer (the director's local address);
// /big is the 16 MiB file in the shared root.
const ppNginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 1024; }
http {
	access_log off;
	default_type application/octet-stream;
	keepalive_requests 10000;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[3]d proxy_protocol;
		listen [::]:%[3]d proxy_protocol;
		root %[2]s;
		location = / {
			default_type text/plain;
			return 200 "%[4]s $proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port $remote_addr\n";
		}
		location = /big { }
	}
}
`

// nginxBin returns the nginx binary, or skips the test when there is none.
func nginxBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("nginx not installed (Debian package nginx-light; .ci/deps installs it)")
	return ""
}

// serveNginxPP runs nginx (ppNginxConf) on port of every real server
// until the test ends, serving a 16 MiB random file as /big, and returns
// that file's SHA-256. It waits until every nginx accepts connections.
func serveNginxPP(t *testing.T, lab *topo.Lab, port int) [sha256.Size]byte {
	t.Helper()
	bin := nginxBin(t)
	root := t.TempDir()
	big := make([]byte, ppBigSize)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(root, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	var dirs []string
	for i, rs := range lab.Reals {
		dir := t.TempDir()
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, ppNginxConf, dir, root, port, fmt.Sprintf("rs%d", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		errLog := filepath.Join(dir, "error.log")
		startProcess(t, rs, bin, "-c", conf, "-p", dir+"/", "-e", errLog)
		t.Cleanup(func() {
			if t.Failed() {
				log, _ := os.ReadFile(errLog)
				t.Logf("%s nginx error.log:\n%s", rs.Name, log)
			}
		})
		dirs = append(dirs, dir)
	}
	// Ready when every server accepts on both families (these probes send
	// no PROXY header: nginx logs them as broken and closes).
	deadline := time.Now().Add(10 * time.Second)
	for i, rs := range lab.Reals {
		for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("[::1]:%d", port)} {
			for {
				c, err := rs.Dial("tcp", addr, time.Second)
				if err == nil {
					c.Close()
					break
				}
				if time.Now().After(deadline) {
					log, _ := os.ReadFile(filepath.Join(dirs[i], "error.log"))
					t.Fatalf("nginx on %s does not accept on %s: %v\n%s", rs.Name, addr, err, log)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return sum
}

// ppResponse sends one GET for path over conn (Connection: close when
// last) and returns the response, whose body the caller reads.
func ppResponse(conn net.Conn, r *bufio.Reader, path string, last bool) (*http.Response, error) {
	closing := ""
	if last {
		closing = "Connection: close\r\n"
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: v\r\n%s\r\n", path, closing); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp, nil
}

// ppGet sends one GET / over conn and returns the trimmed body.
func ppGet(conn net.Conn, r *bufio.Reader, last bool) (string, error) {
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	resp, err := ppResponse(conn, r, "/", last)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return strings.TrimSpace(string(b)), err
}

// checkPPBody checks an answer of ppNginxConf's /: nginx read a PROXY
// header naming the client's own address and port (client, the local
// address of its connection) and vip, and the connection itself came from
// the director's local address local (full-NAT). It returns the real
// server's name.
func checkPPBody(body string, client, vip netip.AddrPort, local netip.Addr) (string, error) {
	f := strings.Fields(body)
	if len(f) != 6 {
		return "", fmt.Errorf("body %q: want 6 fields (server, PROXY source address and port, destination address and port, peer)", body)
	}
	addr := func(s string) netip.Addr {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}
		}
		return a
	}
	if got := addr(f[1]); got != client.Addr() || f[2] != strconv.Itoa(int(client.Port())) {
		return f[0], fmt.Errorf("body %q: $proxy_protocol_addr/port %s %s, want the client's %s", body, f[1], f[2], client)
	}
	if got := addr(f[3]); got != vip.Addr() || f[4] != strconv.Itoa(int(vip.Port())) {
		return f[0], fmt.Errorf("body %q: $proxy_protocol_server_addr/port %s %s, want the VIP's %s", body, f[3], f[4], vip)
	}
	if got := addr(f[5]); got != local {
		return f[0], fmt.Errorf("body %q: $remote_addr %s, want the director's local address %s (full-NAT)", body, f[5], local)
	}
	return f[0], nil
}

// addrPort returns a connection's address as a netip.AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		panic(err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// localOf returns the director's full-NAT local address of vip's family.
func localOf(vip netip.AddrPort) netip.Addr {
	if vip.Addr().Is4() {
		return mustAddr(ppLocal4)
	}
	return mustAddr(ppLocal6)
}

// fastForwarded reads the XDP fast path's forwarded-packet counter.
func fastForwarded(t *testing.T, g *govsd) uint64 {
	t.Helper()
	return g.counter(t, "xdp", "fast_forwarded")
}

// checkNginxPP drives a PROXY protocol service on vip through nginx real
// servers (n of them, rr): new connections, one keep-alive connection of
// many requests (which the fast path carries once it is established) and
// the 16 MiB download, whose SHA-256 must be sum and whose packets the
// fast path must carry.
func checkNginxPP(t *testing.T, lab *topo.Lab, g *govsd, vip netip.AddrPort, n int, sum [sha256.Size]byte) {
	t.Helper()
	local := localOf(vip)

	// New connections: each its own header, each from its own port.
	hits := map[string]int{}
	for i := range 2 * n {
		var name string
		var err error
		for try := range 3 {
			if try > 0 {
				t.Logf("request %d, try %d: %v", i, try, err)
			}
			var conn net.Conn
			if conn, err = lab.Client.Dial("tcp", vip.String(), 3*time.Second); err != nil {
				continue
			}
			var body string
			body, err = ppGet(conn, bufio.NewReader(conn), true)
			client := addrPort(conn.LocalAddr())
			conn.Close()
			if err == nil {
				name, err = checkPPBody(body, client, vip, local)
				if err != nil {
					t.Fatalf("new connection %d from %s: %v", i, client, err)
				}
				break
			}
		}
		if err != nil {
			t.Fatalf("GET http://%s/ #%d: %v", vip, i, err)
		}
		hits[name]++
	}
	if len(hits) != n {
		t.Errorf("%d new connections to %s spread %v: want all %d real servers", 2*n, vip, hits, n)
	}

	// Keep-alive: the header once, in front of the first request; the
	// later requests (fast path) arrive with their sequence numbers
	// shifted by it, or nginx would not parse them.
	const requests = 30
	conn := dial(t, lab, vip.String())
	defer conn.Close()
	client := addrPort(conn.LocalAddr())
	r := bufio.NewReader(conn)
	fast0 := fastForwarded(t, g)
	first := ""
	for i := range requests {
		body, err := ppGet(conn, r, false)
		if err != nil {
			t.Fatalf("keep-alive request %d over one connection from %s: %v", i, client, err)
		}
		name, err := checkPPBody(body, client, vip, local)
		if err != nil {
			t.Fatalf("keep-alive request %d from %s: %v", i, client, err)
		}
		if first == "" {
			first = name
		} else if name != first {
			t.Fatalf("keep-alive request %d answered by %s, earlier ones by %s", i, name, first)
		}
	}
	// Only the handshake and the workers' warm-up of a few established
	// packets (both directions together) pass through the workers.
	if fast := fastForwarded(t, g) - fast0; fast < requests-8 {
		t.Errorf("%d keep-alive requests: fast path forwarded %d packets, want >= %d", requests, fast, requests-8)
	}
	// /big on the same connection: 16 MiB, most of it by the fast path.
	fast0 = fastForwarded(t, g)
	start := time.Now()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	resp, err := ppResponse(conn, r, "/big", true)
	if err != nil {
		t.Fatalf("GET http://%s/big: %v", vip, err)
	}
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || got != ppBigSize {
		t.Fatalf("GET http://%s/big: %d bytes of %d: %v", vip, got, ppBigSize, err)
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("GET http://%s/big: sha256 %x, want %x", vip, h.Sum(nil), sum)
	}
	fast := fastForwarded(t, g) - fast0
	t.Logf("%s: 16 MiB in %v, fast path forwarded %d packets", vip, time.Since(start).Round(time.Millisecond), fast)
	// 16 MiB is over 11,000 full-size segments from the real server alone.
	if fast < 8000 {
		t.Errorf("16 MiB download: fast path forwarded %d packets, want >= 8000 (most of them)", fast)
	}
}

// ppSignature opens every PROXY protocol v2 header.
const ppSignature = "\r\n\r\n\x00\r\nQUIT\n"

// readProxyHeader reads a PROXY protocol header of version ver ("v1" or
// "v2") from r, exactly as the director must write it (TCP over IPv4 or
// IPv6, v1 in canonical text, v2 with the PROXY command and no TLVs), and
// not a byte more, and returns the source and destination it names.
func readProxyHeader(r io.Reader, ver string) (src, dst netip.AddrPort, err error) {
	if ver == "v1" {
		// At most 107 bytes, CRLF included (the spec's bound).
		line := make([]byte, 0, 107)
		b := make([]byte, 1)
		for len(line) < 107 && !bytes.HasSuffix(line, []byte("\r\n")) {
			if _, err := io.ReadFull(r, b); err != nil {
				return src, dst, fmt.Errorf("v1 header %q: %w", line, err)
			}
			line = append(line, b[0])
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			return src, dst, fmt.Errorf("v1 header %q: no CRLF within 107 bytes", line)
		}
		f := strings.Split(strings.TrimSuffix(string(line), "\r\n"), " ")
		if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
			return src, dst, fmt.Errorf("v1 header %q: want PROXY TCP4|TCP6 src dst sport dport", line)
		}
		var ap [2]netip.AddrPort
		for i := range ap {
			a, err := netip.ParseAddr(f[2+i])
			p, perr := strconv.ParseUint(f[4+i], 10, 16)
			if err != nil || perr != nil || a.String() != f[2+i] || strconv.FormatUint(p, 10) != f[4+i] || a.Is4() != (f[1] == "TCP4") {
				return src, dst, fmt.Errorf("v1 header %q: address %q or port %q not canonical or not %s", line, f[2+i], f[4+i], f[1])
			}
			ap[i] = netip.AddrPortFrom(a, uint16(p))
		}
		return ap[0], ap[1], nil
	}
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return src, dst, fmt.Errorf("v2 header % x: %w", hdr, err)
	}
	if string(hdr[:12]) != ppSignature || hdr[12] != 0x21 {
		return src, dst, fmt.Errorf("v2 header % x: want the signature and 0x21 (version 2, PROXY)", hdr)
	}
	n := int(binary.BigEndian.Uint16(hdr[14:]))
	size := map[byte]int{0x11: 12, 0x21: 36}[hdr[13]]
	if size == 0 || n != size {
		return src, dst, fmt.Errorf("v2 header % x: family 0x%02x, length %d; want 0x11 (TCP over IPv4) with 12 or 0x21 (TCP over IPv6) with 36", hdr, hdr[13], n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return src, dst, fmt.Errorf("v2 header addresses: %w", err)
	}
	alen := (n - 4) / 2
	sa, _ := netip.AddrFromSlice(body[:alen])
	da, _ := netip.AddrFromSlice(body[alen : 2*alen])
	sp, dp := binary.BigEndian.Uint16(body[2*alen:]), binary.BigEndian.Uint16(body[2*alen+2:])
	return netip.AddrPortFrom(sa, sp), netip.AddrPortFrom(da, dp), nil
}

// servePPFirst runs, on port of every real server until the test ends, a
// server that speaks first, as SMTP does: it reads the PROXY header of
// version ver, writes "220 hello <source> to <destination>\r\n" (or "500
// <what was wrong>\r\n" and closes), then echoes.
func servePPFirst(t *testing.T, lab *topo.Lab, port int, ver string) {
	t.Helper()
	serveTCP(t, lab, port, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		src, dst, err := readProxyHeader(c, ver)
		if err != nil {
			fmt.Fprintf(c, "500 %v\r\n", err)
			return
		}
		fmt.Fprintf(c, "220 hello %s to %s\r\n", src, dst)
		io.Copy(c, c)
	})
}

// serveEcho runs a plain echo server on port of every real server until
// the test ends.
func serveEcho(t *testing.T, lab *topo.Lab, port int) {
	t.Helper()
	serveTCP(t, lab, port, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.Copy(c, c)
	})
}

// readBanner reads the banner of a servePPFirst server, sending nothing
// first, and checks that the server read a PROXY header naming client and
// vip.
func readBanner(r *bufio.Reader, conn net.Conn, client, vip netip.AddrPort) error {
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("banner (the client sends nothing first: the director must send the header with the handshake): %q: %w", line, err)
	}
	if want := fmt.Sprintf("220 hello %s to %s\r\n", client, vip); line != want {
		return fmt.Errorf("banner %q, want %q", line, want)
	}
	return nil
}

// echoLine sends line over conn and checks that it comes back.
func echoLine(r *bufio.Reader, conn net.Conn, line string) error {
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, line); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line {
		return fmt.Errorf("echo of %q: got %q, %v", line, got, err)
	}
	return nil
}

// checkServerFirst connects to a servePPFirst service on vip, reads the
// banner without sending anything, then exchanges a line and 4 MiB of
// echo, most of it through the fast path.
func checkServerFirst(t *testing.T, lab *topo.Lab, g *govsd, vip netip.AddrPort) {
	t.Helper()
	conn := dial(t, lab, vip.String())
	defer conn.Close()
	client := addrPort(conn.LocalAddr())
	r := bufio.NewReader(conn)
	if err := readBanner(r, conn, client, vip); err != nil {
		t.Fatalf("%s from %s: %v", vip, client, err)
	}
	if err := echoLine(r, conn, "ping\r\n"); err != nil {
		t.Fatalf("%s from %s: %v", vip, client, err)
	}
	// 4 MiB each way: the client's data with its sequence numbers
	// shifted, in bulk, through the fast path.
	const size = 4 << 20
	data := make([]byte, size)
	rand.Read(data)
	fast0 := fastForwarded(t, g)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	werr := make(chan error, 1)
	go func() { _, err := conn.Write(data); werr <- err }()
	got := make([]byte, size)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("%s: 4 MiB echo: %v", vip, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("%s: 4 MiB up: %v", vip, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: 4 MiB echo differs from what the client sent", vip)
	}
	fast := fastForwarded(t, g) - fast0
	t.Logf("%s: 4 MiB echo, fast path forwarded %d packets", vip, fast)
	if fast < 4000 {
		t.Errorf("4 MiB echo: fast path forwarded %d packets, want >= 4000 (most of them)", fast)
	}
}

// TestProxyProtocol is issue #17's end-to-end test of the PROXY protocol:
// nginx real servers that require it behind full-NAT services with
// proxy_protocol v2 and v1, IPv4 and IPv6, see the client's address and
// port (and the VIP's) on new and keep-alive connections, a 16 MiB
// download arrives intact through the fast path; a server that speaks
// first (the client sends nothing) gets its header right after the
// handshake; and all of that with the SYN proxy too, whose sequence
// translation combines with the header's.
func TestProxyProtocol(t *testing.T) {
	needRoot(t)
	const reals = 3
	lab := ppLab(t, "pp", reals)
	sum := serveNginxPP(t, lab, ppNginxPort)
	servePPFirst(t, lab, ppFirstV1Port, "v1")
	servePPFirst(t, lab, ppFirstV2Port, "v2")

	type family struct{ name, vip string }
	families := []family{{"ipv4", labVIP4}, {"ipv6", labVIP6}}
	// VIP ports: nginx with v2 on 80, with v1 on 81; the servers that
	// speak first behind v1 on 21, v2 on 22.
	var cfg testutil.Config
	for _, f := range families {
		cfg.Services = append(cfg.Services,
			ppService("ng2"+f.name, f.vip, 80, ppNginxPort, reals, "proxy_protocol: v2"),
			ppService("ng1"+f.name, f.vip, 81, ppNginxPort, reals, "proxy_protocol: v1"),
			ppService("sf1"+f.name, f.vip, 21, ppFirstV1Port, reals, "proxy_protocol: v1"),
			ppService("sf2"+f.name, f.vip, 22, ppFirstV2Port, reals, "proxy_protocol: v2"))
	}
	g := startGovsd(t, lab.Director, cfg.YAML())
	logOnFailure := func(t *testing.T, g *govsd) {
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := g.adm("--counters")
				t.Logf("govsadm --counters:\n%s", out)
				out, _ = g.adm("-L", "-n", "-c")
				t.Logf("govsadm -Lnc:\n%s", out)
			}
		})
	}
	logOnFailure(t, g)
	vipPort := func(vip string, port uint16) netip.AddrPort { return netip.AddrPortFrom(mustAddr(vip), port) }

	for _, f := range families {
		for _, v := range []struct {
			ver        string
			web, first uint16
		}{{"v2", 80, 22}, {"v1", 81, 21}} {
			t.Run("nginx/"+v.ver+"/"+f.name, func(t *testing.T) {
				checkNginxPP(t, lab, g, vipPort(f.vip, v.web), reals, sum)
			})
			t.Run("server-first/"+v.ver+"/"+f.name, func(t *testing.T) {
				checkServerFirst(t, lab, g, vipPort(f.vip, v.first))
			})
		}
	}

	// The SYN proxy opens the connection to the real server itself, after
	// the client's handshake: the header follows that second handshake.
	t.Run("syn_proxy", func(t *testing.T) {
		g.shutdown(t)
		var cfg testutil.Config
		for _, f := range families {
			cfg.Services = append(cfg.Services,
				ppService("ng2"+f.name, f.vip, 80, ppNginxPort, reals, "proxy_protocol: v2", "syn_proxy: on"),
				ppService("sf2"+f.name, f.vip, 22, ppFirstV2Port, reals, "proxy_protocol: v2", "syn_proxy: on"))
		}
		g := startGovsd(t, lab.Director, cfg.YAML())
		logOnFailure(t, g)
		for _, f := range families {
			t.Run("nginx/v2/"+f.name, func(t *testing.T) {
				checkNginxPP(t, lab, g, vipPort(f.vip, 80), reals, sum)
			})
			t.Run("server-first/v2/"+f.name, func(t *testing.T) {
				checkServerFirst(t, lab, g, vipPort(f.vip, 22))
			})
		}
		if accepted := g.counter(t, "datapath", "syncookies_accepted"); accepted == 0 {
			t.Errorf("syn_proxy: on, yet no SYN cookie was accepted: the SYN proxy did not open the connections")
		}
	})
}

// pktCapture is an AF_PACKET socket on one interface of a namespace: it
// sees the frames the interface receives and those it sends.
type pktCapture struct {
	fd int
	ns *topo.NS
}

// htons converts a 16-bit value to network byte order (AF_PACKET's
// protocol numbers).
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openCapture opens a capture on dev in ns, closed when the test ends.
func openCapture(t *testing.T, ns *topo.NS, dev string) *pktCapture {
	t.Helper()
	c := &pktCapture{fd: -1, ns: ns}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		c.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind AF_PACKET socket to %s: %w", dev, err)
		}
		tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if c.fd >= 0 {
		t.Cleanup(func() { unix.Close(c.fd) })
	}
	if err != nil {
		t.Fatalf("capture on %s %s: %v", ns.Name, dev, err)
	}
	return c
}

// tcpSeg is one captured TCP segment.
type tcpSeg struct {
	src, dst netip.AddrPort
	tcp      *layers.TCP
	// segment is the TCP header and payload as the IP header delimits
	// them (Ethernet padding excluded).
	segment []byte
}

func (s tcpSeg) String() string {
	flags := ""
	for _, f := range []struct {
		on   bool
		name string
	}{{s.tcp.SYN, "S"}, {s.tcp.ACK, "."}, {s.tcp.PSH, "P"}, {s.tcp.FIN, "F"}, {s.tcp.RST, "R"}} {
		if f.on {
			flags += f.name
		}
	}
	var opts []string
	for _, o := range s.tcp.Options {
		opts = append(opts, fmt.Sprintf("%d/%d:%x", o.OptionType, o.OptionLength, o.OptionData))
	}
	return fmt.Sprintf("%s > %s [%s] seq %d ack %d len %d opts %v", s.src, s.dst, flags, s.tcp.Seq, s.tcp.Ack, len(s.tcp.Payload), opts)
}

// segments reads the TCP segments captured so far: until no frame has
// come for 200 ms, at most 3 s and 5000 frames.
func (c *pktCapture) segments() []tcpSeg {
	var segs []tcpSeg
	buf := make([]byte, 1<<17) // a GSO frame the real server sends
	deadline := time.Now().Add(3 * time.Second)
	for range 5000 {
		if time.Now().After(deadline) {
			break
		}
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			break // EAGAIN: nothing for 200 ms
		}
		frame := append([]byte(nil), buf[:min(n, len(buf))]...)
		pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		tl, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tl == nil {
			continue
		}
		var src, dst netip.Addr
		var seg []byte
		if ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
			seg = ip.Payload
		} else if ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			src, _ = netip.AddrFromSlice(ip.SrcIP)
			dst, _ = netip.AddrFromSlice(ip.DstIP)
			seg = ip.Payload
		} else {
			continue
		}
		segs = append(segs, tcpSeg{src: netip.AddrPortFrom(src, uint16(tl.SrcPort)), dst: netip.AddrPortFrom(dst, uint16(tl.DstPort)),
			tcp: tl, segment: seg})
	}
	return segs
}

// tcpOption returns the first option of kind in the segment.
func tcpOption(tl *layers.TCP, kind layers.TCPOptionKind) (layers.TCPOption, bool) {
	for _, o := range tl.Options {
		if o.OptionType == kind {
			return o, true
		}
	}
	return layers.TCPOption{}, false
}

// mssOf returns the MSS a SYN or SYN-ACK announces (0 without one).
func mssOf(tl *layers.TCP) uint16 {
	if o, ok := tcpOption(tl, layers.TCPOptionKindMSS); ok && len(o.OptionData) == 2 {
		return binary.BigEndian.Uint16(o.OptionData)
	}
	return 0
}

// tcpChecksumOK reports whether a TCP segment's checksum, over the
// pseudo-header of src and dst, is complete and right.
func tcpChecksumOK(src, dst netip.Addr, seg []byte) bool {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	var tail [8]byte
	binary.BigEndian.PutUint32(tail[:4], uint32(len(seg)))
	tail[7] = 6 // the pseudo-header's length and protocol (the IPv6 layout sums as IPv4's)
	add(tail[:])
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}

// TestTOA is issue #17's TOA test: through full-NAT services with toa:
// true (alone, and with proxy_protocol: v2), IPv4 and IPv6, the segment
// that completes the real server's handshake carries TCP option 254 with
// the client's port and address (8 bytes over IPv4, 20 over IPv6) and a
// correct checksum, as the frames captured on the real server's interface
// show; once the real server has answered, the client's segments no
// longer carry it; and the SYN-ACK the client receives announces the real
// server's MSS lowered by the option's length. (The toa kernel module
// itself cannot be loaded here: the frames are what it would read.)
func TestTOA(t *testing.T) {
	needRoot(t)
	lab := ppLab(t, "toa", 1)
	serveEcho(t, lab, toaEchoPort)
	servePPFirst(t, lab, ppFirstV2Port, "v2")
	var cfg testutil.Config
	for _, f := range []struct{ name, vip string }{{"4", labVIP4}, {"6", labVIP6}} {
		cfg.Services = append(cfg.Services,
			ppService("toa"+f.name, f.vip, 80, toaEchoPort, 1, "toa: true"),
			ppService("toapp"+f.name, f.vip, 81, ppFirstV2Port, 1, "toa: true", "proxy_protocol: v2"))
	}
	g := startGovsd(t, lab.Director, cfg.YAML())
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := g.adm("--counters")
			t.Logf("govsadm --counters:\n%s", out)
		}
	})

	for _, tc := range []struct {
		name     string
		vip      netip.AddrPort
		real     netip.AddrPort
		proxyHdr bool
	}{
		{"toa/ipv4", netip.AddrPortFrom(mustAddr(labVIP4), 80), netip.AddrPortFrom(lab.RealAddrs[0], toaEchoPort), false},
		{"toa/ipv6", netip.AddrPortFrom(mustAddr(labVIP6), 80), netip.AddrPortFrom(lab.RealAddrs6[0], toaEchoPort), false},
		{"toa+v2/ipv4", netip.AddrPortFrom(mustAddr(labVIP4), 81), netip.AddrPortFrom(lab.RealAddrs[0], ppFirstV2Port), true},
		{"toa+v2/ipv6", netip.AddrPortFrom(mustAddr(labVIP6), 81), netip.AddrPortFrom(lab.RealAddrs6[0], ppFirstV2Port), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rsCap := openCapture(t, lab.Reals[0], topo.RealIf)
			clientCap := openCapture(t, lab.Client, topo.ClientIf)
			conn := dial(t, lab, tc.vip.String())
			client := addrPort(conn.LocalAddr())
			r := bufio.NewReader(conn)
			if tc.proxyHdr {
				if err := readBanner(r, conn, client, tc.vip); err != nil {
					t.Fatalf("from %s: %v", client, err)
				}
			}
			// The second line goes out after the real server's answer
			// to the first: without the option.
			for _, line := range []string{"first\r\n", "second\r\n"} {
				if err := echoLine(r, conn, line); err != nil {
					t.Fatalf("from %s: %v", client, err)
				}
			}
			conn.Close()
			local := localOf(tc.vip)
			rsSegs, clientSegs := rsCap.segments(), clientCap.segments()
			dump := func() {
				for _, s := range rsSegs {
					t.Logf("%s %s: %s", lab.Reals[0].Name, topo.RealIf, s)
				}
				for _, s := range clientSegs {
					t.Logf("%s %s: %s", lab.Client.Name, topo.ClientIf, s)
				}
			}

			// On the real server: the director's SYN (from a port of its
			// local address), the real server's SYN-ACK, then the
			// segment that completes the handshake.
			var syn, synAck, hsAck, second *tcpSeg
			for i := range rsSegs {
				s := &rsSegs[i]
				switch {
				case syn == nil:
					if s.src.Addr() == local && s.dst == tc.real && s.tcp.SYN && !s.tcp.ACK {
						syn = s
					}
				case s.src == tc.real && s.dst == syn.src && s.tcp.SYN && s.tcp.ACK:
					if synAck == nil {
						synAck = s
					}
				case s.src == syn.src && s.dst == tc.real && !s.tcp.SYN:
					if hsAck == nil {
						hsAck = s
					}
					if bytes.Contains(s.tcp.Payload, []byte("second")) && second == nil {
						second = s
					}
				}
			}
			if syn == nil || synAck == nil || hsAck == nil || second == nil {
				dump()
				t.Fatalf("capture on the real server lacks the connection's SYN (%v), SYN-ACK (%v), handshake ACK (%v) or the second line (%v)",
					syn != nil, synAck != nil, hsAck != nil, second != nil)
			}
			want := make([]byte, 2, 18)
			binary.BigEndian.PutUint16(want, client.Port())
			want = append(want, client.Addr().AsSlice()...)
			wantLen := 8
			if client.Addr().Is6() {
				wantLen = 20
			}
			o, ok := tcpOption(hsAck.tcp, 254)
			if !ok || int(o.OptionLength) != wantLen || !bytes.Equal(o.OptionData, want) {
				dump()
				t.Fatalf("segment completing the real server's handshake: %s; want option 254 of length %d with % x (client %s)",
					hsAck, wantLen, want, client)
			}
			if !tcpChecksumOK(hsAck.src.Addr(), hsAck.dst.Addr(), hsAck.segment) {
				t.Errorf("segment with the TOA option: TCP checksum %#04x does not verify: %s", hsAck.tcp.Checksum, hsAck)
			}
			if tc.proxyHdr && !bytes.HasPrefix(hsAck.tcp.Payload, []byte(ppSignature)) {
				t.Errorf("segment completing the real server's handshake carries % x, want the PROXY v2 header with the option", hsAck.tcp.Payload)
			}
			if _, ok := tcpOption(second.tcp, 254); ok {
				dump()
				t.Errorf("the client's segment after the real server answered still carries the TOA option: %s", second)
			}

			// On the client: the SYN-ACK from the VIP announces the real
			// server's MSS less the option's length.
			var clientSynAck *tcpSeg
			for i := range clientSegs {
				s := &clientSegs[i]
				if s.src == tc.vip && s.dst == client && s.tcp.SYN && s.tcp.ACK {
					clientSynAck = s
					break
				}
			}
			if clientSynAck == nil {
				dump()
				t.Fatalf("capture on the client lacks the SYN-ACK from %s to %s", tc.vip, client)
			}
			if rsMSS, cMSS := mssOf(synAck.tcp), mssOf(clientSynAck.tcp); rsMSS == 0 || int(cMSS) != int(rsMSS)-wantLen {
				dump()
				t.Errorf("MSS: the real server announced %d, the client received %d; want %d (less the %d-byte option)", rsMSS, cMSS, int(rsMSS)-wantLen, wantLen)
			}
		})
	}
}
