#!/usr/bin/env bash
# Routers, floating IPs and the metadata service, measured: starts a release onestack with
# its agent (needs root) and the fake compute driver on a scratch data directory, with an
# "outside" host (a namespace at the far end of a veth) on the external network's physnet1,
# and runs bench/l3.py against it. Results: bench/results/l3-<stamp>/result.json.
# There is no Neutron in ../shared/baseline; the throughput figure is compared with the same
# two guests on one network (the bridge alone), which is the limit here.
#
# usage: bench/l3.sh        (ROUNDS=5 METADATA_REQUESTS=500 SECONDS_PER_BLAST=5 to change)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/onestack"
PORT="${ONESTACK_PORT:-5301}"
STAMP="$(date +%Y%m%dT%H%M%S)"
RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results/l3-$STAMP}"
[ "$(id -u)" -eq 0 ] || { echo "bench/l3.sh: needs root (namespaces, veths, nftables)" >&2; exit 1; }
command -v iperf3 >/dev/null || {
  echo "==> installing iperf3 (forwarding throughput)"
  apt-get install -y -qq iperf3 >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }
}
[ -x "$BIN" ] || cargo build --release --locked -p onestack
mkdir -p "$RESULTS_DIR"
DATA="$(mktemp -d)"
HOST="l3bench-$$"
OUT_NS="l3b-out-$$"
UPLINK="l3bup$(( $$ % 10000 ))"
cleanup() {
  kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  ip link del "$UPLINK" 2>/dev/null || true
  ip netns del "$OUT_NS" 2>/dev/null || true
  rm -rf "$DATA"
}
SERVER=0
trap cleanup EXIT
ip netns add "$OUT_NS"
ip link add "$UPLINK" type veth peer name l3bout netns "$OUT_NS"
ip link set "$UPLINK" up
ip -n "$OUT_NS" link set lo up
ip -n "$OUT_NS" link set l3bout up
ip -n "$OUT_NS" addr add 10.240.0.1/24 dev l3bout

ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_NETWORK__HOST="$HOST" ONESTACK_LOG__LEVEL=warn \
ONESTACK_NETWORK__PHYSICAL_INTERFACES="{physnet1 = \"$UPLINK\"}" ONESTACK_COMPUTE__DRIVER=fake \
  "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$DATA/admin-openrc"
BENCH_HOST="$HOST" OUTSIDE_NS="$OUT_NS" python3 "$ROOT/bench/l3.py" | tee "$RESULTS_DIR/result.json"
