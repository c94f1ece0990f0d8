// Package test holds govs's end-to-end tests: each builds a namespace
// topology (client, director, real servers), runs the real bin/govsd with a
// YAML file, and drives it with real TCP and UDP clients and servers.
// They need root; without it they skip and say why.
package test
