//go:build race

package sched

// raceEnabled: the race detector instruments every access, which makes
// allocation counts meaningless and the long loops slow.
const raceEnabled = true
