// Package testutil holds what govs's tests share beyond the namespace
// topologies of internal/topo: the root check of privileged tests, entry
// into a named network namespace, the govsd process harness of the
// end-to-end tests and the benchmark, and the builder of their govsd
// configurations.
//
// The harness and the configuration builder do not depend on package
// testing, so that the benchmark, a plain program, uses the same code as
// the tests.
package testutil
