package daemon

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/govs/govs/config"
	"github.com/govs/govs/connsync"
	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/control"
	"github.com/govs/govs/dataplane"
	"github.com/govs/govs/lvs"
)

// connSync is the connection synchronisation daemon (director.sync,
// ipvsadm --start-daemon): a master part that sends this director's
// connections and a backup part that installs other directors'. Either can
// run alone, or both.
type connSync struct {
	mu     sync.Mutex
	master *syncMaster
	backup *syncBackup
}

type syncMaster struct {
	cfg      config.Sync
	sender   *connsync.Sender
	stopPump func()
}

type syncBackup struct {
	cfg      config.Sync
	receiver *connsync.Receiver
}

// startSync starts what director.sync's role asks for.
func (d *Daemon) startSync(cfg *config.Sync) error {
	if cfg.Role == config.SyncMaster || cfg.Role == config.SyncBoth {
		if err := d.startSyncPart(*cfg, true); err != nil {
			return err
		}
	}
	if cfg.Role == config.SyncBackup || cfg.Role == config.SyncBoth {
		if err := d.startSyncPart(*cfg, false); err != nil {
			return err
		}
	}
	return nil
}

// startSyncPart starts the master (sender) or the backup (receiver) part.
func (d *Daemon) startSyncPart(cfg config.Sync, master bool) error {
	key, err := connsync.LoadKey(cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("%w: sync key: %v", control.ErrInvalid, err)
	}
	s := d.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	role := "backup"
	if master {
		role = "master"
	}
	if (master && s.master != nil) || (!master && s.backup != nil) {
		return fmt.Errorf("%w: the %s sync daemon is already running", control.ErrExists, role)
	}
	if master {
		sender, err := connsync.NewSender(connsync.SenderConfig{
			Interface: cfg.Interface, Group: cfg.Group, Peers: cfg.Peers, Port: cfg.Port, SyncID: cfg.SyncID, Key: key,
		})
		if err != nil {
			return fmt.Errorf("%w: sync sender: %v", control.ErrInvalid, err)
		}
		m := &syncMaster{cfg: cfg, sender: sender}
		var buf []connsync.Entry // the pump calls the sink from one goroutine
		m.stopPump = d.dp.EnableSyncRecords(func(rs []dataplane.SyncRecord) {
			buf = appendEntries(buf[:0], rs)
			if err := sender.Send(buf); err != nil {
				d.log.Warn("sync send", "err", err)
			}
		})
		s.master = m
	} else {
		rc := connsync.ReceiverConfig{
			Interface: cfg.Interface, Group: cfg.Group, Port: cfg.Port, SyncID: cfg.SyncID, Key: key,
			Deliver: func(_ netip.Addr, entries []connsync.Entry) {
				d.dp.InstallSyncRecords(recordsOf(entries))
			},
		}
		if !cfg.Group.IsValid() {
			rc.AllowFrom = cfg.Peers
		}
		receiver, err := connsync.NewReceiver(rc)
		if err != nil {
			return fmt.Errorf("%w: sync receiver: %v", control.ErrInvalid, err)
		}
		s.backup = &syncBackup{cfg: cfg, receiver: receiver}
	}
	d.log.Info("sync daemon started", "role", role, "interface", cfg.Interface, "sync_id", cfg.SyncID)
	return nil
}

// stop ends both parts.
func (s *connSync) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopMaster()
	s.stopBackup()
}

func (s *connSync) stopMaster() bool {
	if s.master == nil {
		return false
	}
	s.master.stopPump()
	s.master.sender.Close()
	s.master = nil
	return true
}

func (s *connSync) stopBackup() bool {
	if s.backup == nil {
		return false
	}
	s.backup.receiver.Close()
	s.backup = nil
	return true
}

// SyncDaemons implements control.Backend (ipvsadm -L --daemon).
func (d *Daemon) SyncDaemons() []control.SyncDaemon {
	s := d.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []control.SyncDaemon
	for _, p := range []struct {
		role string
		cfg  *config.Sync
	}{{"master", cfgOf(s.master)}, {"backup", cfgOfBackup(s.backup)}} {
		if p.cfg == nil {
			continue
		}
		sd := control.SyncDaemon{Role: p.role, Interface: p.cfg.Interface, Port: p.cfg.Port, SyncID: p.cfg.SyncID, KeyFile: p.cfg.KeyFile}
		if p.cfg.Group.IsValid() {
			sd.Group = p.cfg.Group.String()
			sd.Mode = "multicast"
		} else {
			sd.Mode = "unicast"
		}
		for _, peer := range p.cfg.Peers {
			sd.Peers = append(sd.Peers, peer.String())
		}
		if p.role == "master" {
			st := s.master.sender.Stats()
			sd.Sent = &control.SyncSent{Messages: st.Messages, Entries: st.Entries, Errors: st.SendErrors, Dropped: st.Dropped}
		} else {
			sd.Received = receivedOf(s.backup.receiver.Stats())
		}
		out = append(out, sd)
	}
	return out
}

// receivedOf turns a receiver's counters into the listing's.
func receivedOf(st connsync.ReceiverStats) *control.SyncReceived {
	r := &control.SyncReceived{Messages: st.Messages, Entries: st.Entries, Rejected: st.RejectedTotal()}
	for i, n := range st.Rejected {
		if n > 0 {
			if r.RejectedBy == nil {
				r.RejectedBy = map[string]uint64{}
			}
			r.RejectedBy[connsync.Reason(i).String()] = n
		}
	}
	return r
}

