// Package bgp implements route health injection for govs: it announces each
// virtual service address (VIP) as a host route (/32 for IPv4, /128 for IPv6)
// to the upstream routers over BGP while the service can serve traffic, and
// withdraws the route when it cannot.
//
// # Why
//
// A single director is a single point of failure and a capacity ceiling. With
// route health injection the network, not a VRRP pair, decides which directors
// receive traffic:
//
//   - Several directors run govsd with the same virtual services and each one
//     announces the same VIP /32 to the same router(s), every one with its own
//     next hop (the director's address).
//   - The router installs all of them as equal-cost paths (ECMP; the router
//     needs multipath enabled, e.g. "maximum-paths" / "merge paths") and
//     spreads flows over the directors by hashing the packet 5-tuple, so a
//     given TCP connection keeps landing on the same director while the set of
//     directors is stable.
//   - Adding a director adds capacity: it starts announcing and the router
//     rehashes a share of the new flows to it. Losing a director (crash, link
//     down, govsd stopped) removes its path when the BGP session drops or the
//     route is withdrawn, and the router moves its flows to the survivors.
//
// When the router rehashes, a flow can arrive at a director that has no
// connection-table entry for it. With the "mh" (Maglev hashing) scheduler
// every director computes the same real server for the same flow from the
// same configuration, so such a mid-stream flow still reaches the real server
// that owns it instead of being reset. Other schedulers (rr, wrr, lc, ...)
// keep per-director state and only guarantee stickiness while the ECMP hash
// does not move the flow.
//
// # Health
//
// The speaker itself knows nothing about health checks: the daemon calls
// Announce when a virtual service gets its first healthy real server and
// Withdraw when its last healthy real server goes away, so a director whose
// back ends are all down stops attracting traffic that it could only drop.
// Stop withdraws everything and closes the sessions with a Cease notification,
// so a cleanly stopped govsd leaves the ECMP group at once instead of after
// the BGP hold time.
//
// # Implementation
//
// The BGP speaker is GoBGP (github.com/osrg/gobgp/v3/pkg/server) embedded in
// the govsd process. No gRPC API port is opened, and by default no BGP port is
// listened on either: govs only originates routes and connects out to the
// configured peers, it never learns routes. IPv4 routes carry a NEXT_HOP
// attribute; IPv6 routes are sent with MP-BGP (MP_REACH_NLRI) and need an
// explicit IPv6 next hop (Config.NextHop6). The configured communities are
// attached to every announcement so that routers can match govs routes in
// their import policies.
package bgp
