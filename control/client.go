package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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

// Services lists the virtual services.
func (c *Client) Services() ([]Service, error) {
	var out []Service
	return out, c.do(http.MethodGet, "/v1/services", &out)
}

// Connections lists the connection table.
func (c *Client) Connections() ([]Connection, error) {
	var out []Connection
	return out, c.do(http.MethodGet, "/v1/connections", &out)
}

// Counters returns the data-path counters.
func (c *Client) Counters() (Counters, error) {
	var out Counters
	return out, c.do(http.MethodGet, "/v1/counters", &out)
}

// Reload asks govsd to re-read its configuration file.
func (c *Client) Reload() error { return c.do(http.MethodPost, "/v1/reload", nil) }

func (c *Client) do(method, path string, out any) error {
	req, err := http.NewRequest(method, "http://govsd"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("cannot reach govsd at %s: is it running? (%w)", c.Path, err)
		}
		return fmt.Errorf("govsd at %s: %w", c.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("govsd: %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}
