package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/govs/govs/control"
	"github.com/govs/govs/version"
)

// app is one run of govsadm with its streams and environment.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	res    resolver
}

// Exit statuses: 2 for a refused command line (ipvsadm's fail(2, ...)), 1
// when govsd refuses or cannot be reached.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const tryHelp = "Try `govsadm -h' or 'govsadm --help' for more information."

func (a *app) run(args []string) int {
	p := &parser{getenv: a.getenv, res: a.res}
	cmd, err := p.parse(args)
	if err != nil {
		a.usageFailed(err)
		return exitUsage
	}
	switch cmd.kind {
	case cmdHelp:
		fmt.Fprint(a.stdout, usageText)
		return exitOK
	case cmdVersion:
		// ipvsadm's line, then govs's version (govsadm's own; govsd's
		// is in the control API, control.Info.GovsVersion).
		fmt.Fprintln(a.stdout, versionText)
		fmt.Fprintf(a.stdout, "govs %s\n", version.String())
		return exitOK
	}
	out := bufio.NewWriterSize(a.stdout, 64<<10)
	client := control.NewClient(cmd.socket)
	code := exitOK
	if cmd.kind == cmdRestore {
		code = a.restore(client, out)
	} else if err := execute(client, cmd, out); err != nil {
		out.Flush()
		a.fail(err)
		code = exitError
	}
	if err := out.Flush(); err != nil && code == exitOK {
		fmt.Fprintln(a.stderr, "govsadm: writing output:", err)
		code = exitError
	}
	return code
}

func (a *app) usageFailed(err error) {
	fmt.Fprintln(a.stderr, err)
	var u *usageError
	if errors.As(err, &u) && u.tryHelp {
		fmt.Fprintln(a.stderr, tryHelp)
	}
}

func (a *app) fail(err error) { fmt.Fprintln(a.stderr, errorText(err)) }

// errorText prints govsd's refusals bare, as ipvsadm prints the kernel's
// ("Destination already exists"), and anything else (govsd not running,
// a broken answer) prefixed with the program's name.
func errorText(err error) string {
	var r *refusal
	var api *control.APIError
	if errors.As(err, &r) || errors.As(err, &api) {
		return err.Error()
	}
	return "govsadm: " + err.Error()
}

// refusal is an API refusal in ipvsadm's words.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

// ipvsadm's messages (libipvs's ipvs_strerror) for the refusals that the API
// marks with 404 and 409.
const (
	msgServiceExists = "Service already exists"
	msgNoService     = "No such service"
	msgServiceUndef  = "Service not defined"
	msgDestExists    = "Destination already exists"
	msgNoDest        = "No such destination"
	msgLaddrExists   = "Local address already exists"
	msgNoLaddr       = "No such local address"
)

// explain replaces a 404 or 409 refusal by ipvsadm's message; other
// refusals keep govsd's own text.
func explain(err error, notFound, conflict string) error {
	var api *control.APIError
	if !errors.As(err, &api) {
		return err
	}
	switch {
	case api.Code == http.StatusNotFound && notFound != "":
		return &refusal{notFound}
	case api.Code == http.StatusConflict && conflict != "":
		return &refusal{conflict}
	}
	return err
}

// explainMissing handles a 404 on an operation that names both a service
// and a member of it: ipvsadm says "Service not defined" when the service
// is the missing one, so govsd is asked which.
func explainMissing(c *control.Client, err error, k control.ServiceKey, missingMember, conflict string) error {
	var api *control.APIError
	if !errors.As(err, &api) || api.Code != http.StatusNotFound {
		return explain(err, "", conflict)
	}
	svcs, lerr := c.Services()
	if lerr == nil && findService(svcs, k) == nil {
		return &refusal{msgServiceUndef}
	}
	return &refusal{missingMember}
}

// execute carries out one command (not -R) and writes what it prints to w.
func execute(c *control.Client, cmd *command, w io.Writer) error {
	switch cmd.kind {
	case cmdList:
		return list(c, cmd, w)
	case cmdStartDaemon:
		return c.StartSyncDaemon(cmd.daemon)
	case cmdStopDaemon:
		return c.StopSyncDaemon(cmd.daemon.Role)
	case cmdSave:
		svcs, err := c.Services()
		if err != nil {
			return err
		}
		writeRules(w, svcs)
		return nil
	case cmdClear:
		return c.Clear()
	case cmdAddService:
		return explain(c.AddService(serviceSpec(cmd)), "", msgServiceExists)
	case cmdEditService:
		return explain(c.EditService(serviceSpec(cmd)), msgNoService, "")
	case cmdDelService:
		return explain(c.DeleteService(cmd.service), msgNoService, "")
	case cmdZero:
		var k *control.ServiceKey
		if cmd.has(optService) {
			k = &cmd.service
		}
		return explain(c.Zero(k), msgNoService, "")
	case cmdAddDest:
		return explain(c.AddDest(destSpec(cmd)), msgServiceUndef, msgDestExists)
	case cmdEditDest:
		return explainMissing(c, c.EditDest(destSpec(cmd)), cmd.service, msgNoDest, "")
	case cmdDelDest:
		return explainMissing(c, c.DeleteDest(cmd.service, cmd.destIP.String(), cmd.destPort), cmd.service, msgNoDest, "")
	case cmdAddLaddr:
		return explain(c.AddLocalAddr(localAddr(cmd)), msgServiceUndef, msgLaddrExists)
	case cmdDelLaddr:
		return explainMissing(c, c.DeleteLocalAddr(localAddr(cmd)), cmd.service, msgNoLaddr, "")
	case cmdSetTimeouts:
		return c.SetTimeouts(cmd.timeouts)
	case cmdReload:
		return c.Reload()
	case cmdShutdown:
		return c.Shutdown()
	case cmdCounters:
		k, err := c.Counters()
		if err != nil {
			return err
		}
		if cmd.format.json {
			return writeJSON(w, k)
		}
		printCounters(w, k)
		return nil
	}
	return fmt.Errorf("command %d cannot be run here", cmd.kind)
}

