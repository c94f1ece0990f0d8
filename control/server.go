package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Errors a Backend returns to pick the HTTP status (wrap them with %w).
var (
	ErrNotFound = errors.New("not found")      // 404
	ErrExists   = errors.New("already exists") // 409
	ErrInvalid  = errors.New("invalid")        // 400
)

// Backend is what the server needs from the daemon.
type Backend interface {
	Info() Info
	Services() []Service
	AddService(ServiceSpec) error
	EditService(ServiceSpec) error
	DeleteService(ServiceKey) error
	Clear() error
	AddDest(DestSpec) error
	EditDest(DestSpec) error
	DeleteDest(k ServiceKey, addr string, port uint16) error
	AddLocalAddr(LocalAddr) error
	DeleteLocalAddr(LocalAddr) error
	Zero(k *ServiceKey) error
	Timeouts() Timeouts
	SetTimeouts(Timeouts) error
	Connections(ctx context.Context, templates bool) ([]Connection, error)
	Counters() (Counters, error)
	Reload() error
	SyncDaemons() []SyncDaemon
	// BGP reports the BGP speaker: its peers' sessions and the announced
	// prefixes (govsadm -L --bgp).
	BGP() BGP
	StartSyncDaemon(SyncDaemon) error
	StopSyncDaemon(role string) error
	// Shutdown stops govsd for good: it detaches XDP, removes what it
	// pinned and the VIPs it added, answers, and exits.
	Shutdown() error
	// Handover gives way to a successor (govsd --takeover): govsd stops
	// its workers, saves its connections, closes its sockets, answers, and
	// exits leaving its pinned state to the successor.
	Handover() error
}

// Server serves the API on a unix socket.
type Server struct {
	path string
	ino  uint64 // the socket file's inode, so that Close removes only its own
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
}

// Listen creates the socket (mode 0600) at path, replacing a stale one; only
// uid 0 and CAP_NET_ADMIN may use it (AdminOnly).
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	return ListenAccess(path, b, log, AdminOnly)
}

// ListenAccess is Listen with the callers' rights given by a: each request's
// peer is checked (SO_PEERCRED), whatever the socket file's mode. With a
// ListGroup the socket is given to that group, mode 0660.
func ListenAccess(path string, b Backend, log *slog.Logger, a Access) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket dir: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another govsd is running", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	mode := os.FileMode(0o600)
	if a.ListGroup >= 0 {
		// The group's members must be able to connect to list.
		if err := os.Chown(path, -1, a.ListGroup); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
		mode = 0o660
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	a.Owner = os.Geteuid()
	s := &Server{path: path, ino: inode(path), ln: ln, log: log,
		srv: &http.Server{Handler: guard(Handler(b, log), a), ConnContext: peerContext, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket", "err", err)
		}
	}()
	return s, nil
}

// Close stops serving, letting answers under way finish (a second at
// most: the answer to a handover or shutdown request goes out after the
// work it reports), and removes the socket file unless it is no longer
// this server's: a successor (govsd --takeover) may have created its own
// at the same path meanwhile.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	if ino := inode(s.path); ino != 0 && ino == s.ino {
		os.Remove(s.path)
	}
	return err
}

