package healthcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// httpRegistration: http and https share the checker and the optional
// http block; https is HTTP with TLS.
var httpRegistration = Registration{
	Kinds:     []string{"http", "https"},
	Checker:   HTTPChecker{},
	NeedsPort: true,
	Block:     "http",
	Settings: []Setting{
		{Name: "method", Kind: String, NonEmpty: true},
		{Name: "path", Kind: String, NonEmpty: true},
		{Name: "host", Kind: String, NonEmpty: true},
		{Name: "expect_status", Kind: Ints, Min: 100, Max: 599},
		{Name: "expect_body", Kind: String},
	},
	NewProbe: newHTTPProbe,
}

var (
	httpMethodPattern = regexp.MustCompile(`^[A-Z]+$`)
	httpPathPattern   = regexp.MustCompile(`^/[^\s]*$`)
)

// newHTTPProbe builds an http or https probe; without settings it is
// GET / expecting 200.
func newHTTPProbe(kind string, v Values) (Probe, []SettingError) {
	p := HTTPProbe{TLS: kind == "https", Method: http.MethodGet, Path: "/", ExpectStatus: []int{http.StatusOK}}
	var errs []SettingError
	if s, ok := v.String("method"); ok {
		if httpMethodPattern.MatchString(s) {
			p.Method = s
		} else {
			errs = append(errs, badSetting("method", "%q is not an HTTP method (methods are upper case, e.g. GET)", s))
		}
	}
	if s, ok := v.String("path"); ok {
		if httpPathPattern.MatchString(s) {
			p.Path = s
		} else {
			errs = append(errs, badSetting("path", "%q: the path must start with / and contain no spaces", s))
		}
	}
	if s, ok := v.String("host"); ok {
		if strings.ContainsAny(s, " \t\r\n/") {
			errs = append(errs, badSetting("host", "%q is not a valid host", s))
		}
		p.Host = s
	}
	if codes, ok := v.Ints("expect_status"); ok {
		if len(codes) == 0 {
			errs = append(errs, badSetting("expect_status", "at least one status is required"))
		}
		p.ExpectStatus = nil
		for _, c := range codes {
			p.ExpectStatus = append(p.ExpectStatus, int(c))
		}
	}
	p.ExpectBody, _ = v.String("expect_body")
	return p, errs
}

// HTTPProbe is an HTTP or, with TLS, HTTPS check: one request, and what the
// response must show.
type HTTPProbe struct {
	TLS    bool
	Method string // "" means GET
	Path   string // "" means "/"
	Host   string // Host header and SNI; "" means the target's address
	// ExpectStatus lists the statuses that pass; empty means any 2xx.
	ExpectStatus []int
	// ExpectBody, when set, must appear in the first 64 KiB of the body.
	ExpectBody string
}

// Kind implements Probe: "http", or "https" with TLS.
func (p HTTPProbe) Kind() string {
	if p.TLS {
		return "https"
	}
	return "http"
}

// maxBodyRead bounds how much of a response body is read to look for
// ExpectBody: a health page is small, and a huge one must not cost memory.
const maxBodyRead = 64 << 10

// HTTPChecker sends one request (HTTPProbe.Method, Path, Host) on a fresh
// connection and passes when the status is one of ExpectStatus (2xx when
// the list is empty) and, when ExpectBody is set, the first 64 KiB of the
// body contain it. Redirects are not followed: a 301 is "status 301".
//
// With TLS the server's certificate is NOT verified (InsecureSkipVerify):
// real servers behind a load balancer commonly use self-signed or internal
// certificates and are addressed by IP, and the check asks whether the
// server answers, not who it is. SNI is HTTPProbe.Host when set.
type HTTPChecker struct{}

// defaultHTTPProbe is used for a target whose probe is not an HTTPProbe:
// GET / expecting 200.
var defaultHTTPProbe = HTTPProbe{Method: http.MethodGet, Path: "/", ExpectStatus: []int{http.StatusOK}}

// Check implements Checker.
func (HTTPChecker) Check(ctx context.Context, t *Target) Result {
	ctx, cancel := withCheckTimeout(ctx, t)
	defer cancel()
	start := time.Now()

	hc, ok := probeOf[HTTPProbe](t)
	if !ok {
		hc = defaultHTTPProbe
	}
	method, path := hc.Method, hc.Path
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/"
	}
	scheme := "http"
	if hc.TLS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+dialAddr(t)+path, nil)
	if err != nil {
		return failResult(start, "bad request: "+err.Error())
	}
	req.Header.Set("User-Agent", "govs-healthcheck")
	if hc.Host != "" {
		req.Host = hc.Host
	}

	d := dialer(t, "tcp")
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", dialAddr(t))
		},
		// One connection per check, like keepalived: a kept-alive
		// connection would hide a server that stopped accepting.
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	if hc.TLS {
		sni := ""
		if hc.Host != "" {
			sni = hc.Host
			if h, _, err := net.SplitHostPort(hc.Host); err == nil {
				sni = h
			}
		}
		transport.TLSClientConfig = &tls.Config{ServerName: sni, InsecureSkipVerify: true} //nolint:gosec // see the type's comment
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	resp, err := client.Do(req)
	if err != nil {
		return errResult(ctx, start, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if !statusExpected(resp.StatusCode, hc.ExpectStatus) {
		return failResult(start, "status "+strconv.Itoa(resp.StatusCode))
	}
	if hc.ExpectBody != "" {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
		if !bytes.Contains(body, []byte(hc.ExpectBody)) {
			if err != nil {
				return errResult(ctx, start, err)
			}
			return failResult(start, "body mismatch")
		}
	}
	return okResult(start)
}

func statusExpected(code int, expect []int) bool {
	if len(expect) == 0 {
		return code >= 200 && code <= 299
	}
	for _, e := range expect {
		if code == e {
			return true
		}
	}
	return false
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the
// method and URL, so reasons stay short.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}