// serviceSpec is -A/-E. As with ipvsadm, -E sets the whole service: an
// option left out takes its default (scheduler wlc, not persistent). The
// govs options --proxy-protocol and --toa are sent only when given, and
// -E keeps them otherwise: a script written for ipvsadm knows nothing of
// them, and its -E must not take the header away from real servers that
// expect it.
func serviceSpec(cmd *command) control.ServiceSpec {
	s := control.ServiceSpec{
		ServiceKey: cmd.service,
		Scheduler:  cmd.scheduler,
		Flags:      cmd.schedFlags,
		Persistent: cmd.persistent,
		Netmask:    cmd.netmask,
	}
	if cmd.has(optProxyProtocol) {
		s.ProxyProtocol = cmd.proxyProtocol
	}
	if cmd.has(optTOA) {
		toa := cmd.toa
		s.TOA = &toa
	}
	return s
}

// destSpec is -a/-e. -a sends every field (ipvsadm's defaults for those not
// given); -e sends only the options given, so that the others keep their
// values.
func destSpec(cmd *command) control.DestSpec {
	d := control.DestSpec{
		Service: cmd.service,
		Address: cmd.destIP.String(),
		Port:    cmd.destPort,
		Forward: cmd.forward,
	}
	if cmd.kind == cmdAddDest || cmd.has(optWeight) {
		w := cmd.weight
		d.Weight = &w
	}
	if cmd.has(optUThreshold) {
		u := cmd.upper
		d.Upper = &u
	}
	if cmd.has(optLThreshold) {
		l := cmd.lower
		d.Lower = &l
	}
	return d
}

func localAddr(cmd *command) control.LocalAddr {
	return control.LocalAddr{Service: cmd.service, Address: cmd.laddr.String()}
}

// list is -L: the service table, one service (-t/-u), the connection table
// (-c) or the timeouts (--timeout).
func list(c *control.Client, cmd *command, w io.Writer) error {
	f := cmd.format
	switch {
	case cmd.has(optConnection):
		// Persistence templates come with --persistent-conn.
		conns, err := c.Connections(f.persistentConn)
		if err != nil {
			return err
		}
		if f.json {
			if conns == nil {
				conns = []control.Connection{}
			}
			return writeJSON(w, conns)
		}
		printConnections(w, conns, f)
	case cmd.has(optDaemon):
		ds, err := c.SyncDaemons()
		if err != nil {
			return err
		}
		if f.json {
			if ds == nil {
				ds = []control.SyncDaemon{}
			}
			return writeJSON(w, ds)
		}
		printSyncDaemons(w, ds)
	case cmd.has(optBGP):
		b, err := c.BGP()
		if err != nil {
			return err
		}
		if f.json {
			return writeJSON(w, b)
		}
		printBGP(w, b)
	case cmd.has(optTimeout):
		t, err := c.Timeouts()
		if err != nil {
			return err
		}
		if f.json {
			return writeJSON(w, t)
		}
		printTimeouts(w, t)
	case cmd.has(optService):
		svcs, err := c.Services()
		if err != nil {
			return err
		}
		s := findService(svcs, cmd.service)
		if s == nil {
			return &refusal{msgNoService}
		}
		if !f.nosort {
			sortDests(s.Dests)
		}
		if f.json {
			return writeJSON(w, []control.Service{*s})
		}
		// ipvsadm prints no version line for a single service.
		printTitle(w, f)
		printService(w, s, f)
	default:
		svcs, err := c.Services()
		if err != nil {
			return err
		}
		if !f.nosort {
			sortServices(svcs)
		}
		if f.json {
			if svcs == nil {
				svcs = []control.Service{}
			}
			return writeJSON(w, svcs)
		}
		info, err := c.Info()
		var api *control.APIError
		if errors.As(err, &api) && api.Code == http.StatusNotFound {
			// A govsd without /v1/info: the table is still worth
			// printing; the size is unknown.
			info, err = control.Info{}, nil
		}
		if err != nil {
			return err
		}
		printTable(w, info.ConnTable, svcs, f)
	}
	return nil
}

