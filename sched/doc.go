// Package sched holds the connection schedulers: every IPVS scheduler (rr,
// wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos) behind one
// Scheduler interface, registered by name so that a new scheduler is one file.
//
// A scheduler is asked once per new connection (never per packet) and reads the
// live per-destination connection counts that the connection table keeps in
// each Dest. Weight 0 makes a destination quiescent; the upper and lower
// connection thresholds mark it overloaded, as ipvsadm's -x and -y do.
package sched
