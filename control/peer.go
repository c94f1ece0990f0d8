package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrPermission is returned (403) to a caller that may not make a request.
var ErrPermission = errors.New("permission denied")

// capNetAdmin is CAP_NET_ADMIN's bit in a capability set: what IPVS asks of
// a caller that changes its tables.
const capNetAdmin = 12

// Peer is the process at the other end of a control connection, as the
// kernel reports it (SO_PEERCRED) and /proc/PID/status describes it.
type Peer struct {
	Known    bool // SO_PEERCRED answered
	PID      int
	UID, GID int    // effective, when it connected
	CapEff   uint64 // effective capabilities (0 when /proc could not be read)
	Groups   []int  // supplementary groups
}

// Admin reports whether p may change govsd's configuration: uid 0 or
// CAP_NET_ADMIN in its effective set.
func (p Peer) Admin() bool {
	return p.Known && (p.UID == 0 || p.CapEff&(1<<capNetAdmin) != 0)
}

// InGroup reports whether gid is p's group or one of its supplementary groups.
func (p Peer) InGroup(gid int) bool {
	if !p.Known || gid < 0 {
		return false
	}
	if p.GID == gid {
		return true
	}
	for _, g := range p.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// Access says who may use the control socket, whatever the socket file's
// mode: changes need uid 0, CAP_NET_ADMIN or the user govsd runs as (who
// owns the socket file anyway); listings also the members of ListGroup.
type Access struct {
	// Owner is the uid govsd runs as; ListenAccess sets it.
	Owner int
	// ListGroup is the gid whose members may list (director.control_group);
	// -1: none.
	ListGroup int
	// GroupName is ListGroup as written, for messages.
	GroupName string
}

// AdminOnly lets only uid 0 and CAP_NET_ADMIN use the socket (and the user
// govsd runs as, which ListenAccess fills in).
var AdminOnly = Access{ListGroup: -1, Owner: -1}

// Authorize decides whether p may make a request; write is true for every
// request that changes something (anything but GET and HEAD). The error
// wraps ErrPermission and says what is missing.
func (a Access) Authorize(p Peer, write bool) error {
	if !p.Known {
		return fmt.Errorf("%w: govsd cannot identify the caller (SO_PEERCRED)", ErrPermission)
	}
	if p.Admin() || (a.Owner > 0 && p.UID == a.Owner) {
		return nil
	}
	who := fmt.Sprintf("uid %d", p.UID)
	if write {
		return fmt.Errorf("%w: changing govsd's configuration needs root or CAP_NET_ADMIN (caller: %s)", ErrPermission, who)
	}
	if p.InGroup(a.ListGroup) {
		return nil
	}
	if a.ListGroup >= 0 {
		name := a.GroupName
		if name == "" {
			name = strconv.Itoa(a.ListGroup)
		}
		return fmt.Errorf("%w: listing needs root, CAP_NET_ADMIN or membership of group %s (director.control_group) (caller: %s)", ErrPermission, name, who)
	}
	return fmt.Errorf("%w: listing needs root or CAP_NET_ADMIN; director.control_group can allow a group (caller: %s)", ErrPermission, who)
}

// peerKey carries a connection's Peer in its requests' contexts.
type peerKey struct{}

// peerContext is http.Server.ConnContext: it identifies the peer of a unix
// connection once, when it is accepted.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, peerOf(c))
}

// peerOf reads the credentials of c's peer.
func peerOf(c net.Conn) Peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return Peer{}
	}
	p := Peer{Known: true, PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}
	if f, err := os.Open("/proc/" + strconv.Itoa(p.PID) + "/status"); err == nil {
		p.CapEff, p.Groups = parseStatus(bufio.NewScanner(f))
		f.Close()
	}
	return p
}

// parseStatus reads CapEff and Groups from /proc/PID/status.
func parseStatus(s *bufio.Scanner) (capEff uint64, groups []int) {
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "CapEff":
			capEff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		case "Groups":
			for _, g := range strings.Fields(v) {
				if n, err := strconv.Atoi(g); err == nil {
					groups = append(groups, n)
				}
			}
		}
	}
	return capEff, groups
}

// guard refuses the requests a's rules do not allow the connection's peer.
func guard(h http.Handler, a Access) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(Peer)
		write := r.Method != http.MethodGet && r.Method != http.MethodHead
		if err := a.Authorize(p, write); err != nil {
			writeJSON(w, http.StatusForbidden, Error{err.Error()})
			return
		}
		h.ServeHTTP(w, r)
	})
}
