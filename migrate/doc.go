// Package migrate converts keepalived and ipvsadm configurations into a
// govs.yaml (govsd convert keepalived|ipvsadm FILE).
//
// Keepalived reads keepalived.conf (with its include files): every
// virtual_server, virtual_server_group member and real server with its
// health checker becomes a govs service, real server and health_check.
// Ipvsadm reads rules as ipvsadm -S, ipvsadm-save and govsadm -S write
// them (-A, -E, -D, -C, -a, -e, -d, --set, and govs's --add-laddr and
// --fullnat), or a file of ipvsadm command lines.
//
// The conversion never guesses silently. What govs cannot express (a
// second checker on one server, notify scripts, quorum, a firewall mark's
// netfilter rule, ...) is an error in Result.Messages, located as
// file:line; what is converted with a change in behaviour, and what stays
// keepalived's (vrrp_instance, global_defs), is a note. The YAML is
// produced in either case, with comments saying where each service came
// from and how the health check timers were mapped; with errors it needs
// editing (govsd -t says where) before govsd takes it.
package migrate
