# govs — see README.md. Every target runs on a fresh Debian machine after
# .ci/run (or `make deps`) has installed the packages.

GO        ?= go
BIN       := bin
GOFLAGS   ?=
TEST_TIMEOUT ?= 30m
BASE      ?= HEAD~1
COUNT     ?= 6

.PHONY: all build generate test unit e2e demo bench benchstat fuzz vet deps package clean

all: build

# The version every binary reports (govsd -version, govsadm -v, the
# control API, govs_build_info): git describe, else the toolchain's record.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS   := -X github.com/govs/govs/version.Version=$(VERSION)

build:
	$(GO) build $(GOFLAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# Rebuild the BPF objects with clang through bpf2go. The generated .o and Go
# files are committed, so a plain build needs no clang.
generate:
	cd bpf && $(GO) generate ./...
	cd pktgen && $(GO) generate ./...

vet:
	$(GO) vet ./...

# Every test, privileged ones included (they need root and skip without it).
# Missing Debian packages (iproute2, ethtool, gobgpd, keepalived, ...) are
# installed first, so this works on a fresh machine.
test: deps vet
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

unit:
	$(GO) test -count=1 -short ./...

e2e: build
	$(GO) test -count=1 -v -timeout $(TEST_TIMEOUT) ./test/

# The demo: a namespace topology with three tiny HTTP real servers, govsd on
# an embedded configuration, requests through the VIP. Needs root.
demo: deps build
	$(BIN)/govs-demo -govsd $(BIN)/govsd -govsadm $(BIN)/govsadm

# The benchmark: govs-pktgen (XDP live frames) drives kernel forwarding,
# nftables DNAT and govs in every mode through namespaces; writes
# bench/results.md; connections per second against nginx real servers
# (installed if missing). Then the Go microbenchmarks (a whole connection
# through a worker, rewrite per mode, scheduler pick, connection table at 1M
# entries, sync codec), for benchstat; and the per-worker paths at -cpu 1
# and 2 (tables, hand-off rings, whole connections: what two workers share).
bench: build
	@./.ci/deps nginx-light
	$(GO) run ./bench/run --govsd $(BIN)/govsd
	$(GO) test -run='^$$' -bench=. -benchmem ./dataplane/ ./dataplane/packet/ ./sched/ ./conntrack/ ./connsync/ ./bpf/ | tee bench/micro.txt
	$(GO) test -run='^$$' -bench=Parallel -cpu 1,2 -benchmem ./dataplane/ ./conntrack/ | tee -a bench/micro.txt

# The microbenchmarks of commit BASE (default HEAD~1) against the working
# tree, compared with benchstat: make benchstat BASE=v1 COUNT=6
benchstat:
	BASE=$(BASE) COUNT=$(COUNT) sh bench/compare.sh

# Each fuzz target for a short while.
FUZZTIME ?= 30s
fuzz:
	for pkg in ./dataplane/packet/ ./dataplane/; do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
			$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; done; done

# The Debian package dist/govs_VERSION_ARCH.deb, with dpkg-deb and no
# network: static govsd and govsadm (LDFLAGS above), govsd.service, the
# manual pages, bash completion and /etc/govs/govs.yaml (packaging/).
package:
	GO="$(GO)" VERSION="$(VERSION)" LDFLAGS="$(LDFLAGS)" sh packaging/deb/build.sh

# Debian packages the build, the tests and the demo use.
deps:
	@./.ci/deps

clean:
	rm -rf $(BIN) dist
