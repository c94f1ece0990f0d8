package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// execRegistration: the exec block is required, for its command; an exec
// check needs no port ({port} is the real server's, possibly 0).
var execRegistration = Registration{
	Kinds:         []string{"exec"},
	Checker:       ExecChecker{},
	Block:         "exec",
	BlockRequired: true,
	Settings:      []Setting{{Name: "command", Kind: Strings, Required: true, NonEmpty: true}},
	NewProbe:      newExecProbe,
}

func newExecProbe(_ string, v Values) (Probe, []SettingError) {
	var p ExecProbe
	cmd, ok := v.Strings("command")
	if ok && len(cmd) == 0 {
		return p, []SettingError{badSetting("command", "must name a program")}
	}
	p.Command = cmd
	return p, nil
}

// CheckHost implements HostChecker: the program must exist and be
// executable, as exec would find it.
func (p ExecProbe) CheckHost() []SettingError {
	if len(p.Command) == 0 {
		return nil
	}
	if err := checkExecutable(p.Command[0]); err != nil {
		return []SettingError{badSetting("command", "%v", err)}
	}
	return nil
}

// checkExecutable checks a command as exec would find it: a path, or a
// name looked up in $PATH.
func checkExecutable(cmd string) error {
	if !strings.Contains(cmd, "/") {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("%q: not found in $PATH", cmd)
		}
		return nil
	}
	fi, err := os.Stat(cmd)
	switch {
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%q: %v", cmd, err)
	case fi.IsDir():
		return fmt.Errorf("%q is a directory", cmd)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%q is not executable (mode %v)", cmd, fi.Mode().Perm())
	}
	return nil
}

// ExecProbe is a command check: the program and its arguments, run without
// a shell, "{address}" and "{port}" replaced (see ExecChecker).
type ExecProbe struct {
	Command []string
}

// Kind implements Probe.
func (ExecProbe) Kind() string { return "exec" }

// execWaitDelay is how long Wait waits for the output pipes after the
// process group was killed, in case something escaped the group.
const execWaitDelay = time.Second

// ExecChecker runs ExecProbe.Command (no shell) with "{address}" and
// "{port}" in its arguments replaced by the target's address and check
// port; exit status 0 passes. The command runs in its own process group,
// and at the timeout the whole group is killed with SIGKILL, so helper
// processes the script started die with it ("timeout"). Its output is
// discarded; the environment is the daemon's.
type ExecChecker struct{}

// Check implements Checker.
func (ExecChecker) Check(ctx context.Context, t *Target) Result {
	ctx, cancel := withCheckTimeout(ctx, t)
	defer cancel()
	start := time.Now()
	probe, _ := probeOf[ExecProbe](t)
	if len(probe.Command) == 0 {
		return failResult(start, "no command configured")
	}
	args := substituteArgs(probe.Command, t)

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Cancel runs while the leader is not yet reaped, so its pid is still
	// the group's id and cannot have been reused.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = execWaitDelay

	err := cmd.Run()
	switch {
	case err == nil:
		return okResult(start)
	case ctx.Err() != nil:
		return failResult(start, reasonFor(ctx, err))
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return failResult(start, exitErr.Error()) // "exit status 1", "signal: killed"
	}
	return failResult(start, err.Error())
}

// substituteArgs replaces the placeholders in every argument, the program
// included (a script may be chosen per server).
func substituteArgs(command []string, t *Target) []string {
	r := strings.NewReplacer("{address}", t.Addr.Unmap().String(), "{port}", strconv.Itoa(int(t.Port)))
	out := make([]string, len(command))
	for i, a := range command {
		out[i] = r.Replace(a)
	}
	return out
}
