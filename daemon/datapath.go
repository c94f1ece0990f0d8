package daemon

import (
	"context"
	"net/netip"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/lvs"
)

// dataPath is what the Daemon drives: the AF_XDP data path
// (*dataplane.Director) in production, a fake in tests, so that reloads,
// health transitions, govsadm's commands and the metrics are tested
// without root.
type dataPath interface {
	metricsSource
	Apply(specs []dataplane.ServiceSpec) error
	// Start adopts the connections a previous govsd left (Adopted), runs
	// the workers and puts the program on the interfaces.
	Start() error
	WaitNextHops(timeout time.Duration) bool
	// Close stops, keeping what is pinned for the next govsd; Shutdown
	// stops for good, removing it.
	Close() error
	Shutdown() error
	// Adopted reports whether New found state pinned by a previous govsd.
	Adopted() bool
	SetTimeouts(t conntrack.Timeouts)
	SetSynGuard(o dataplane.SynGuardOptions) error
	SetSteerLimit(l dataplane.SteerLimit) error
	Connections(ctx context.Context) ([]dataplane.Conn, error)
	Templates(ctx context.Context) ([]dataplane.Template, error)
	ExpireTemplates(ctx context.Context, vip netip.Addr, port uint16, proto lvs.Proto, dest netip.AddrPort) (int, error)
	ExpireMarkTemplates(ctx context.Context, mark uint32, dest netip.AddrPort) (int, error)
	EnableSyncRecords(sink func([]dataplane.SyncRecord)) (stop func())
	InstallSyncRecords(rs []dataplane.SyncRecord)
}

var _ dataPath = (*dataplane.Director)(nil)
