// Package control is the director's runtime API: JSON over HTTP on a unix
// socket (director.control_socket, mode 0600, so only root may use it). govsd
// serves it; govsadm and scripts are its clients.
//
// Endpoints (all JSON):
//
//	GET  /v1/services     virtual services with their real servers and counts
//	GET  /v1/connections  the connection table (ipvsadm -Lc)
//	GET  /v1/counters     data-path and XDP counters
//	POST /v1/reload       re-read the configuration file (like SIGHUP)
package control
