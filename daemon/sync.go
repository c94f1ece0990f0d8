package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/govs/govs/config"
	"github.com/govs/govs/connsync"
)

// connSync is the running connection synchronisation (director.sync).
type connSync struct {
	sender   *connsync.Sender
	receiver *connsync.Receiver
	cancel   context.CancelFunc
}

// startSync sets up the sync daemon. As master (or both) it makes the
// workers publish their connections, which must happen before the data
// path starts; as backup (or both) it installs what masters send.
func (d *Daemon) startSync(cfg *config.Sync) error {
	key, err := connsync.LoadKey(cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	s := &connSync{}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if cfg.Role == config.SyncMaster || cfg.Role == config.SyncBoth {
		s.sender, err = connsync.NewSender(connsync.SenderConfig{
			Interface: cfg.Interface, Group: cfg.Group, Peers: cfg.Peers, Port: cfg.Port, SyncID: cfg.SyncID, Key: key,
		})
		if err != nil {
			cancel()
			return fmt.Errorf("sync sender: %w", err)
		}
		d.dp.EnableSync(ctx, func(entries []connsync.Entry) {
			if err := s.sender.Send(entries); err != nil {
				d.log.Warn("sync send", "err", err)
			}
		})
	}
	if cfg.Role == config.SyncBackup || cfg.Role == config.SyncBoth {
		rc := connsync.ReceiverConfig{
			Interface: cfg.Interface, Group: cfg.Group, Port: cfg.Port, SyncID: cfg.SyncID, Key: key,
			Deliver: func(_ netip.Addr, entries []connsync.Entry) {
				d.dp.InstallSynced(slices.Clone(entries))
			},
		}
		if !cfg.Group.IsValid() {
			rc.AllowFrom = cfg.Peers
		}
		s.receiver, err = connsync.NewReceiver(rc)
		if err != nil {
			s.stop()
			return fmt.Errorf("sync receiver: %w", err)
		}
	}
	d.sync = s
	d.log.Info("connection sync started", "role", cfg.Role.String(), "interface", cfg.Interface, "sync_id", cfg.SyncID)
	return nil
}

func (s *connSync) stop() {
	if s == nil {
		return
	}
	s.cancel()
	if s.sender != nil {
		s.sender.Close()
	}
	if s.receiver != nil {
		s.receiver.Close()
	}
}

// syncCounters adds the sync daemon's counters to a counters map.
func (d *Daemon) syncCounters(m map[string]uint64) {
	if d.sync == nil {
		return
	}
	if s := d.sync.sender; s != nil {
		st := s.Stats()
		m["sync_sent_messages"] = st.Messages
		m["sync_sent_entries"] = st.Entries
		m["sync_send_errors"] = st.SendErrors
		m["sync_send_dropped"] = st.Dropped
	}
	if r := d.sync.receiver; r != nil {
		st := r.Stats()
		m["sync_received_messages"] = st.Messages
		m["sync_received_entries"] = st.Entries
		for i, n := range st.Rejected {
			if n > 0 {
				m["sync_rejected_"+connsync.Reason(i).String()] = n
			}
		}
	}
}
