package conntrack

import (
	"syscall"
	"unsafe"
)

// adviseHugePages asks the kernel to back a large table with transparent
// huge pages (where THP is in "madvise" mode, as on most distributions): a
// lookup at a random slot then costs one TLB entry per 2 MiB instead of a
// page walk per 4 KiB. Only whole pages inside the slice are advised; an
// error just leaves the hint untaken.
func adviseHugePages[T any](s []T) {
	const huge = 2 << 20
	if len(s) == 0 {
		return
	}
	size := uintptr(len(s)) * unsafe.Sizeof(s[0])
	if size < 2*huge {
		return
	}
	base := unsafe.Pointer(&s[0])
	start := uintptr(base)
	off := (start+huge-1)&^(huge-1) - start
	end := (start + size) &^ (huge - 1)
	if end <= start+off {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(base, off)), end-start-off)
	_ = syscall.Madvise(b, 14 /* MADV_HUGEPAGE */)
}
