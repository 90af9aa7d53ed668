#!/usr/bin/env bash
# Compute benchmark: starts a release onestack on a scratch data directory once per part and
# runs bench/compute.py against it, then prints a summary block:
#   fake-create  [compute] driver = "fake", network agent off: POST /servers latency over
#                CREATES sequential creates, with networks "none" and with one network (a port);
#   fake-scale   the same driver: SCALE servers created then deleted by WORKERS client threads
#                (time of each phase, VmHWM and idle VmRSS of onestack), and with SCALE servers
#                GET /servers/detail?limit=100 and GET /servers?limit=100 (LIST_GETS each);
#   qemu         (root) real guests under QEMU (TCG here), network agent on, a port on a
#                no-DHCP network: POST latency, POST -> ACTIVE and DELETE -> gone over ROUNDS
#                rounds, and POST -> the guest's ONESTACK-GUEST-UP console line against a plain
#                qemu-system-x86_64 run with onestack's own argv (ROUNDS each, alternated).
# The qemu part runs onestack, its guests and the plain QEMU runs in a network namespace of
# their own (cbench-<pid>): the agent's bridges, taps and nftables tables never meet the
# host's, and deleting the namespace removes whatever an interrupted run leaves behind.
# Without root the qemu part is skipped (said in the summary). There is no Nova baseline here.
# Results: bench/results/compute-<stamp>/{fake-create,fake-scale,qemu}.json and server logs.
#
# usage: bench/compute.sh        (~2 min on 2 vCPU as root)
#   CREATES=200 SCALE=1000 WORKERS=4 LIST_GETS=200 ROUNDS=5   sizes
#   FAKE=0 skips the fake-driver parts; QEMU=0 skips the qemu part
#   DATABASE=postgres runs the fake-driver parts on a PostgreSQL server of their own
#   (bench/postgres.sh) instead of SQLite
#   ONESTACK_PORT=5400  GUEST_DIR=target/test-guest (built by scripts/build-test-guest.sh if missing)
# Any ONESTACK_* variable (e.g. ONESTACK_LOG__LEVEL=info) reaches the onestack server.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/onestack"
PORT="${ONESTACK_PORT:-5400}"
STAMP="$(date +%Y%m%dT%H%M%S)"
RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results/compute-$STAMP}"
GUEST_DIR="${GUEST_DIR:-$ROOT/target/test-guest}"
FAKE="${FAKE:-1}"; QEMU="${QEMU:-1}"; DATABASE="${DATABASE:-sqlite}"
# shellcheck source=bench/postgres.sh
source "$ROOT/bench/postgres.sh"
[ "$QEMU" = 1 ] || QEMU_SKIPPED="QEMU=0"
export CREATES="${CREATES:-200}" SCALE="${SCALE:-1000}" WORKERS="${WORKERS:-4}"
export LIST_GETS="${LIST_GETS:-200}" ROUNDS="${ROUNDS:-5}"

