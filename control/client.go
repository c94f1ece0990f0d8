package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"
)

// DefaultSocket is where govsd listens unless configured otherwise.
const DefaultSocket = "/run/govs.sock"

// Client talks to govsd.
type Client struct {
	Path string
	http *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{Path: path, http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// Shutdown asks govsd to stop for good: detach XDP, remove what it pinned
// and the VIPs it added, and exit. It returns once that is done.
func (c *Client) Shutdown() error { return c.doSlow(http.MethodPost, "/v1/shutdown") }

// Handover asks the running govsd to give way to the caller (govsd
// --takeover): it returns once the running one has stopped its workers,
// saved its connections and closed its sockets.
func (c *Client) Handover() error { return c.doSlow(http.MethodPost, "/v1/handover") }

// doSlow is do for requests that wait for govsd to stop its workers
// (seconds on a large table), beyond the client's usual timeout.
func (c *Client) doSlow(method, path string) error {
	slow := *c
	h := *c.http
	h.Timeout = time.Minute
	slow.http = &h
	return slow.do(method, path, nil, nil, nil)
}

// Query returns the query string that names a service.
func (k ServiceKey) Query() url.Values {
	if k.FwMark != 0 {
		return url.Values{"fwmark": {strconv.FormatUint(uint64(k.FwMark), 10)}}
	}
	return url.Values{"protocol": {k.Protocol}, "vip": {k.VIP}, "port": {strconv.Itoa(int(k.Port))}}
}

// Info describes the daemon.
func (c *Client) Info() (Info, error) {
	var out Info
	return out, c.do(http.MethodGet, "/v1/info", nil, nil, &out)
}

// Services lists the virtual services.
func (c *Client) Services() ([]Service, error) {
	var out []Service
	return out, c.do(http.MethodGet, "/v1/services", nil, nil, &out)
}

// AddService is ipvsadm -A.
func (c *Client) AddService(s ServiceSpec) error {
	return c.do(http.MethodPost, "/v1/services", nil, s, nil)
}

// EditService is ipvsadm -E.
func (c *Client) EditService(s ServiceSpec) error {
	return c.do(http.MethodPut, "/v1/services", nil, s, nil)
}

// DeleteService is ipvsadm -D.
func (c *Client) DeleteService(k ServiceKey) error {
	return c.do(http.MethodDelete, "/v1/services", k.Query(), nil, nil)
}

// Clear is ipvsadm -C: every virtual service goes.
func (c *Client) Clear() error { return c.do(http.MethodDelete, "/v1/services", nil, nil, nil) }

// AddDest is ipvsadm -a.
func (c *Client) AddDest(d DestSpec) error { return c.do(http.MethodPost, "/v1/dests", nil, d, nil) }

// EditDest is ipvsadm -e.
func (c *Client) EditDest(d DestSpec) error { return c.do(http.MethodPut, "/v1/dests", nil, d, nil) }

// DeleteDest is ipvsadm -d.
func (c *Client) DeleteDest(k ServiceKey, addr string, port uint16) error {
	q := k.Query()
	q.Set("address", addr)
	q.Set("rport", strconv.Itoa(int(port)))
	return c.do(http.MethodDelete, "/v1/dests", q, nil, nil)
}

// AddLocalAddr is --add-laddr.
func (c *Client) AddLocalAddr(l LocalAddr) error {
	return c.do(http.MethodPost, "/v1/laddrs", nil, l, nil)
}

// DeleteLocalAddr is --del-laddr.
func (c *Client) DeleteLocalAddr(l LocalAddr) error {
	return c.do(http.MethodDelete, "/v1/laddrs", nil, l, nil)
}

// Zero is ipvsadm -Z: one service's counters, or all with a nil key.
func (c *Client) Zero(k *ServiceKey) error {
	var q url.Values
	if k != nil {
		q = k.Query()
	}
	return c.do(http.MethodPost, "/v1/zero", q, nil, nil)
}

// Timeouts returns the connection timeouts.
func (c *Client) Timeouts() (Timeouts, error) {
	var out Timeouts
	return out, c.do(http.MethodGet, "/v1/timeouts", nil, nil, &out)
}

// SetTimeouts is ipvsadm --set.
func (c *Client) SetTimeouts(t Timeouts) error {
	return c.do(http.MethodPut, "/v1/timeouts", nil, t, nil)
}

// Connections lists the connection table; with templates, the persistence
// templates too.
func (c *Client) Connections(templates bool) ([]Connection, error) {
	var out []Connection
	var q url.Values
	if templates {
		q = url.Values{"templates": {"1"}}
	}
	return out, c.do(http.MethodGet, "/v1/connections", q, nil, &out)
}

// Counters returns the data-path counters.
func (c *Client) Counters() (Counters, error) {
	var out Counters
	return out, c.do(http.MethodGet, "/v1/counters", nil, nil, &out)
}

// Reload asks govsd to re-read its configuration file.
func (c *Client) Reload() error { return c.do(http.MethodPost, "/v1/reload", nil, nil, nil) }

// SyncDaemons lists the running sync daemons (ipvsadm -L --daemon).
func (c *Client) SyncDaemons() ([]SyncDaemon, error) {
	var out []SyncDaemon
	return out, c.do(http.MethodGet, "/v1/daemon", nil, nil, &out)
}

// BGP reports the BGP speaker's peers and announced prefixes
// (govsadm -L --bgp).
func (c *Client) BGP() (BGP, error) {
	var out BGP
	return out, c.do(http.MethodGet, "/v1/bgp", nil, nil, &out)
}

// StartSyncDaemon is ipvsadm --start-daemon.
func (c *Client) StartSyncDaemon(sd SyncDaemon) error {
	return c.do(http.MethodPost, "/v1/daemon", nil, sd, nil)
}

// StopSyncDaemon is ipvsadm --stop-daemon.
func (c *Client) StopSyncDaemon(role string) error {
	return c.do(http.MethodDelete, "/v1/daemon", url.Values{"role": {role}}, nil, nil)
}

// ErrNotRunning is returned (wrapped) when nothing answers on the socket.
var ErrNotRunning = errors.New("govsd is not running")

func (c *Client) do(method, path string, q url.Values, in, out any) error {
	u := "http://govsd" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (no answer on %s)", ErrNotRunning, c.Path)
		}
		return fmt.Errorf("govsd at %s: %w", c.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return &APIError{Code: resp.StatusCode, Msg: e.Error}
		}
		return &APIError{Code: resp.StatusCode, Msg: resp.Status}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// APIError is a refusal from govsd.
type APIError struct {
	Code int
	Msg  string
}

func (e *APIError) Error() string { return e.Msg }
