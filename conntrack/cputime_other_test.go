//go:build !linux

package conntrack

func threadCPU() (ns int64, ok bool) { return 0, false }
