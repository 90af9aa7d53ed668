#!/usr/bin/env bash
# Block storage benchmark: starts a release onestack (network agent off, volume agent on) on a
# scratch data directory and runs bench/volume.py against it: POST /volumes latency, create ->
# available (qemu-img on this host's disk), extend -> grown, delete -> gone, SCALE volumes made
# by WORKERS client threads, GET /volumes/detail?limit=100 among them, the files' disk use and
# onestack's memory. There is no Cinder baseline here (none in ../shared/baseline).
# Results: bench/results/volume-<stamp>/result.json.
#
# usage: bench/volume.sh        (ROUNDS=50 SCALE=1000 WORKERS=8 LIST_GETS=200 to change sizes)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/onestack}"
PORT="${ONESTACK_PORT:-5500}"
STAMP="$(date +%Y%m%dT%H%M%S)"
RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results/volume-$STAMP}"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
mkdir -p "$RESULTS_DIR"
DATA="$(mktemp -d)"
ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_NETWORK__AGENT=false ONESTACK_LOG__LEVEL=warn \
  ONESTACK_VOLUME__QUOTA_VOLUMES=-1 ONESTACK_VOLUME__QUOTA_GIGABYTES=-1 \
  "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$DATA/admin-openrc"
ONESTACK_PID=$SERVER BENCH_DATA="$DATA" python3 "$ROOT/bench/volume.py" | tee "$RESULTS_DIR/result.json"
