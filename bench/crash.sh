#!/usr/bin/env bash
# Crash safety (bench/crash.py): kills onestack with SIGKILL at KILLS seeded random moments of
# a mixed workload, restarts it each time on the same data directory, and checks that every
# accepted write is there, nothing is half-made and nothing leaked (the fake compute driver).
# As root the network agent runs and the host is audited too (bench/crash_host.py): after
# each restart, once the agent has converged, nothing of this cloud on the host for a
# network, port or router the database no longer has, and nothing missing; at the end
# everything is deleted, the host must be clean, and what is left after the final stop is
# reported. Not root: the agent stays off and the host is not checked (the log says so).
#
# usage: bench/crash.sh               (40 kill points: what `make test` runs)
#        KILLS=200 bench/crash.sh     (the benchmark figure in docs/benchmarks.md)
#        SEED=<n> bench/crash.sh      (repeat a run: the seed is printed at the start)
#        ONESTACK_PORT=5510 BIN=path/to/onestack
#        AGENT_NETWORKS=20 ONESTACK_NETWORK__RESYNC_SECONDS=2   (root: how many networks live at
#          most, and the agent's full-pass period; both keep each host audit to seconds)
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

# After a run that did not finish (crash.py reports the host itself otherwise): what its
# cloud left on the host, found by its mark. Reported, never removed.
aborted_leftovers() {
  [ "$(id -u)" -eq 0 ] && [ -f "$DATA/cloud-id" ] && [ ! -f "$RESULTS_DIR/result.json" ] || return 0
  local cloud
  cloud="$(cat "$DATA/cloud-id")"
  echo "crash: run did not finish; left on the host by cloud $cloud (reported, not removed):" >&2
  timeout 60 python3 "$ROOT/bench/crash_host.py" leftovers "$cloud" | sed 's/^/    /' >&2 || true
}
trap 'pkill -9 -f -- "--data-dir $DATA" 2>/dev/null || true; aborted_leftovers; rm -rf "$DATA"' EXIT
timeout "${CRASH_TIMEOUT:-900}" python3 "$ROOT/bench/crash.py"
