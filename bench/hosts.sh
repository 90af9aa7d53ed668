#!/usr/bin/env bash
# Many-hosts benchmark: a controller (fake driver, on a scratch data directory) and ROUNDS
# hosts joining it one after another with `onestack join`; the time from starting `onestack
# join` until the controller lists the host `up` (from then on it is schedulable), and until
# a server (no ports) placed on it is ACTIVE, built by the joined agent over the agent
# protocol (bench/hosts.py).
# usage: bench/hosts.sh    (ROUNDS=10, ONESTACK_PORT=5401)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/onestack"
PORT="${ONESTACK_PORT:-5401}"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
WORK="$(mktemp -d /tmp/onestack-hosts-bench.XXXXXX)"
SERVER=""
cleanup() {
  [ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT
DATA="$WORK/controller"
ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_LOG__LEVEL=warn ONESTACK_COMPUTE__DRIVER=fake \
  ONESTACK_NETWORK__AGENT=false "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" \
  >"$WORK/controller.log" 2>&1 &
SERVER=$!
for _ in $(seq 200); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
[ -f "$DATA/admin-openrc" ] || { cat "$WORK/controller.log"; exit 1; }
# shellcheck disable=SC1091
source "$DATA/admin-openrc"
ONESTACK_BIN="$BIN" ONESTACK_DATA="$DATA" BENCH_WORK="$WORK" python3 "$ROOT/bench/hosts.py"
