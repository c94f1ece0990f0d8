package healthcheck

import (
	"fmt"
	"sync"
)

// builtin are the checkers of this package, in the order the configuration
// lists their kinds ("valid: none, tcp, http, ..."). A new kind of check is
// its file, which declares its Registration, plus its line here.
var builtin = []*Registration{
	&tcpRegistration,
	&httpRegistration,
	&udpRegistration,
	&dnsRegistration,
	&execRegistration,
}

func init() {
	for _, r := range builtin {
		Register(r)
	}
}

// Registration is what a checker declares: the check types it serves and
// what the configuration needs to build its probes. Package config reads
// it to parse health_check generically; nothing here knows the file format
// beyond the names and kinds of values.
type Registration struct {
	// Kinds are the check types (health_check.type) the checker serves,
	// the names its probes' Kind returns: http and https share one checker,
	// https being HTTP with TLS.
	Kinds   []string
	Checker Checker
	// NeedsPort is set for checks sent to a port: a real server of an
	// all-ports service must then give the check one.
	NeedsPort bool
	// Block is the key of the checker's settings block in health_check
	// ("http", "udp", ...), "" when it has no settings; BlockRequired says a
	// check of this type must give the block.
	Block         string
	BlockRequired bool
	// Settings are the keys of the block, in the order messages list them.
	Settings []Setting
	// NewProbe builds the probe of a check of the given kind (one of
	// Kinds) from its parsed settings, nil when the block is absent. It
	// reports each invalid value as a SettingError; a setting that is absent
	// or that its Setting already refused is missing from v and must be
	// left at its default without complaint.
	NewProbe func(kind string, v Values) (Probe, []SettingError)
}

// ValueKind is the kind of value a setting takes.
type ValueKind uint8

const (
	// String is any scalar, taken as text (so `expect_body: 200` works).
	String ValueKind = iota + 1
	// Strings is a list of strings.
	Strings
	// Int is an integer in Setting.Min..Setting.Max.
	Int
	// Ints is a list of integers, each in Setting.Min..Setting.Max.
	Ints
	// Bool is true or false.
	Bool
)

// Setting is one key of a checker's settings block.
type Setting struct {
	Name     string
	Kind     ValueKind
	Required bool
	// NonEmpty refuses "" for a String, and for the first item of a
	// Strings (a command's program; its arguments may be empty).
	NonEmpty bool
	// Min and Max bound the values of an Int or Ints setting.
	Min, Max int64
}

// Values are a settings block as parsed, by setting name: a string,
// []string, int64, []int64 or bool after the setting's Kind.
type Values map[string]any

// String returns a String setting, "" and false when absent.
func (v Values) String(name string) (string, bool) { s, ok := v[name].(string); return s, ok }

// Strings returns a Strings setting.
func (v Values) Strings(name string) ([]string, bool) { s, ok := v[name].([]string); return s, ok }

// Int returns an Int setting.
func (v Values) Int(name string) (int64, bool) { i, ok := v[name].(int64); return i, ok }

// Ints returns an Ints setting.
func (v Values) Ints(name string) ([]int64, bool) { i, ok := v[name].([]int64); return i, ok }

// Bool returns a Bool setting.
func (v Values) Bool(name string) (value, ok bool) { value, ok = v[name].(bool); return value, ok }

// SettingError is a setting's value that a checker refuses; the
// configuration reports it at the setting's key path.
type SettingError struct {
	Setting string
	Msg     string
}

func (e SettingError) Error() string { return e.Setting + ": " + e.Msg }

func badSetting(name, format string, args ...any) SettingError {
	return SettingError{Setting: name, Msg: fmt.Sprintf(format, args...)}
}

// HostChecker is implemented by probes that need something of the machine
// (an exec check's program): CheckHost says what is missing, per setting.
// A start of govsd and govsd -t run it through the configuration's host
// checks.
type HostChecker interface {
	CheckHost() []SettingError
}

// The registrations in order, and by kind.
var (
	registryMu    sync.RWMutex
	registrations []*Registration
	byKind        = map[string]*Registration{}
)

// Register adds a checker under each of its kinds. It panics on a kind or
// a block key that is already taken, or a registration without kinds, a
// checker or a NewProbe, as it runs at package initialisation.
func Register(r *Registration) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if len(r.Kinds) == 0 || r.Checker == nil || r.NewProbe == nil {
		panic(fmt.Sprintf("healthcheck: incomplete registration %v", r.Kinds))
	}
	for _, k := range r.Kinds {
		if _, dup := byKind[k]; dup || k == "none" {
			panic("healthcheck: duplicate checker " + k)
		}
	}
	for _, o := range registrations {
		if r.Block != "" && o.Block == r.Block {
			panic("healthcheck: duplicate settings block " + r.Block)
		}
	}
	for _, k := range r.Kinds {
		byKind[k] = r
	}
	registrations = append(registrations, r)
}

// Lookup returns the registration serving a check type, or nil.
func Lookup(kind string) *Registration {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return byKind[kind]
}

// Registrations returns the registered checkers in registration order.
func Registrations() []*Registration {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return append([]*Registration(nil), registrations...)
}

// CheckerFor returns the registered checker for a kind of probe, or nil for
// an unknown kind.
func CheckerFor(kind string) Checker {
	if r := Lookup(kind); r != nil {
		return r.Checker
	}
	return nil
}

// Kinds returns the registered kinds in registration order.
func Kinds() []string {
	var kinds []string
	for _, r := range Registrations() {
		kinds = append(kinds, r.Kinds...)
	}
	return kinds
}
