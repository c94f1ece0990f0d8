package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// stubBackend refuses every change with a chosen error.
type stubBackend struct{ err error }

func (s stubBackend) Info() Info                                              { return Info{Version: "1.2.1"} }
func (s stubBackend) Services() []Service                                     { return nil }
func (s stubBackend) AddService(ServiceSpec) error                            { return s.err }
func (s stubBackend) EditService(ServiceSpec) error                           { return s.err }
func (s stubBackend) DeleteService(ServiceKey) error                          { return s.err }
func (s stubBackend) Clear() error                                            { return s.err }
func (s stubBackend) AddDest(DestSpec) error                                  { return s.err }
func (s stubBackend) EditDest(DestSpec) error                                 { return s.err }
func (s stubBackend) DeleteDest(ServiceKey, string, uint16) error             { return s.err }
func (s stubBackend) AddLocalAddr(LocalAddr) error                            { return s.err }
func (s stubBackend) DeleteLocalAddr(LocalAddr) error                         { return s.err }
func (s stubBackend) Zero(*ServiceKey) error                                  { return s.err }
func (s stubBackend) Timeouts() Timeouts                                      { return Timeouts{} }
func (s stubBackend) SetTimeouts(Timeouts) error                              { return s.err }
func (s stubBackend) Connections(context.Context, bool) ([]Connection, error) { return nil, s.err }
func (s stubBackend) Counters() (Counters, error)                             { return Counters{}, s.err }
func (s stubBackend) Reload() error                                           { return s.err }
func (s stubBackend) Shutdown() error                                         { return s.err }
func (s stubBackend) Handover() error                                         { return s.err }
func (s stubBackend) SyncDaemons() []SyncDaemon                               { return nil }
func (s stubBackend) BGP() BGP                                                { return BGP{} }
func (s stubBackend) StartSyncDaemon(SyncDaemon) error                        { return s.err }
func (s stubBackend) StopSyncDaemon(string) error                             { return s.err }

func TestErrorStatus(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		err  error
		code int
	}{
		{nil, http.StatusOK},
		{fmt.Errorf("%w: no such service", ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("%w: destination exists", ErrExists), http.StatusConflict},
		{fmt.Errorf("%w: bad weight", ErrInvalid), http.StatusBadRequest},
		{errors.New("boom"), http.StatusInternalServerError},
	}
	for _, c := range cases {
		srv := httptest.NewServer(Handler(stubBackend{c.err}, log))
		resp, err := http.Post(srv.URL+"/v1/services", "application/json", strings.NewReader(`{"protocol":"tcp","vip":"198.18.0.100","port":80}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != c.code {
			t.Errorf("error %v: status %d, want %d", c.err, resp.StatusCode, c.code)
		}
		if c.err != nil && !strings.Contains(string(body), c.err.Error()) {
			t.Errorf("error %v: body %s does not carry the message", c.err, body)
		}
	}
	// Unknown fields are refused, not ignored.
	srv := httptest.NewServer(Handler(stubBackend{}, log))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/services", "application/json", strings.NewReader(`{"protocol":"tcp","vip":"198.18.0.100","port":80,"sheduler":"rr"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a misspelt field: status %d, want 400", resp.StatusCode)
	}
}
