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
bench_cleanup() {
  pkill -f "guest=bench-hand-$$" 2>/dev/null || true
}
# shellcheck source=bench/two_hosts.sh
source "$ROOT/bench/two_hosts.sh"
start_controller ONESTACK_LOG__LEVEL=info ONESTACK_COMPUTE__DRIVER=qemu ONESTACK_COMPUTE__FORCE_CONFIG_DRIVE=false
ONESTACK_BIN="$BIN" ONESTACK_DATA="$DATA" BENCH_WORK="$WORK" BENCH_NS="$NS" \
  BENCH_CONTROLLER="bench-ctl-$$" BENCH_GUEST="$ROOT/target/test-guest" BENCH_HAND="bench-hand-$$" \
  python3 "$ROOT/bench/live_migration.py"
