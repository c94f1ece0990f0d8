package healthcheck

import "time"

// Clock is the time source of the Manager's scheduling. The system clock is
// used in production; tests pass a fake one so hysteresis and jitter can be
// checked at exact instants without sleeping.
//
// Only scheduling and Transition.At use the Clock: the timeout of a check
// itself is a real-time deadline on its sockets or process.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once, d from now, on a goroutine of the clock's
	// choosing (the system clock uses its own goroutine per call).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started yet; it reports whether
	// it did.
	Stop() bool
}

// SystemClock returns the Clock backed by package time.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
