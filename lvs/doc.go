// Package lvs is govs's one vocabulary: the words LVS operators, the data
// path and every output share. An IP protocol, a forwarding method, a TCP
// flag, the default scheduler and the scheduler flags are defined here once;
// configuration, the connection table, the workers, the control API,
// govsadm and the metrics all take their names from here, so that one
// thing never has two spellings.
//
// It imports nothing of govs and may be imported by every package.
package lvs
