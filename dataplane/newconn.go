package dataplane

import (
	"math/rand/v2"
	"time"

	"github.com/govs/govs/conntrack"
	"github.com/govs/govs/dataplane/packet"
	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
	"github.com/govs/govs/sched"
)

// newConn schedules a new connection of service svc for a packet that
// matched no entry.
func (w *worker) newConn(frame []byte, p *packet.Parsed, svc *Service, t *conntrack.Tuple, inIface int, now int64, st *snapshot) *conntrack.Conn {
	// Like IPVS, only a SYN starts a TCP connection (the SYN proxy's
	// handshake ACK aside: synProxyOpen), unless the service is sloppy
	// (IPVS's sloppy_tcp): then any segment but a SYN-ACK or a RST does,
	// toward a DR or TUN real server, in the state the segment gives a new
	// entry (an ACK: ESTABLISHED; a FIN: CLOSE), so that a flow another
	// director started (ECMP moved it, or a failover without sync) goes on
	// with the server the scheduler picks: its own with mh. A RST of an
	// unknown connection is dropped, as IPVS does not schedule it either.
	if p.Proto == lvs.ProtoTCP && !p.TCPFlags.IsSYN() {
		if !svc.Sloppy || p.TCPFlags&(lvs.TCPSyn|lvs.TCPRst) != 0 {
			w.drop(DropNoConn)
			return nil
		}
		return w.schedule(svc, frame, p, t, inIface, now, st, nil, true)
	}
	return w.schedule(svc, frame, p, t, inIface, now, st, nil, false)
}

// schedule picks the real server of a new connection of svc with request
// tuple t (scheduler, persistence), allocates its full-NAT local endpoint
// and inserts it. With sp, the connection is the SYN proxy's, half-open
// until its real server answers; only a NAT or full-NAT server can take it.
// midFlow: the packet is not a SYN (a sloppy service); only a DR or TUN
// server can take it, since a NAT server's replies need the way back the
// other director knew.
func (w *worker) schedule(svc *Service, frame []byte, p *packet.Parsed, t *conntrack.Tuple, inIface int, now int64, st *snapshot, sp *synProxyInit, midFlow bool) *conntrack.Conn {
	dst := w.pick(svc, p, now, st)
	if dst == nil {
		w.drop(DropNoDest)
		return nil
	}
	fwd := fwdOf(dst.Fwd)
	if midFlow && fwd.viaDirector() {
		w.drop(DropNoConn)
		return nil
	}
	if sp != nil && !fwd.viaDirector() {
		// Its replies would bypass the director, which must translate them.
		w.drop(DropUnsupported)
		return nil
	}
	conn := conntrack.Conn{
		Orig:    *t,
		Service: svc.ID,
		Dest:    dst.ID,
		Fwd:     dst.Fwd,
	}
	cp := connPath{
		inPort:    uint16(inIface),
		clientMAC: [6]byte(frame[6:12]),
		localMAC:  [6]byte(frame[0:6]),
	}
	if sp != nil {
		conn.State = conntrack.StateSynRecv
		cp.flags = flagSynProxy | flagSynPending
		cp.seqDelta, cp.clientWin = sp.cookie, sp.win
	}
	if svc.ProxyProtocol != lvs.ProxyNone || svc.TOA {
		seq, _, _ := tcpSeqAck(frame, p)
		if sp == nil {
			seq++ // the SYN's; a handshake ACK's is the ISN+1 already
		}
		w.initClientAddr(&cp, svc, dst.Fwd, t, seq)
	}
	rport := destPort(dst, p.DstPort)
	if fwd.localEndpoint() {
		laddr, lport, ok := w.allocLocal(svc, dst, rport, p.Proto, now)
		if !ok {
			return nil
		}
		conn.LAddr, conn.LPort = laddr, lport
	}
	conn.Reply = fwd.replyTuple(conn.Orig, dst.Addr, rport, conn.LAddr, conn.LPort)
	c, err := w.insert(&conn, cp, now)
	if err != nil {
		w.drop(DropTableFull)
		return nil
	}
	if svc.Persistence > 0 {
		w.ct.BindTemplate(c, w.templateKey(svc, p))
	}
	w.ctr.NewConns.Add(1)
	dst.stats.perWorker[w.q].conns.Add(1)
	return c
}

