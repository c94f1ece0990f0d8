#!/bin/sh
# Compare the Go microbenchmarks (a connection through a worker, rewrite per mode, scheduler pick,
# connection table at 1M entries, sync codec) of a base commit with the
# working tree, with benchstat: make benchstat BASE=<commit> [COUNT=6].
set -eu
BASE=${BASE:-HEAD~1}
COUNT=${COUNT:-6}
PKGS="./dataplane/ ./dataplane/packet/ ./sched/ ./conntrack/ ./connsync/ ./bpf/"
# golang.org/x/perf has no tagged releases; pinned to a pseudo-version.
BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

root=$(git rev-parse --show-toplevel)
out=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$out/base" >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
git -C "$root" worktree add --detach "$out/base" "$BASE" >/dev/null
echo "benchmarks of $BASE ($(git -C "$root" rev-parse --short "$BASE"))..." >&2
(cd "$out/base" && go test -run='^$' -bench=. -benchmem -count="$COUNT" $PKGS) >"$out/old.txt"
echo "benchmarks of the working tree..." >&2
(cd "$root" && go test -run='^$' -bench=. -benchmem -count="$COUNT" $PKGS) >"$out/new.txt"
go run "$BENCHSTAT" "$out/old.txt" "$out/new.txt"
