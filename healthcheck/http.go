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
	"strconv"
	"time"

	"github.com/govs/govs/config"
)

// maxBodyRead bounds how much of a response body is read to look for
// ExpectBody: a health page is small, and a huge one must not cost memory.
const maxBodyRead = 64 << 10

// HTTPChecker sends one request (HTTPCheck.Method, Path, Host) on a fresh
// connection and passes when the status is one of ExpectStatus (2xx when
// the list is empty) and, when ExpectBody is set, the first 64 KiB of the
// body contain it. Redirects are not followed: a 301 is "status 301".
//
// With TLS the server's certificate is NOT verified (InsecureSkipVerify):
// real servers behind a load balancer commonly use self-signed or internal
// certificates and are addressed by IP, and the check asks whether the
// server answers, not who it is. SNI is HTTPCheck.Host when set.
type HTTPChecker struct {
	TLS bool
}

var defaultHTTPCheck = config.HTTPCheck{Method: http.MethodGet, Path: "/", ExpectStatus: []int{http.StatusOK}}

// Check implements Checker.
func (c HTTPChecker) Check(ctx context.Context, t *Target) Result {
	ctx, cancel := withCheckTimeout(ctx, t)
	defer cancel()
	start := time.Now()

	hc := t.Check.HTTP
	if hc == nil {
		hc = &defaultHTTPCheck
	}
	method, path := hc.Method, hc.Path
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/"
	}
	scheme := "http"
	if c.TLS {
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
	if c.TLS {
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
