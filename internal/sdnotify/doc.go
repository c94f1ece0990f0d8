// Package sdnotify tells systemd (or any supervisor speaking its protocol)
// how govsd is doing: READY=1 once it serves, RELOADING=1 and READY=1 around
// a reload, STOPPING=1 when it stops (sd_notify(3)). The supervisor names a
// unix datagram socket in $NOTIFY_SOCKET (a path, or an abstract name
// starting with '@'); without the variable every call does nothing, so govsd
// run by hand or by another supervisor is unaffected.
package sdnotify
