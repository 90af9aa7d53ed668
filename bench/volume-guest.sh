#!/usr/bin/env bash
# Block storage with guests: starts a release onestack (QEMU driver, network agent off, so no
# root is needed) on a scratch data directory and runs bench/volume-guest.py against it:
#   attach      a running test guest (target/test-guest): POST os-volume_attachments ->
#               the volume in-use (hot-plugged), DELETE -> available (the guest let go), ROUNDS
#   boot        POST /servers -> ACTIVE and -> the guest's marker line, from an image and from
#               a new volume made of the same image (ROUNDS each, alternated)
#   backups     a volume made from an image of BACKUP_MIB random MiB: full backup -> available,
#               CHANGE_MIB rewritten, incremental backup -> available, the bytes each keeps in
#               the store, restore -> a new volume available
# With `figures`, it runs bench/volume-figures.py instead: issue 18's figures, each beside
# its reference on this machine (qemu-img convert, dd with fdatasync, the same QEMU started
# by hand); see that script.
# There is no Cinder baseline here (none in ../shared/baseline).
# Results: bench/results/volume-guest-<stamp>/result.json (volume-figures-<stamp>/ likewise).
#
# usage: bench/volume-guest.sh [figures]   (ROUNDS=5 BACKUP_MIB=256 CHANGE_MIB=16 to change
#                                           sizes; figures: ROUNDS SEQ_MIB=128 SCALE=1000)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/onestack}"
PORT="${ONESTACK_PORT:-5510}"
STAMP="$(date +%Y%m%dT%H%M%S)"
SCRIPT=volume-guest
[ "${1:-}" = figures ] && SCRIPT=volume-figures
RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results/$SCRIPT-$STAMP}"
GUEST_DIR="${GUEST_DIR:-$ROOT/target/test-guest}"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
"$ROOT/scripts/build-test-guest.sh" "$GUEST_DIR" >&2
mkdir -p "$RESULTS_DIR"
DATA="$(mktemp -d)"
ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_NETWORK__AGENT=false ONESTACK_LOG__LEVEL=warn \
  ONESTACK_VOLUME__QUOTA_VOLUMES=-1 ONESTACK_VOLUME__QUOTA_GIGABYTES=-1 \
  "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER=$!
cleanup() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  # Guests outlive onestack: stop the ones this run started.
  for pidfile in "$DATA"/compute/instances/*/qemu.pid "$DATA"/by-hand/qemu.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$DATA/admin-openrc"
BENCH_DATA="$DATA" GUEST_DIR="$GUEST_DIR" OPENSTACK_CLI="$ROOT/.venv/bin/openstack" \
  python3 "$ROOT/bench/$SCRIPT.py" | tee "$RESULTS_DIR/result.json"
