package daemon

import (
	"context"
	"time"

	"github.com/govs/govs/connsync"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane"
)

// dataPath is what the Daemon drives: the AF_XDP data path
// (*dataplane.Director) in production, a fake in tests, so that reloads,
// health transitions, govsadm's commands and the metrics are tested
// without root.
type dataPath interface {
	metricsSource
	Apply(specs []dataplane.ServiceSpec) error
	Start()
	WaitNextHops(timeout time.Duration) bool
	Close() error
	SetTimeouts(t conntrack.Timeouts)
	SetSynGuard(o dataplane.SynGuardOptions) error
	SetSteerLimit(l dataplane.SteerLimit) error
	Connections(ctx context.Context) ([]dataplane.Conn, error)
	Templates(ctx context.Context) ([]dataplane.Template, error)
	EnableSync(sink func([]connsync.Entry)) (stop func())
	InstallSynced(entries []connsync.Entry)
}

var _ dataPath = (*dataplane.Director)(nil)