func cfgOf(m *syncMaster) *config.Sync {
	if m == nil {
		return nil
	}
	return &m.cfg
}

func cfgOfBackup(b *syncBackup) *config.Sync {
	if b == nil {
		return nil
	}
	return &b.cfg
}

// StartSyncDaemon implements control.Backend (ipvsadm --start-daemon).
func (d *Daemon) StartSyncDaemon(sd control.SyncDaemon) error {
	cfg := config.Sync{Interface: sd.Interface, Port: sd.Port, SyncID: sd.SyncID, KeyFile: sd.KeyFile}
	if cfg.Interface == "" {
		return fmt.Errorf("%w: the sync daemon needs an interface (--mcast-interface)", control.ErrInvalid)
	}
	if cfg.Port == 0 {
		cfg.Port = config.DefaultSyncPort
	}
	if cfg.KeyFile == "" {
		d.mu.Lock()
		if d.cfg.Director.Sync != nil {
			cfg.KeyFile = d.cfg.Director.Sync.KeyFile
		}
		d.mu.Unlock()
	}
	if cfg.KeyFile == "" {
		return fmt.Errorf("%w: the sync daemon needs a shared key (--sync-key FILE, or director.sync.key_file)", control.ErrInvalid)
	}
	for _, p := range sd.Peers {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return fmt.Errorf("%w: bad peer %q", control.ErrInvalid, p)
		}
		cfg.Peers = append(cfg.Peers, a)
	}
	if len(cfg.Peers) == 0 {
		group := sd.Group
		if group == "" {
			group = config.DefaultSyncGroup.String()
		}
		g, err := netip.ParseAddr(group)
		if err != nil || !g.IsMulticast() {
			return fmt.Errorf("%w: bad multicast group %q", control.ErrInvalid, group)
		}
		cfg.Group = g
	}
	switch sd.Role {
	case "master":
		return d.startSyncPart(cfg, true)
	case "backup":
		return d.startSyncPart(cfg, false)
	}
	return fmt.Errorf("%w: sync daemon role %q (master or backup)", control.ErrInvalid, sd.Role)
}

// StopSyncDaemon implements control.Backend (ipvsadm --stop-daemon).
func (d *Daemon) StopSyncDaemon(role string) error {
	s := d.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	var stopped bool
	switch role {
	case "master":
		stopped = s.stopMaster()
	case "backup":
		stopped = s.stopBackup()
	default:
		return fmt.Errorf("%w: sync daemon role %q (master or backup)", control.ErrInvalid, role)
	}
	if !stopped {
		return fmt.Errorf("%w: no %s sync daemon is running", control.ErrNotFound, role)
	}
	d.log.Info("sync daemon stopped", "role", role)
	return nil
}

// syncCounters adds the sync daemon's counters to a counters map.
func (d *Daemon) syncCounters(m map[string]uint64) {
	s := d.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master != nil {
		st := s.master.sender.Stats()
		m["sync_sent_messages"] = st.Messages
		m["sync_sent_entries"] = st.Entries
		m["sync_send_errors"] = st.SendErrors
		m["sync_send_dropped"] = st.Dropped
	}
	if s.backup != nil {
		st := s.backup.receiver.Stats()
		m["sync_received_messages"] = st.Messages
		m["sync_received_entries"] = st.Entries
		for i, n := range st.Rejected {
			if n > 0 {
				m["sync_rejected_"+connsync.Reason(i).String()] = n
			}
		}
	}
}

// The data path reports and installs its own sync records
// (dataplane.Director.EnableSyncRecords and InstallSyncRecords); these
// carry them on connsync's wire.

// appendEntries appends the wire's form of records rs to dst.
func appendEntries(dst []connsync.Entry, rs []dataplane.SyncRecord) []connsync.Entry {
	for i := range rs {
		dst = append(dst, entryOfRecord(&rs[i]))
	}
	return dst
}

// entryOfRecord is the wire's form of a data path sync record.
func entryOfRecord(r *dataplane.SyncRecord) connsync.Entry {
	e := connsync.Entry{
		Kind: connsync.Kind(r.Kind), Proto: uint8(r.Proto), Fwd: uint8(r.Fwd), State: uint8(r.State), Flags: r.Flags,
		Client: r.Client, Virtual: r.Virtual, Dest: r.Dest, Local: r.Local,
		CPort: r.CPort, VPort: r.VPort, DPort: r.DPort, LPort: r.LPort,
	}
	e.SetRemaining(r.Remaining)
	return e
}

// recordsOf converts entries received from a master for the data path.
func recordsOf(es []connsync.Entry) []dataplane.SyncRecord {
	rs := make([]dataplane.SyncRecord, len(es))
	for i := range es {
		rs[i] = recordOfEntry(&es[i])
	}
	return rs
}

// recordOfEntry is the data path's form of an entry from the wire.
func recordOfEntry(e *connsync.Entry) dataplane.SyncRecord {
	return dataplane.SyncRecord{
		Kind: dataplane.SyncKind(e.Kind), Proto: lvs.Proto(e.Proto), Fwd: lvs.Fwd(e.Fwd), State: conntrack.State(e.State),
		Flags: e.Flags, Remaining: e.Remaining(),
		Client: e.Client, Virtual: e.Virtual, Dest: e.Dest, Local: e.Local,
		CPort: e.CPort, VPort: e.VPort, DPort: e.DPort, LPort: e.LPort,
	}
}
