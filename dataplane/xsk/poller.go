package xsk

import "golang.org/x/sys/unix"

// Poller waits until any of a fixed set of sockets has received frames. It
// keeps its pollfd array between calls, so Wait allocates nothing. Build a
// new Poller when the socket set changes.
//
// In copy mode poll also drives pending TX and in zero-copy mode it wakes the
// driver, so an idle worker blocking in Wait needs no separate Wakeup call.
type Poller struct {
	fds     []unix.PollFd
	timeout unix.Timespec
}

// NewPoller returns a Poller for socks, in that order (see Readable).
func NewPoller(socks []*Socket) *Poller {
	p := &Poller{fds: make([]unix.PollFd, len(socks))}
	for i, s := range socks {
		p.fds[i] = unix.PollFd{Fd: int32(s.FD()), Events: unix.POLLIN}
	}
	return p
}

// Wait blocks until a socket is readable, timeoutMs milliseconds pass
// (negative: no limit, 0: just check) or an error occurs. EINTR is retried
// with the full timeout. Errors are returned as unwrapped unix.Errno.
func (p *Poller) Wait(timeoutMs int) error {
	for i := range p.fds {
		p.fds[i].Revents = 0
	}
	var ts *unix.Timespec
	if timeoutMs >= 0 {
		p.timeout = unix.NsecToTimespec(int64(timeoutMs) * 1e6)
		ts = &p.timeout
	}
	for {
		_, err := unix.Ppoll(p.fds, ts, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

// Readable reports whether socket i (in NewPoller order) was readable at the
// last Wait.
func (p *Poller) Readable(i int) bool {
	return i >= 0 && i < len(p.fds) && p.fds[i].Revents&unix.POLLIN != 0
}

// Failed reports whether socket i reported POLLERR, POLLHUP or POLLNVAL at
// the last Wait (POLLNVAL: the socket was closed). AF_XDP does not signal a
// lost link through poll; that shows as ENETDOWN or ENXIO from Transmit,
// Flush and Wakeup.
func (p *Poller) Failed(i int) bool {
	return i >= 0 && i < len(p.fds) && p.fds[i].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0
}
