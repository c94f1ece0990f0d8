package lvs

// DefaultScheduler is the scheduler of a service that names none, as in
// ipvsadm.
const DefaultScheduler = "wlc"

// SchedulerFlag is one of ipvsadm's scheduler flags (-b, YAML
// scheduler_flags) and the scheduler it belongs to.
type SchedulerFlag struct {
	Name      string // as ipvsadm spells it
	Scheduler string // the only scheduler that reads it
}

// SchedulerFlags are the scheduler flags, in ipvsadm's order. IPVS's
// numbered aliases (flag-1, flag-2, flag-3) are accepted by sched.ParseFlags
// but never printed.
var SchedulerFlags = []SchedulerFlag{
	{"sh-fallback", "sh"},
	{"sh-port", "sh"},
	{"mh-fallback", "mh"},
	{"mh-port", "mh"},
}

// SchedulerFlagNames are the flags' names, in order.
func SchedulerFlagNames() []string {
	out := make([]string, len(SchedulerFlags))
	for i, f := range SchedulerFlags {
		out[i] = f.Name
	}
	return out
}

// SchedulerOfFlag returns the scheduler flag name belongs to, and whether
// it is a flag at all.
func SchedulerOfFlag(name string) (string, bool) {
	for _, f := range SchedulerFlags {
		if f.Name == name {
			return f.Scheduler, true
		}
	}
	return "", false
}