// Full-NAT local ports: worker q of n owns the ports p >= lportMin with
// p % n == q, so a reply's destination port names the worker that owns its
// connection (ownerOf, InstallSynced, Adopt), and workers never hand out
// the same local endpoint.
const (
	lportMin   = 1024
	lportTries = 64 // ports tried per local address before trying the next
)

// allocLocal picks a full-NAT local address and port for a new connection
// to dst: one whose reply tuple (RIP:rport -> LIP:lport) is not in use.
// rport is the real server's port of the connection (destPort).
func (w *worker) allocLocal(svc *Service, dst *Dest, rport uint16, proto lvs.Proto, now int64) (inet.Addr, uint16, bool) {
	n := len(svc.LocalAddrs)
	nw := len(w.d.workers)
	// The first port >= lportMin that is = q (mod nw), and how many there
	// are: lportMin itself is not a multiple of every worker count.
	first := lportMin + ((w.q-lportMin)%nw+nw)%nw
	span := (65536 - first + nw - 1) / nw // ports this worker owns
	if n > 0 && span > 0 {
		start := int(w.ipID) % n // any spread will do; ipID moves with traffic
		for i := 0; i < n; i++ {
			laddr := svc.LocalAddrs[(start+i)%n]
			k, ok := w.lportNext[laddr]
			if !ok {
				// A random first port, as Linux picks ephemeral ports:
				// a restarted govsd must not hand out at once the ports
				// its predecessor used last, which the real servers may
				// still hold in TIME-WAIT.
				k = rand.IntN(span)
			}
			for try := 0; try < lportTries; try++ {
				port := uint16(first + (k%span)*nw)
				k++
				reply := conntrack.Tuple{Src: dst.Addr, Dst: laddr, SrcPort: rport, DstPort: port, Proto: proto}
				if _, _, used := w.ct.Lookup(&reply, now); !used {
					w.lportNext[laddr] = k % span
					return laddr, port, true
				}
			}
			w.lportNext[laddr] = k % span
		}
	}
	w.drop(DropPortExhausted)
	if now-w.lastPortLog >= int64(time.Second) {
		w.lastPortLog = now
		w.d.log.Warn("full-NAT local ports exhausted; new connections refused", "service", svc.Name,
			"local_addresses", n, "worker", w.q)
	}
	return inet.Addr{}, 0, false
}

func (w *worker) templateKey(svc *Service, p *packet.Parsed) *conntrack.TemplateKey {
	if svc.FwMark != 0 {
		k := fwmarkTemplateKey(svc, p)
		return &k
	}
	return &conntrack.TemplateKey{
		Client:  p.Src.Mask(svc.PersistBits),
		VIP:     svc.VIP,
		VPort:   svc.Port,
		Proto:   p.Proto,
		Service: svc.ID,
	}
}

// pick chooses the real server, honouring a persistence template.
func (w *worker) pick(svc *Service, p *packet.Parsed, now int64, st *snapshot) *Dest {
	var tk *conntrack.TemplateKey
	if svc.Persistence > 0 {
		tk = w.templateKey(svc, p)
		if id, ok := w.ct.LookupTemplate(tk, now); ok {
			// IPVS keeps sending a persistent client to its server while
			// the template lives, even when the server is quiescent
			// (weight 0); only a removed server breaks the binding.
			if usableTemplateDest(st, id) {
				return st.dest(id)
			}
		}
		if w.d.persist != nil {
			return w.pickShared(svc, p, tk, now, st)
		}
	}
	dst := w.schedulerPick(svc, p, st)
	if dst == nil {
		return nil
	}
	if tk != nil && w.ct.InsertTemplate(tk, dst.ID, svc.Persistence, now) == nil {
		w.mirrorTemplate(tk, dst.ID, now+int64(svc.Persistence), st)
	}
	return dst
}

// usableTemplateDest: IPVS keeps sending a persistent client to its server
// while the template lives, even when the server is quiescent (weight 0);
// only a removed server breaks the binding.
func usableTemplateDest(st *snapshot, id uint32) bool {
	dst := st.dest(id)
	return dst != nil && !dst.Removed.Load()
}

// schedulerPick asks svc's scheduler for a real server.
func (w *worker) schedulerPick(svc *Service, p *packet.Parsed, st *snapshot) *Dest {
	// The key lives in the worker: a stack value passed through the
	// interface would escape and allocate per connection.
	w.key = sched.Key{Proto: uint8(p.Proto), Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort}
	sd := svc.Sched.Pick(&w.key)
	if sd == nil {
		return nil
	}
	return st.dest(sd.ID)
}
