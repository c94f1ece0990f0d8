// Package topo builds network-namespace topologies for govs's end-to-end
// tests, the demo and the benchmark: namespaces, veth pairs, bridges,
// addresses and routes, and helpers that open sockets inside a namespace.
//
// Everything it creates is named with a caller-chosen prefix and is removed by
// Topology.Close, which tests register with t.Cleanup so that a failing test
// leaves nothing behind. Only addresses from 198.18.0.0/15 and 2001:db8::/32
// are meant to be used with it.
package topo