// inode is the inode number of the file at path, 0 if there is none.
func inode(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

// Handler returns the API's HTTP handler over b. Each route is one line:
// what it reads from the request (nothing, a JSON body, a service key) and
// which Backend method it calls; the helpers below decode, call and answer.
func Handler(b Backend, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", answer(b.Info))
	mux.HandleFunc("GET /v1/services", answer(b.Services))
	mux.HandleFunc("POST /v1/services", decoded(checked(b.AddService)))
	mux.HandleFunc("PUT /v1/services", decoded(checked(b.EditService)))
	mux.HandleFunc("DELETE /v1/services", keyed(func(k *ServiceKey, _ *http.Request) error {
		if k == nil {
			return b.Clear()
		}
		return b.DeleteService(*k)
	}))
	mux.HandleFunc("POST /v1/dests", decoded(b.AddDest))
	mux.HandleFunc("PUT /v1/dests", decoded(b.EditDest))
	mux.HandleFunc("DELETE /v1/dests", keyed(func(k *ServiceKey, r *http.Request) error {
		if k == nil {
			return fmt.Errorf("%w: no service named", ErrInvalid)
		}
		q := r.URL.Query()
		port, err := strconv.ParseUint(q.Get("rport"), 10, 16)
		if err != nil {
			return fmt.Errorf("%w: rport", ErrInvalid)
		}
		return b.DeleteDest(*k, q.Get("address"), uint16(port))
	}))
	mux.HandleFunc("POST /v1/laddrs", decoded(b.AddLocalAddr))
	mux.HandleFunc("DELETE /v1/laddrs", decoded(b.DeleteLocalAddr))
	mux.HandleFunc("POST /v1/zero", keyed(func(k *ServiceKey, _ *http.Request) error { return b.Zero(k) }))
	mux.HandleFunc("GET /v1/timeouts", answer(b.Timeouts))
	mux.HandleFunc("PUT /v1/timeouts", decoded(b.SetTimeouts))
	mux.HandleFunc("GET /v1/connections", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		conns, err := b.Connections(ctx, r.URL.Query().Get("templates") != "")
		reply(w, conns, err)
	})
	mux.HandleFunc("GET /v1/counters", func(w http.ResponseWriter, r *http.Request) {
		c, err := b.Counters()
		reply(w, c, err)
	})
	mux.HandleFunc("GET /v1/bgp", answer(b.BGP))
	mux.HandleFunc("GET /v1/daemon", answer(b.SyncDaemons))
	mux.HandleFunc("POST /v1/daemon", decoded(b.StartSyncDaemon))
	mux.HandleFunc("DELETE /v1/daemon", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, b.StopSyncDaemon(r.URL.Query().Get("role")))
	})
	mux.HandleFunc("POST /v1/shutdown", called(b.Shutdown))
	mux.HandleFunc("POST /v1/handover", called(b.Handover))
	mux.HandleFunc("POST /v1/reload", called(func() error {
		// A refused reload is the caller's file at fault, never govsd's.
		err := b.Reload()
		if err != nil && !errors.Is(err, ErrInvalid) {
			err = fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return err
	}))
	return mux
}

// answer serves what get returns; it cannot fail.
func answer[T any](get func() T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { reply(w, get(), nil) }
}

// called serves the outcome of a request that carries nothing.
func called(call func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { reply(w, nil, call()) }
}

// decoded decodes the request's JSON body into a T and calls call with it:
// a body that does not decode is refused (400) without calling.
func decoded[T any](call func(T) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v T
		if err := decodeBody(r, &v); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, call(v))
	}
}

// checked calls call with a ServiceSpec that passes its Check; one that
// does not is refused (400) without calling.
func checked(call func(ServiceSpec) error) func(ServiceSpec) error {
	return func(s ServiceSpec) error {
		if err := s.Check(); err != nil {
			return err
		}
		return call(s)
	}
}

// keyed calls call with the service the query names (nil when it names
// none); a malformed key is refused (400) without calling.
func keyed(call func(k *ServiceKey, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, ok, err := serviceKey(r)
		if err != nil {
			reply(w, nil, err)
			return
		}
		if !ok {
			reply(w, nil, call(nil, r))
			return
		}
		reply(w, nil, call(&k, r))
	}
}

// reply answers v, or err with the status its sentinel picks.
func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeJSON(w, errorStatus(err), Error{err.Error()})
		return
	}
	if v == nil {
		v = struct{}{}
	}
	writeJSON(w, http.StatusOK, v)
}

// errorStatus is the HTTP status of a Backend error: the sentinel it wraps
// says whose fault it is; anything else is govsd's (500).
func errorStatus(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrExists):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrPermission):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// decodeBody decodes a JSON request body (1 MiB at most) into v; a field v
// lacks is an error, so that a misspelt option is not silently ignored.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", ErrInvalid, err)
	}
	return nil
}

// serviceKey reads the service a query names: fwmark=N, or protocol, vip
// and port; ok is false when it names none.
func serviceKey(r *http.Request) (k ServiceKey, ok bool, err error) {
	q := r.URL.Query()
	if m := q.Get("fwmark"); m != "" {
		n, err := strconv.ParseUint(m, 10, 32)
		if err != nil || n == 0 {
			return ServiceKey{}, false, fmt.Errorf("%w: fwmark %q", ErrInvalid, m)
		}
		return ServiceKey{FwMark: uint32(n)}, true, nil
	}
	if q.Get("vip") == "" {
		return ServiceKey{}, false, nil
	}
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil {
		return ServiceKey{}, false, fmt.Errorf("%w: port %q", ErrInvalid, q.Get("port"))
	}
	return ServiceKey{Protocol: q.Get("protocol"), VIP: q.Get("vip"), Port: uint16(port)}, true, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
