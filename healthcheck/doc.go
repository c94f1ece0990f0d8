// Package healthcheck checks real servers the way keepalived's checkers do,
// so the daemon can take failed servers out of a service and put them back
// when they recover. It decides up and down; what to do about it (remove or
// quiesce the server, switch to the sorry server, log, count) is the
// caller's business, done in the Manager's onChange callback.
//
// # Checkers
//
// A target's Spec holds its Probe, the typed settings of one kind of check
// (TCPProbe, HTTPProbe, ...), and the schedule. A Checker performs one check
// of a Target, bounded by its timeout, and says OK or gives a short reason.
// Each checker's file defines its probe type and its Registration: the
// check types it serves (its probes' Kind), whether it needs a port, its
// settings block with each setting's kind of value, and the function that
// builds a probe from parsed settings, refusing bad values per setting.
// Package config parses health_check from these registrations, so a new
// kind of check is one file and its line in the builtin list
// (registry.go), as package sched's schedulers are one file. The built-in
// ones:
//
//   - tcp: healthy when a connection is established; "refused", "timeout".
//   - http, https: one request on a fresh connection; healthy when the status
//     is in expect_status and, if expect_body is set, the first 64 KiB of the
//     body contain it ("status 503", "body mismatch"). Redirects are not
//     followed. https does not verify the certificate: real servers commonly
//     use self-signed certificates and are addressed by IP.
//   - udp: sends the payload; with expect set, healthy on a reply containing
//     it ("reply mismatch", "timeout"); without expect, as keepalived's
//     UDP_CHECK, healthy unless an ICMP error comes back ("refused").
//   - dns: one query (class IN, recursion desired) over UDP; healthy when the
//     response to it has rcode NOERROR, answers or not ("rcode NXDOMAIN").
//   - exec: runs the command with {address} and {port} substituted; healthy
//     on exit status 0 ("exit status 1"); at the timeout its whole process
//     group is killed ("timeout").
//
// The package knows nothing of the configuration file's format and imports
// nothing of govs: config parses the settings after the registrations and
// holds the built probe, which the daemon puts in each target's Spec.
//
// Network checks set SO_MARK to Target.Mark and bind Target.BindAddr when
// given; check_via_vip sends the probe to the VIP with a mark that policy
// routing steers to the real server.
//
// # Manager: state and hysteresis
//
// A Manager checks a set of targets given by Set. A new target starts UP,
// like keepalived without "alpha": adding a server to a running service does
// not take it out until it has failed, and a daemon restart does not drop
// all traffic while the first checks run. The cost is that a dead new server
// gets traffic for up to fall checks.
//
// An up target goes down after Fall consecutive failed checks; a down target
// goes up after Rise consecutive successes. Any success resets the failure
// count and any failure the success count. onChange is called only on these
// transitions, with the reason of the last failed check when going down and
// "ok" when going up; the initial up state is not reported. A target
// without a probe (check type none) is never checked and always up (no
// goroutine, no timer).
//
// A target keeps its state across Set calls while its Key stays. When its
// Target is unchanged its schedule goes on untouched; when anything in it
// changed (address, port, mark, check settings) the running check is
// cancelled and the counters and schedule start over, but up or down is
// kept. A target left out of Set stops at once: its running check is
// cancelled and the result dropped, and its pending transitions are not
// delivered.
//
// # Scheduling
//
// Each target has its own timer; a check runs on a goroutine of its own only
// while it is in progress, so idle targets cost no goroutine. The first
// check of a target comes after a random delay in [0, interval), and each
// later one interval ± 10% after the previous check finished, so many
// servers added at once are not probed in the same instant and stay spread
// out. A check is bounded by its timeout through its context. Set and State
// only take a short lock: they never wait for a check.
//
// onChange is called on a Manager goroutine, one call at a time, in the
// order the transitions happened. It may call State, Set and Close; it
// should not block for long, since it holds up the next transitions.
// A transition is dropped if its target was removed before its onChange call
// began; a call already under way when Set runs completes, so a handler that
// must never act on a removed target can confirm with State.
package healthcheck
