#!/usr/bin/env bash
# Bounded load and soak: starts onestack on a scratch data directory (its own port, the fake
# compute driver, the network agent on when run as root) and runs bench/load.py against it:
# CLIENTS clients, each its own project and user, loop a mixed workload over identity,
# image, network and compute for DURATION seconds, every resource deleted in the iteration
# that made it. load.py reports errors, p50/p99 per route and onestack's RSS and open fds
# over time; then this script stops onestack and looks for anything its cloud left on the
# host (links, namespaces, nftables tables, dnsmasq, /run/onestack/<cloud id>).
# Results: bench/results/load-<stamp>/{result.json,server.log,host-leftovers.txt}.
#
# usage: bench/load.sh                    (1 minute: what CI runs)
#        DURATION=600 bench/load.sh       (the 10-minute soak: RSS growth must stay under 5%)
#   CLIENTS=8 DURATION=60 WARMUP=<20% of DURATION, at least 30>   sizes, in seconds
#   LOAD_STRICT_GROWTH=1    the long-run memory bound (RSS growth < 5%) in a short run too
#   BIN=path/to/onestack    the binary (default target/release/onestack)
#   ONESTACK_PORT=5500      RESULTS_DIR=...   any ONESTACK_* variable reaches the server
#   (load.py's docstring lists the rest: RSS_BOUND_PCT, FD_SLACK, NEW_TOKEN_EVERY, ...)
# Exit status: load.py's: 0 only with zero errors, nothing left behind (API, and the host
# clean within CONVERGE_TIMEOUT of the last delete) and RSS/fds flat after warm-up.
# What is found on the host after onestack stopped is reported, not counted.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/onestack}"
PORT="${ONESTACK_PORT:-5500}"
STAMP="$(date +%Y%m%dT%H%M%S)"
RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results/load-$STAMP}"
export CLIENTS="${CLIENTS:-8}" DURATION="${DURATION:-60}"

log() { printf '[load %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ ! -x "$BIN" ]; then
  [ "$BIN" = "$ROOT/target/release/onestack" ] || { echo "bench/load.sh: BIN=$BIN is not an executable" >&2; exit 1; }
  (cd "$ROOT" && cargo build --release --locked -p onestack)
fi
if [ "$(id -u)" -ne 0 ]; then
  log "not root: the network agent stays off, so bridges, taps, nftables and DHCP are not exercised"
fi
mkdir -p "$RESULTS_DIR"
RESULTS_DIR="$(cd "$RESULTS_DIR" && pwd)"
export RESULTS_DIR
DATA="$(mktemp -d /tmp/onestack-load.XXXXXX)"
HOST="load-$$"
SERVER=""
CLOUD=""

# What this cloud left on the host once onestack has stopped: everything the agent makes
# carries its mark (the alias onestack:<cloud id>:<host> on links and on lo inside its
# namespaces; nft tables onestack_<first 16 of the cloud id>), so other clouds on this host
# (tests running beside us) are never counted. Reported, never removed.
host_leftovers() {
  [ -n "$CLOUD" ] && [ "$(id -u)" -eq 0 ] || return 0
  local mark="onestack:$CLOUD:" ns pid
  ip -o link show 2>/dev/null | grep -F "alias $mark" | awk -F': ' '{print "link " $2}' || true
  for ns in $(ip netns list 2>/dev/null | awk '/^os/ {print $1}'); do
    ip -n "$ns" -o link show lo 2>/dev/null | grep -qF "alias $mark" && echo "netns $ns"
  done
  nft list tables 2>/dev/null | grep -F "onestack_${CLOUD:0:16}" | sed 's/^/nft /' || true
  for pid in $(pgrep -x dnsmasq 2>/dev/null); do
    grep -qaF "/run/onestack/$CLOUD/" "/proc/$pid/cmdline" 2>/dev/null && echo "process dnsmasq $pid"
  done
  if [ -e "/run/onestack/$CLOUD" ]; then
    echo "dir /run/onestack/$CLOUD ($(find "/run/onestack/$CLOUD" | wc -l) entries)"
  fi
  return 0
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  if [ -n "$CLOUD" ]; then
    host_leftovers >"$RESULTS_DIR/host-leftovers.txt"
    if [ -s "$RESULTS_DIR/host-leftovers.txt" ]; then
      log "left on the host by cloud $CLOUD after onestack stopped (reported, not removed):"
      sed 's/^/    /' "$RESULTS_DIR/host-leftovers.txt" >&2
    else
      log "nothing of cloud $CLOUD left on the host"
    fi
    if [ -f "$RESULTS_DIR/result.json" ]; then
      python3 - "$RESULTS_DIR" "$CLOUD" <<'EOF' || true
import json, sys
d, cloud = sys.argv[1], sys.argv[2]
with open(d + "/host-leftovers.txt") as f:
    left = [l.strip() for l in f if l.strip()]
with open(d + "/result.json") as f:
    r = json.load(f)
r["host_leftovers"] = {"cloud_id": cloud, "items": left}
with open(d + "/result.json", "w") as f:
    json.dump(r, f, indent=1)
EOF
    fi
  fi
  rm -rf "$DATA"
  log "results: $RESULTS_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Generous capacity so the scheduler is never what fails (the fake driver uses none of it);
# the default per-project quotas stay, each client being its own project.
ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_LOG__LEVEL="${ONESTACK_LOG__LEVEL:-warn}" \
ONESTACK_COMPUTE__DRIVER=fake ONESTACK_NETWORK__HOST="$HOST" \
ONESTACK_COMPUTE__VCPUS=1000 ONESTACK_COMPUTE__MEMORY_MB=1000000 ONESTACK_COMPUTE__DISK_GB=100000 \
  "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 200); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
[ -f "$DATA/admin-openrc" ] || { log "onestack did not start: see $RESULTS_DIR/server.log"; exit 1; }
CLOUD="$(cat "$DATA/cloud-id")"
log "onestack pid $SERVER on 127.0.0.1:$PORT, cloud $CLOUD, $CLIENTS clients for $DURATION s"
set +e
(
  # shellcheck disable=SC1091
  source "$DATA/admin-openrc"
  ONESTACK_PID=$SERVER ONESTACK_CLOUD_ID=$CLOUD python3 "$ROOT/bench/load.py"
)
rc=$?
set -e
exit "$rc"
