// Package daemon is govsd's engine: it loads the configuration, runs the data
// path, serves the control socket and the metrics endpoint, and applies
// configuration reloads (SIGHUP) as a difference against what runs, keeping
// the running configuration when a new file is invalid. cmd/govsd is a thin
// main around it.
package daemon
