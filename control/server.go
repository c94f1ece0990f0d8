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

// Handler returns the API's HTTP handler over b.
func Handler(b Backend, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrNotFound):
				code = http.StatusNotFound
			case errors.Is(err, ErrExists):
				code = http.StatusConflict
			case errors.Is(err, ErrInvalid):
				code = http.StatusBadRequest
			case errors.Is(err, ErrPermission):
				code = http.StatusForbidden
			}
			writeJSON(w, code, Error{err.Error()})
			return
		}
		if v == nil {
			v = struct{}{}
		}
		writeJSON(w, http.StatusOK, v)
	}
	// body decodes a JSON request body into v.
	body := func(r *http.Request, v any) error {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("%w: request body: %v", ErrInvalid, err)
		}
		return nil
	}
	key := func(r *http.Request) (ServiceKey, bool, error) {
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
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) { reply(w, b.Info(), nil) })
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) { reply(w, b.Services(), nil) })
	mux.HandleFunc("POST /v1/services", func(w http.ResponseWriter, r *http.Request) {
		var s ServiceSpec
		if err := body(r, &s); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, b.AddService(s))
	})
	mux.HandleFunc("PUT /v1/services", func(w http.ResponseWriter, r *http.Request) {
		var s ServiceSpec
		if err := body(r, &s); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, b.EditService(s))
	})
	mux.HandleFunc("DELETE /v1/services", func(w http.ResponseWriter, r *http.Request) {
		k, ok, err := key(r)
		switch {
		case err != nil:
			reply(w, nil, err)
		case ok:
			reply(w, nil, b.DeleteService(k))
		default:
			reply(w, nil, b.Clear())
		}
	})
	mux.HandleFunc("POST /v1/dests", func(w http.ResponseWriter, r *http.Request) {
		var d DestSpec
		if err := body(r, &d); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, b.AddDest(d))
	})
	mux.HandleFunc("PUT /v1/dests", func(w http.ResponseWriter, r *http.Request) {
		var d DestSpec
		if err := body(r, &d); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, b.EditDest(d))
	})
	mux.HandleFunc("DELETE /v1/dests", func(w http.ResponseWriter, r *http.Request) {
		k, ok, err := key(r)
		if err == nil && !ok {
			err = fmt.Errorf("%w: no service named", ErrInvalid)
		}
		if err != nil {
			reply(w, nil, err)
			return
		}
		port, perr := strconv.ParseUint(r.URL.Query().Get("rport"), 10, 16)
		if perr != nil {
			reply(w, nil, fmt.Errorf("%w: rport", ErrInvalid))
			return
		}
		reply(w, nil, b.DeleteDest(k, r.URL.Query().Get("address"), uint16(port)))
	})
	mux.HandleFunc("POST /v1/laddrs", func(w http.ResponseWriter, r *http.Request) {
		var l LocalAddr
		if err := body(r, &l); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, b.AddLocalAddr(l))
	})
	mux.HandleFunc("DELETE /v1/laddrs", func(w http.ResponseWriter, r *http.Request) {
		var l LocalAddr
		if err := body(r, &l); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, b.DeleteLocalAddr(l))
	})
	mux.HandleFunc("POST /v1/zero", func(w http.ResponseWriter, r *http.Request) {
		k, ok, err := key(r)
		if err != nil {
			reply(w, nil, err)
			return
		}
		if ok {
			reply(w, nil, b.Zero(&k))
			return
		}
		reply(w, nil, b.Zero(nil))
	})
	mux.HandleFunc("GET /v1/timeouts", func(w http.ResponseWriter, r *http.Request) { reply(w, b.Timeouts(), nil) })
	mux.HandleFunc("PUT /v1/timeouts", func(w http.ResponseWriter, r *http.Request) {
		var t Timeouts
		if err := body(r, &t); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, b.SetTimeouts(t))
	})
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
	mux.HandleFunc("GET /v1/bgp", func(w http.ResponseWriter, r *http.Request) { reply(w, b.BGP(), nil) })
	mux.HandleFunc("GET /v1/daemon", func(w http.ResponseWriter, r *http.Request) { reply(w, b.SyncDaemons(), nil) })
	mux.HandleFunc("POST /v1/daemon", func(w http.ResponseWriter, r *http.Request) {
		var sd SyncDaemon
		if err := body(r, &sd); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, b.StartSyncDaemon(sd))
	})
	mux.HandleFunc("DELETE /v1/daemon", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, b.StopSyncDaemon(r.URL.Query().Get("role")))
	})
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, b.Shutdown())
	})
	mux.HandleFunc("POST /v1/handover", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, b.Handover())
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		err := b.Reload()
		if err != nil && !errors.Is(err, ErrInvalid) {
			err = fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		reply(w, nil, err)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
