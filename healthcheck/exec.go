package healthcheck

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// execWaitDelay is how long Wait waits for the output pipes after the
// process group was killed, in case something escaped the group.
const execWaitDelay = time.Second

// ExecChecker runs ExecCheck.Command (no shell) with "{address}" and
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
	if t.Check.Exec == nil || len(t.Check.Exec.Command) == 0 {
		return failResult(start, "no command configured")
	}
	args := substituteArgs(t.Check.Exec.Command, t)

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
