package sched

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/govs/govs/inet"
	"github.com/govs/govs/lvs"
)

// Dest is a real server as the schedulers see it. The data path and the
// control plane share one *Dest per real server of a service; its counters are
// atomics so that every worker can read and adjust them without a lock.
type Dest struct {
	Addr inet.Addr
	Port uint16
	// Index is the position of the destination in its service's list at the
	// time of the last Update. Schedulers may use it to index their own tables.
	Index int
	// ID identifies the destination to its owner (the data path's
	// destination table); schedulers do not use it.
	ID uint32

	weight atomic.Int32
	// lastWeight is IPVS's last_weight: the latest non-zero weight (or the
	// weight the destination was created with). mh builds its table from it,
	// so that quiescing a server (weight 0) leaves every other key in place.
	lastWeight atomic.Int32
	// UpperThreshold and LowerThreshold are ipvsadm's -x and -y: at
	// UpperThreshold total connections the server is overloaded and takes no
	// new ones until it drops below LowerThreshold (or 3/4 of UpperThreshold
	// when LowerThreshold is 0), as in IPVS. 0 means no limit.
	upperThreshold atomic.Uint32
	lowerThreshold atomic.Uint32
	overloaded     atomic.Bool

	activeConns   atomic.Int64
	inactiveConns atomic.Int64
}

// NewDest returns a destination with the given weight.
func NewDest(addr inet.Addr, port uint16, weight int) *Dest {
	d := &Dest{Addr: addr, Port: port}
	d.weight.Store(int32(weight))
	d.lastWeight.Store(int32(weight))
	return d
}

// Weight returns the current weight; 0 means quiescent.
func (d *Dest) Weight() int { return int(d.weight.Load()) }

// SetWeight changes the weight. The owner must then call Update on the
// service's scheduler so that weight-driven tables are rebuilt.
func (d *Dest) SetWeight(w int) {
	// As __ip_vs_update_dest: keep last_weight at the latest non-0 weight.
	if w != 0 {
		d.lastWeight.Store(int32(w))
	}
	d.weight.Store(int32(w))
}

// LastWeight is the latest non-zero weight the destination had (IPVS's
// last_weight), or its initial weight if it never had one.
func (d *Dest) LastWeight() int { return int(d.lastWeight.Load()) }

// SetThresholds sets ipvsadm's upper (-x) and lower (-y) connection thresholds.
func (d *Dest) SetThresholds(upper, lower uint32) {
	old := d.upperThreshold.Swap(upper)
	d.lowerThreshold.Store(lower)
	// As __ip_vs_update_dest: removing or raising the limit lifts the
	// overload at once; otherwise the hysteresis decides.
	if upper == 0 || upper > old {
		d.overloaded.Store(false)
	}
	d.updateOverload()
}

// Thresholds returns the upper and lower connection thresholds.
func (d *Dest) Thresholds() (upper, lower uint32) {
	return d.upperThreshold.Load(), d.lowerThreshold.Load()
}

// ActiveConns is the number of ESTABLISHED connections (IPVS activeconns).
func (d *Dest) ActiveConns() int64 { return d.activeConns.Load() }

// InactiveConns is the number of other connections (IPVS inactconns).
func (d *Dest) InactiveConns() int64 { return d.inactiveConns.Load() }

// ConnClass is how a connection counts against its destination.
type ConnClass uint8

const (
	// ClassNone: the connection does not count (it is gone, or not yet bound).
	ClassNone ConnClass = iota
	// ClassActive: counted in ActiveConns.
	ClassActive
	// ClassInactive: counted in InactiveConns.
	ClassInactive
)

// Transition moves one connection of d from one class to another, keeping the
// counters exact. Binding a new connection is Transition(ClassNone, c), its
// end is Transition(c, ClassNone).
func (d *Dest) Transition(from, to ConnClass) {
	if from == to {
		return
	}
	switch from {
	case ClassActive:
		d.activeConns.Add(-1)
	case ClassInactive:
		d.inactiveConns.Add(-1)
	}
	switch to {
	case ClassActive:
		d.activeConns.Add(1)
	case ClassInactive:
		d.inactiveConns.Add(1)
	}
	d.updateOverload()
}

// ResetConns zeroes the connection counters (used when a table is flushed).
func (d *Dest) ResetConns() {
	d.activeConns.Store(0)
	d.inactiveConns.Store(0)
	d.updateOverload()
}

// Overloaded reports whether the destination is over its upper threshold
// (with IPVS's hysteresis).
func (d *Dest) Overloaded() bool { return d.overloaded.Load() }

// updateOverload applies IPVS's hysteresis (ip_vs_bind_dest and
// ip_vs_unbind_dest): overloaded once active+inactive reaches the upper
// threshold; cleared below the lower threshold or, when that is 0, below 3/4
// of the upper one (total*4 < upper*3, so that upper=5 clears at 3, not 2).
func (d *Dest) updateOverload() {
	upper := int64(d.upperThreshold.Load())
	if upper == 0 {
		// Stored only when it changes: every worker comes here on each
		// of its connections' state changes, and a store would take the
		// line that every pick reads from the other cores each time.
		if d.overloaded.Load() {
			d.overloaded.Store(false)
		}
		return
	}
	total := d.activeConns.Load() + d.inactiveConns.Load()
	if total >= upper {
		d.overloaded.Store(true)
		return
	}
	if lower := int64(d.lowerThreshold.Load()); lower != 0 {
		if total < lower {
			d.overloaded.Store(false)
		}
		return
	}
	if total*4 < upper*3 {
		d.overloaded.Store(false)
	}
}

