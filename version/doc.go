// Package version is govs's version, one for every binary and output:
// govsd -version, govsadm -v, the control API (control.Info) and the
// govs_build_info metric.
package version
