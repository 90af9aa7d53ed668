#!/usr/bin/env bash
# Network benchmark: starts a release onestack with its agent (needs root) on a scratch data
# directory and runs bench/network.py against it (port create latency, 1,000 concurrent
# ports, security-group rule to enforcement on 100 bound ports, nftables rule counts).
# Results: bench/results/network-<stamp>/result.json. There is no Neutron baseline here.
#
# usage: bench/network.sh        (SEQUENTIAL=200 CONCURRENT=1000 WORKERS=32 to change sizes)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/onestack"
PORT="${ONESTACK_PORT:-5300}"
STAMP="$(date +%Y%m%dT%H%M%S)"
RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results/network-$STAMP}"
[ "$(id -u)" -eq 0 ] || { echo "bench/network.sh: needs root (the agent builds bridges and nftables rules)" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --locked -p onestack
mkdir -p "$RESULTS_DIR"
DATA="$(mktemp -d)"
HOST="bench-$$"
ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_NETWORK__HOST="$HOST" ONESTACK_NETWORK__QUOTA_PORT=-1 ONESTACK_LOG__LEVEL=warn \
  "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$DATA/admin-openrc"
# The agent's nft tables are named after the cloud (the first 16 characters of its id).
BENCH_TABLE="onestack_$(head -c 16 "$DATA/cloud-id")" BENCH_HOST="$HOST" python3 "$ROOT/bench/network.py" | tee "$RESULTS_DIR/result.json"
