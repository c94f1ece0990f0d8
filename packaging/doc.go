// Package packaging holds what `make package` puts in the Debian package
// (deb/, systemd/, man/, completion/; mangen turns the manual pages into
// roff). It has no Go code of its own: its tests (package_test.go) check
// the pages, the completion, the starting configuration and the unit, and
// as root build, install and purge the package.
package packaging
