// Package control is the director's runtime API: JSON over HTTP on a unix
// socket (director.control_socket, mode 0600, so only root may use it). govsd
// serves it; govsadm and scripts are its clients.
//
// Endpoints (JSON bodies; errors are {"error": "..."} with a 4xx/5xx code):
//
//	GET    /v1/info                          Info
//	GET    /v1/services                      []Service (stats and rates included)
//	POST   /v1/services                      ServiceSpec: add a virtual service (ipvsadm -A); 409 if it exists
//	PUT    /v1/services                      ServiceSpec: edit a virtual service (-E); 404 if missing
//	DELETE /v1/services?protocol=&vip=&port= delete one (-D); without a query: all (-C)
//	POST   /v1/dests                         DestSpec: add a real server (-a); 409 if it exists
//	PUT    /v1/dests                         DestSpec: edit a real server (-e)
//	DELETE /v1/dests?protocol=&vip=&port=&address=&rport=   delete a real server (-d)
//	POST   /v1/laddrs, DELETE /v1/laddrs     LocalAddr: full-NAT local addresses (--add-laddr/--del-laddr)
//	POST   /v1/zero?protocol=&vip=&port=     zero counters of one service, or all without a query (-Z)
//	GET    /v1/timeouts, PUT /v1/timeouts    Timeouts (ipvsadm --set, -L --timeout)
//	GET    /v1/connections[?templates=1]     []Connection (-Lc, --persistent-conn)
//	GET    /v1/counters                      data-path and XDP counters
//	GET    /v1/daemon, POST /v1/daemon, DELETE /v1/daemon?role=   SyncDaemon: connection sync daemons (--start-daemon, --stop-daemon)
//	POST   /v1/reload                        re-read the configuration file (like SIGHUP)
package control
