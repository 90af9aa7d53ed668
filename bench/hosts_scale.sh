#!/usr/bin/env bash
# Many hosts at scale (fake driver): a controller and HOSTS `onestack join` processes (each
# its own data directory and credential, 24 vCPUs and 16 GiB at ratio 1), then SERVERS
# servers booted AT_ONCE at a time through the compute API (bench/hosts_scale.py): the
# latency of `POST /servers` (placement with its claim in one write transaction), the time
# until all are ACTIVE (built by the joined agents over the agent protocol), the full admin
# server list, and the resident memory of the controller and of one joined host.
# usage: bench/hosts_scale.sh    (HOSTS=50 SERVERS=1000 AT_ONCE=8 DATABASE=sqlite|postgres
#                                  ONESTACK_PORT=5403)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/onestack"
PORT="${ONESTACK_PORT:-5403}"
DATABASE="${DATABASE:-sqlite}"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
# shellcheck source=bench/postgres.sh
source "$ROOT/bench/postgres.sh"
WORK="$(mktemp -d /tmp/onestack-hosts-scale.XXXXXX)"
SERVER=""
cleanup() {
  pkill -f -- "--data-dir $WORK/host-" 2>/dev/null || true
  [ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  pg_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
db=()
if [ "$DATABASE" = postgres ]; then
  pg_start
  db=(ONESTACK_DATABASE__URL="$PG_URL")
fi
DATA="$WORK/controller"
env "${db[@]}" ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_LOG__LEVEL=warn \
  ONESTACK_COMPUTE__DRIVER=fake ONESTACK_NETWORK__AGENT=false \
  ONESTACK_COMPUTE__QUOTA_INSTANCES=-1 ONESTACK_COMPUTE__QUOTA_CORES=-1 ONESTACK_COMPUTE__QUOTA_RAM=-1 \
  "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$WORK/controller.log" 2>&1 &
SERVER=$!
for _ in $(seq 300); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
[ -f "$DATA/admin-openrc" ] || { cat "$WORK/controller.log"; exit 1; }
# shellcheck disable=SC1091
source "$DATA/admin-openrc"
# `onestack join-token` writes the token to the controller's database: it is told the URL
# (bench/hosts_scale.py keeps it from the joined hosts, which never get it).
env "${db[@]}" ONESTACK_BIN="$BIN" ONESTACK_DATA="$DATA" BENCH_WORK="$WORK" \
  BENCH_CONTROLLER_PID="$SERVER" BENCH_DATABASE="$DATABASE" python3 "$ROOT/bench/hosts_scale.py"