log() { printf '[compute %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench/compute.sh: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
mkdir -p "$RESULTS_DIR"
RESULTS_DIR="$(cd "$RESULTS_DIR" && pwd)"
WORK="$(mktemp -d /tmp/onestack-compute-bench.XXXXXX)"
export BENCH_WORK="$WORK"
SERVER="" DATA="" NS="" IN_NS=()
STARTED=$SECONDS

# Stops a QEMU this run started (by its pid; only if it is a QEMU), SIGKILL after 5 s.
kill_qemu() {
  local pid=$1
  [ -n "$pid" ] && grep -qa qemu "/proc/$pid/cmdline" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# Stops onestack, then the guests it left running (daemonized QEMUs outlive it).
stop_server() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
  fi
  if [ -n "$DATA" ]; then
    for f in "$DATA"/compute/instances/*/qemu.pid; do
      if [ -f "$f" ]; then kill_qemu "$(cat "$f" 2>/dev/null)"; fi
    done
  fi
}

cleanup() {
  trap - EXIT INT TERM
  stop_server
  pg_stop
  if [ -f "$WORK/plain-qemu.pid" ]; then kill_qemu "$(cat "$WORK/plain-qemu.pid" 2>/dev/null)"; fi
  if [ -n "$NS" ]; then ip netns del "$NS" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME [VAR=value ...]: onestack on a fresh data dir ($DATA), pid in $SERVER.
start_server() {
  local name=$1
  shift
  DATA="$WORK/$name"
  mkdir -p "$DATA"
  env ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_LOG__LEVEL="${ONESTACK_LOG__LEVEL:-warn}" "$@" \
    ${IN_NS[@]+"${IN_NS[@]}"} "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" \
    >"$RESULTS_DIR/server-$name.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 200); do [ -f "$DATA/admin-openrc" ] && return 0; sleep 0.1; done
  die "onestack did not start: see $RESULTS_DIR/server-$name.log"
}

# run_phase NAME: bench/compute.py NAME against the running server, into $RESULTS_DIR/NAME.json.
run_phase() {
  log "$1"
  (
    # shellcheck disable=SC1091
    source "$DATA/admin-openrc"
    ONESTACK_PID=$SERVER ONESTACK_DATA=$DATA ${IN_NS[@]+"${IN_NS[@]}"} python3 "$ROOT/bench/compute.py" "$1"
  ) >"$RESULTS_DIR/$1.json"
}

# Big enough for SCALE servers of the 64 MiB bench flavor; no quota in the way.
UNLIMITED=(ONESTACK_COMPUTE__QUOTA_INSTANCES=-1 ONESTACK_COMPUTE__QUOTA_CORES=-1
  ONESTACK_COMPUTE__QUOTA_RAM=-1 ONESTACK_NETWORK__QUOTA_PORT=-1)
if [ "$FAKE" = 1 ]; then
  FAKE_ENV=("${UNLIMITED[@]}" ONESTACK_COMPUTE__DRIVER=fake ONESTACK_NETWORK__AGENT=false
    ONESTACK_NETWORK__HOST="cbench-$$" ONESTACK_COMPUTE__VCPUS=100000
    ONESTACK_COMPUTE__MEMORY_MB=100000000 ONESTACK_COMPUTE__DISK_GB=1000000)
  export BENCH_DATABASE="$DATABASE"
  for phase in fake-create fake-scale; do
    db=()
    if [ "$DATABASE" = postgres ]; then
      pg_stop; pg_start
      db=(ONESTACK_DATABASE__URL="$PG_URL")
    fi
    start_server "$phase" "${FAKE_ENV[@]}" ${db[@]+"${db[@]}"}
    run_phase "$phase"
    stop_server
  done
fi

if [ "$QEMU" = 1 ]; then
  why=""
  if [ "$(id -u)" -ne 0 ]; then
    why="needs root (taps, bridges, nftables)"
  elif ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null; then
    why="qemu-system-x86_64 / qemu-img not installed (scripts/install-deps.sh)"
  fi
  if [ -n "$why" ]; then
    log "skipping the qemu part: $why"
    echo "$why" >"$RESULTS_DIR/qemu.skipped"
  else
    [ -f "$GUEST_DIR/disk.img" ] || "$ROOT/scripts/build-test-guest.sh" "$GUEST_DIR"
    NS="cbench-$$"
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
    IN_NS=(ip netns exec "$NS")
    start_server qemu "${UNLIMITED[@]}" ONESTACK_NETWORK__HOST="cbench-$$"
    export GUEST_DISK="$GUEST_DIR/disk.img"
    run_phase qemu
    stop_server
  fi
fi

if [ -n "${QEMU_SKIPPED:-}" ]; then echo "$QEMU_SKIPPED" >"$RESULTS_DIR/qemu.skipped"; fi
python3 "$ROOT/bench/compute.py" summary "$RESULTS_DIR" | tee "$RESULTS_DIR/summary.txt"
echo "results: $RESULTS_DIR  (took $((SECONDS - STARTED)) s)"
