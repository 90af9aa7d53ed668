#!/usr/bin/env bash
# Networking across hosts: a controller (network agent on, listening on an underlay) and a
# host joined from a network namespace of its own (its end of the underlay veth), as the
# tests do. Times `onestack join` until a port bound to the new host is ACTIVE (the host's
# network agent built it), and the ping round trip between stand-in guests (veth peers in
# namespaces) on two hosts (VXLAN over the underlay) next to two on one host
# (bench/hosts_network.py). Root only.
# usage: sudo bench/hosts_network.sh    (ROUNDS=5, ONESTACK_PORT=5402)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/onestack"
PORT="${ONESTACK_PORT:-5402}"
[ "$(id -u)" = 0 ] || { echo "run as root: it builds bridges, VXLAN and namespaces" >&2; exit 1; }
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
command -v iperf3 >/dev/null || { echo "needs iperf3: apt-get install iperf3" >&2; exit 1; }
WORK="$(mktemp -d /tmp/onestack-hosts-net-bench.XXXXXX)"
bench_cleanup() {
  for ns in $(ip netns list | awk '{print $1}' | grep "^bench-guest-$$-" || true); do ip netns del "$ns"; done
}
# shellcheck source=bench/two_hosts.sh
source "$ROOT/bench/two_hosts.sh"
start_controller ONESTACK_LOG__LEVEL=warn ONESTACK_COMPUTE__DRIVER=fake
ONESTACK_BIN="$BIN" ONESTACK_DATA="$DATA" BENCH_WORK="$WORK" BENCH_NS="$NS" \
  BENCH_CONTROLLER="bench-ctl-$$" BENCH_GUEST_PREFIX="bench-guest-$$-" \
  python3 "$ROOT/bench/hosts_network.py"