// findService returns the listed service that k names.
func findService(svcs []control.Service, k control.ServiceKey) *control.Service {
	for i := range svcs {
		s := &svcs[i]
		if k.FwMark != 0 || s.FwMark != 0 {
			if s.FwMark == k.FwMark {
				return s
			}
			continue
		}
		if strings.EqualFold(s.Protocol, k.Protocol) && s.Port == k.Port && sameAddr(s.VIP, k.VIP) {
			return s
		}
	}
	return nil
}

func sameAddr(a, b string) bool {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX != nil || errY != nil {
		return a == b
	}
	return x.Unmap() == y.Unmap()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// restore is -R: rules in -S syntax on stdin, one command per line. Every
// line is parsed before any is applied, so a typo applies nothing; then
// the lines are applied in order, and a refused line is reported and the
// rest still applied, as ipvsadm does.
func (a *app) restore(c *control.Client, w *bufio.Writer) int {
	lines, err := readRules(a.stdin)
	if err != nil {
		fmt.Fprintln(a.stderr, "govsadm: reading rules:", err)
		return exitError
	}
	p := &parser{res: a.res, inRestore: true}
	cmds := make([]*command, len(lines))
	for i, l := range lines {
		cmd, err := p.parse(l.Args)
		if err != nil {
			fmt.Fprintf(a.stderr, "line %d: %v\n", l.Num, err)
			fmt.Fprintln(a.stderr, "govsadm: nothing restored")
			return exitUsage
		}
		cmds[i] = cmd
	}
	code := exitOK
	for i, cmd := range cmds {
		if err := execute(c, cmd, w); err != nil {
			w.Flush()
			if errors.Is(err, control.ErrNotRunning) {
				a.fail(err)
				return exitError
			}
			fmt.Fprintf(a.stderr, "line %d: %s\n", lines[i].Num, errorText(err))
			code = exitError
		}
	}
	return code
}

// printBGP prints -L --bgp: the speaker, a table of its peers with their
// session state and options, and the prefixes it announces.
func printBGP(w io.Writer, b control.BGP) {
	if !b.Enabled {
		fmt.Fprintln(w, "BGP speaker not configured (director.bgp)")
		return
	}
	fmt.Fprintf(w, "BGP speaker AS %d, router id %s\n", b.ASN, b.RouterID)
	fmt.Fprintf(w, "%-40s %10s  %-12s %s\n", "Peer", "AS", "State", "Options")
	for _, p := range b.Peers {
		var opts []string
		if p.Password {
			opts = append(opts, "md5")
		}
		if p.Multihop > 0 {
			opts = append(opts, fmt.Sprintf("multihop=%d", p.Multihop))
		}
		if p.Passive {
			opts = append(opts, "passive")
		}
		addr := p.Address
		if a, err := netip.ParseAddr(addr); err == nil && p.Port != 0 {
			addr = netip.AddrPortFrom(a, p.Port).String()
		}
		fmt.Fprintf(w, "%-40s %10d  %-12s %s\n", addr, p.ASN, p.State, strings.Join(opts, ","))
	}
	if len(b.Announced) == 0 {
		fmt.Fprintln(w, "Announced prefixes: none")
		return
	}
	fmt.Fprintln(w, "Announced prefixes:")
	for _, p := range b.Announced {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

// printSyncDaemons prints -L --daemon: ipvsadm's line, "master sync daemon
// (mcast=eth1, syncid=1, group=..., port=...)", with ucast= and peers= for
// unicast sync, then a line of the daemon's counters.
func printSyncDaemons(w io.Writer, ds []control.SyncDaemon) {
	for _, d := range ds {
		if len(d.Peers) > 0 {
			fmt.Fprintf(w, "%s sync daemon (ucast=%s, syncid=%d, peers=%s", d.Role, d.Interface, d.SyncID, strings.Join(d.Peers, ","))
		} else {
			fmt.Fprintf(w, "%s sync daemon (mcast=%s, syncid=%d", d.Role, d.Interface, d.SyncID)
			if d.Group != "" {
				fmt.Fprintf(w, ", group=%s", d.Group)
			}
		}
		if d.Port != 0 {
			fmt.Fprintf(w, ", port=%d", d.Port)
		}
		fmt.Fprintln(w, ")")
		if s := d.Sent; s != nil {
			fmt.Fprintf(w, "  sent %d messages, %d entries; %d send errors, %d entries dropped\n", s.Messages, s.Entries, s.Errors, s.Dropped)
		}
		if r := d.Received; r != nil {
			fmt.Fprintf(w, "  received %d messages, %d entries; %d rejected", r.Messages, r.Entries, r.Rejected)
			if len(r.RejectedBy) > 0 {
				reasons := make([]string, 0, len(r.RejectedBy))
				for k, n := range r.RejectedBy {
					reasons = append(reasons, fmt.Sprintf("%s %d", k, n))
				}
				sort.Strings(reasons)
				fmt.Fprintf(w, " (%s)", strings.Join(reasons, ", "))
			}
			fmt.Fprintln(w)
		}
	}
}
