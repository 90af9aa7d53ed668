#!/usr/bin/env bash
# Crash safety (bench/crash.py): kills onestack with SIGKILL at KILLS seeded random moments of
# a mixed workload, restarts it each time on the same data directory, and checks that every
# accepted write is there, nothing is half-made and nothing leaked. No root needed (the
# network agent stays off; the fake compute driver).
#
# usage: bench/crash.sh               (40 kill points: what `make test` runs)
#        KILLS=200 bench/crash.sh     (the benchmark figure in docs/benchmarks.md)
#        SEED=<n> bench/crash.sh      (repeat a run: the seed is printed at the start)
# Results: bench/results/crash-<stamp>/{result.json,server.log}.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export BIN="${BIN:-$ROOT/target/release/onestack}"
STAMP="$(date +%Y%m%dT%H%M%S)"
export RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results/crash-$STAMP}"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
mkdir -p "$RESULTS_DIR"
export DATA="$(mktemp -d /tmp/onestack-crash.XXXXXX)"
export SERVER_LOG="$RESULTS_DIR/server.log"
trap 'pkill -9 -f -- "--data-dir $DATA" 2>/dev/null || true; rm -rf "$DATA"' EXIT
timeout "${CRASH_TIMEOUT:-900}" python3 "$ROOT/bench/crash.py"
