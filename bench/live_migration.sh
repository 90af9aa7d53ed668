#!/usr/bin/env bash
# Live migration of the tiny test guest between two hosts: a controller (QEMU, network agent)
# and a host joined from a network namespace of its own (its end of the underlay veth), as
# the tests do. Moves the guest back and forth with the API while the controller's DHCP
# namespace pings it every 10 ms (missed replies), then migrates the same guest between two
# QEMUs started by hand in the same two places (bench/live_migration.py). Root only.
# usage: sudo bench/live_migration.sh    (ROUNDS=4, ONESTACK_PORT=5403)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/onestack"
PORT="${ONESTACK_PORT:-5403}"
[ "$(id -u)" = 0 ] || { echo "run as root: it builds bridges, VXLAN and namespaces" >&2; exit 1; }
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
command -v ping >/dev/null || { echo "needs ping: apt-get install iputils-ping" >&2; exit 1; }
"$ROOT/scripts/build-test-guest.sh" >/dev/null
WORK="$(mktemp -d /tmp/onestack-live-bench.XXXXXX)"
NS="bench-host2-$$"
NEAR="bnn$$"
SERVER=""
cleanup() {
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  [ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$NEAR" 2>/dev/null || true
  pkill -f "guest=bench-hand-$$" 2>/dev/null || true
  if [ -f "$WORK/controller/cloud-id" ]; then
    id="$(cat "$WORK/controller/cloud-id")"
    # What the controller's agent built and had no time to remove (a failed run).
    for ns in $(ip netns list | awk '{print $1}' | grep -E '^os(dhcp|rtr)-' || true); do
      if ip netns exec "$ns" ip -d link show lo | grep -q "onestack:$id:"; then
        for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns"
      fi
    done
    for dev in $(ip -d link show | awk -v id="onestack:$id:" '/^[0-9]+:/ {name=$2} $0 ~ "alias " id {sub(/@.*/, "", name); sub(/:$/, "", name); print name}'); do
      ip link del "$dev" 2>/dev/null || true
    done
    nft delete table bridge "onestack_${id:0:16}" 2>/dev/null || true
    nft delete table inet "onestack_${id:0:16}" 2>/dev/null || true
    rm -rf "/run/onestack/$id"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
ip link add "$NEAR" type veth peer name "bnf$$"
ip netns add "$NS"
ip link set "bnf$$" netns "$NS"
ip addr add 10.252.250.1/30 dev "$NEAR"
ip link set "$NEAR" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add 10.252.250.2/30 dev "bnf$$"
ip netns exec "$NS" ip link set "bnf$$" up
DATA="$WORK/controller"
ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_LOG__LEVEL=info ONESTACK_COMPUTE__DRIVER=qemu \
  ONESTACK_NETWORK__AGENT=true ONESTACK_NETWORK__HOST="bench-ctl-$$" \
  ONESTACK_NETWORK__LOCAL_IP=10.252.250.1 ONESTACK_COMPUTE__FORCE_CONFIG_DRIVE=false \
  "$BIN" up --data-dir "$DATA" --listen "10.252.250.1:$PORT" >"$WORK/controller.log" 2>&1 &
SERVER=$!
for _ in $(seq 200); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
[ -f "$DATA/admin-openrc" ] || { cat "$WORK/controller.log"; exit 1; }
# shellcheck disable=SC1091
source "$DATA/admin-openrc"
ONESTACK_BIN="$BIN" ONESTACK_DATA="$DATA" BENCH_WORK="$WORK" BENCH_NS="$NS" \
  BENCH_CONTROLLER="bench-ctl-$$" BENCH_GUEST="$ROOT/target/test-guest" BENCH_HAND="bench-hand-$$" \
  python3 "$ROOT/bench/live_migration.py"