// Available reports whether the destination may take a new connection:
// weight above 0 and not overloaded.
func (d *Dest) Available() bool { return d.Weight() > 0 && !d.Overloaded() }

// Key is what a scheduler may look at when it places a new connection:
// the client's (source) and the virtual service's (destination) address and
// port. The hashing schedulers (sh, dh, mh, lblc, lblcr) hash parts of it.
type Key struct {
	Proto   uint8
	Src     inet.Addr
	Dst     inet.Addr
	SrcPort uint16
	DstPort uint16
}

// Flags are ipvsadm's scheduler flags (-b, YAML scheduler_flags).
type Flags uint8

const (
	// FlagFallback: sh-fallback / mh-fallback: if the hashed server is
	// unavailable, try the next one.
	FlagFallback Flags = 1 << iota
	// FlagPort: sh-port / mh-port: include the source port in the hash.
	FlagPort
)

// numberedFlags are IPVS's own names of the flag bits
// (IP_VS_SVC_F_SCHED1..3), which ipvsadm accepts for any scheduler.
var numberedFlags = map[string]Flags{"flag-1": FlagFallback, "flag-2": FlagPort, "flag-3": 0}

// flagBits are the bits behind a scheduler's named flags, by the part of
// the name after the scheduler's ("sh-port": "port").
var flagBits = map[string]Flags{"fallback": FlagFallback, "port": FlagPort}

// FlagOf returns the bit behind a flag name: a scheduler's own
// (lvs.SchedulerFlags) or IPVS's numbered ones (flag-3 has no bit: IPVS
// defines it but no scheduler reads it).
func FlagOf(name string) (Flags, bool) {
	if f, ok := numberedFlags[name]; ok {
		return f, true
	}
	owner, ok := lvs.SchedulerOfFlag(name)
	if !ok {
		return 0, false
	}
	bit, ok := strings.CutPrefix(name, owner+"-")
	if !ok {
		return 0, false
	}
	f, ok := flagBits[bit]
	return f, ok
}

// ParseFlags parses ipvsadm's -b flag names (lvs.SchedulerFlags; IPVS's
// flag-1/2/3 too). Which scheduler a name belongs to is the caller's check.
func ParseFlags(names []string) (Flags, error) {
	var f Flags
	for _, n := range names {
		bit, ok := FlagOf(n)
		if !ok {
			return 0, fmt.Errorf("unknown scheduler flag %q (valid: %s)", n, strings.Join(lvs.SchedulerFlagNames(), ", "))
		}
		f |= bit
	}
	return f, nil
}

// Names returns the flag names for printing, in ipvsadm's spelling for the
// given scheduler: mh's own for mh, sh's for every other.
func (f Flags) Names(scheduler string) []string {
	prefix := "sh"
	if scheduler == "mh" {
		prefix = "mh"
	}
	var out []string
	for _, sf := range lvs.SchedulerFlags {
		if sf.Scheduler != prefix {
			continue
		}
		if bit, _ := FlagOf(sf.Name); f&bit != 0 {
			out = append(out, sf.Name)
		}
	}
	return out
}

// Scheduler places new connections on destinations. The data path calls Pick
// once per new connection, never per packet, from several worker goroutines at
// once; the control plane calls Update whenever the destination set or a
// weight changes. Implementations must make Pick safe against concurrent Pick
// and Update calls and must not allocate in Pick.
type Scheduler interface {
	// Update replaces the destination list. Calls to Update are serialised
	// by the caller; the slice must not be modified afterwards.
	Update(dests []*Dest)
	// Pick returns the destination for a new connection, or nil when no
	// destination is available (the caller drops and counts the packet).
	Pick(k *Key) *Dest
}

// Factory builds a scheduler with the given flags.
type Factory func(flags Flags) Scheduler

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a scheduler available by name. It panics on a duplicate name,
// as it is called from init functions.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("sched: duplicate scheduler " + name)
	}
	registry[name] = f
}

// New returns a new instance of the named scheduler.
func New(name string, flags Flags) (Scheduler, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown scheduler %q (valid: %s)", name, namesList())
	}
	return f(flags), nil
}

// listOrder is how messages and documentation list the schedulers: by
// family (round robin, least connection, locality, hashing, the others),
// as govs always has. It only orders the list: a registered scheduler
// missing here follows these, sorted, so a new scheduler is still one
// file.
var listOrder = []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf", "twos"}

// Names lists the registered schedulers: those of listOrder in its order,
// then any other, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(registry))
	for _, n := range listOrder {
		if _, ok := registry[n]; ok {
			out = append(out, n)
		}
	}
	var rest []string
	for n := range registry {
		if !slices.Contains(listOrder, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func namesList() string {
	s := ""
	for i, n := range Names() {
		if i > 0 {
			s += " "
		}
		s += n
	}
	return s
}
