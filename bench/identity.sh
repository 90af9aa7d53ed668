#!/usr/bin/env bash
# Identity benchmark: onestack side by side with the real Keystone, measured in the same run
# with the baseline's own methods (../shared/baseline: wrk, 8 connections, the cold-start
# loop, tools/procmem.py, tools/wrkparse.py, hyperfine), then writes docs/benchmarks.md.
#
# usage (from anywhere):
#   bench/identity.sh                                   # full run (~25 min on 2 vCPU)
#   DUR=3s SHORT_DUR=3s RUNS=1 COLD_RUNS=2 DRAIN_S=2 KEYSTONE_VARIANTS=cache-memory bench/identity.sh
#
# Settings (env):
#   RUNS=3          load rounds per server (each: issue c1, issue cCONN, validate, version, ...)
#   COLD_RUNS=5     cold starts (each followed by the idle-memory sample 5 s later)
#   DUR=20s         duration of the cCONN issue and validation runs (baseline: 20s)
#   SHORT_DUR=10s   duration of issue c1 and GET /v3 for onestack (the baseline bench fixes 10s)
#   CONN=8          connections of the concurrent runs
#   DRAIN_S=6       pause after every wrk run (baseline: 6), passed to the Keystone bench too
#   CLI_RUNS=10     hyperfine runs of `openstack token issue` for onestack (baseline fixes 10)
#   KEYSTONE_VARIANTS="nocache cache-memory"   Keystone variants to run; "none" skips Keystone
#   KEYSTONE_EXTRA=1   also measure Keystone's application_credential and token-method issue
#   ONESTACK=1      0 skips onestack (Keystone only)
#   BASELINE_SRC=../shared/baseline  the read-only baseline; BASELINE_DIR: a writable copy
#                   (default: /tmp/baseline when it holds an installed keystone, else a copy
#                   made under the results folder)
#   ONESTACK_PORT=5100  KEYSTONE_PORT=5000
#   RESULTS_DIR=bench/results/<stamp>   OUT_MD=docs/benchmarks.md
#   OPENSTACK_CLI=.venv/bin/openstack (falls back to the baseline keystone venv's CLI)
# Any ONESTACK_* variable (e.g. ONESTACK_LOG__LEVEL=warn) reaches the onestack server.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
RUNS="${RUNS:-3}"; COLD_RUNS="${COLD_RUNS:-5}"; DUR="${DUR:-20s}"; SHORT_DUR="${SHORT_DUR:-10s}"
CONN="${CONN:-8}"; DRAIN_S="${DRAIN_S:-6}"; CLI_RUNS="${CLI_RUNS:-10}"
KEYSTONE_VARIANTS="${KEYSTONE_VARIANTS:-nocache cache-memory}"; KEYSTONE_EXTRA="${KEYSTONE_EXTRA:-1}"
ONESTACK="${ONESTACK:-1}"
ONESTACK_PORT="${ONESTACK_PORT:-5100}"; KEYSTONE_PORT="${KEYSTONE_PORT:-5000}"
STAMP="$(date +%Y%m%dT%H%M%S)"
RESULTS_DIR="${RESULTS_DIR:-$BENCH/results/identity-$STAMP}"
OUT_MD="${OUT_MD:-$ROOT/docs/benchmarks.md}"
BIN="$ROOT/target/release/onestack"
KS_ADMIN_PASSWORD="${ADMIN_PASSWORD:-baseline-admin-pw}"; unset ADMIN_PASSWORD PATH_PREFIX  # the baseline's
export ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS="${ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS:-12}"  # as Keystone

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench/identity.sh: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---------------------------------------------------------------- prerequisites
BASELINE_SRC="${BASELINE_SRC:-$ROOT/../shared/baseline}"
[ -f "$BASELINE_SRC/keystone/bench.sh" ] && [ -x "$BASELINE_SRC/tools/procmem.py" ] || die \
  "the Keystone baseline is missing: expected $BASELINE_SRC (keystone/bench.sh, tools/procmem.py).
  It lives in ../shared/baseline beside the repository; set BASELINE_SRC=/path/to/baseline."
BASELINE_SRC="$(cd "$BASELINE_SRC" && pwd)"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; }
fi
if [ "$ONESTACK" = 1 ] && [ ! -x "$BIN" ]; then
  log "target/release/onestack missing: cargo build --release -p onestack"
  (cd "$ROOT" && cargo build --release -p onestack)
fi

mkdir -p "$RESULTS_DIR"
RESULTS_DIR="$(cd "$RESULTS_DIR" && pwd)"

# A writable copy of the baseline (its scripts write venvs, databases and keys beside themselves).
if [ -z "${BASELINE_DIR:-}" ]; then
  if [ -x /tmp/baseline/keystone/.venv/bin/keystone-manage ] && [ -f /tmp/baseline/keystone/bench.sh ]; then
    BASELINE_DIR=/tmp/baseline
  else
    BASELINE_DIR="$RESULTS_DIR/baseline"
  fi
fi
if [ ! -f "$BASELINE_DIR/keystone/bench.sh" ]; then
  log "copying $BASELINE_SRC to $BASELINE_DIR"
  mkdir -p "$(dirname "$BASELINE_DIR")"
  cp -r "$BASELINE_SRC" "$BASELINE_DIR"
fi
chmod -R u+w "$BASELINE_DIR" 2>/dev/null || true
BL="$(cd "$BASELINE_DIR" && pwd)"
PROCMEM="$BL/tools/procmem.py"; WRKPARSE="$BL/tools/wrkparse.py"

OPENSTACK_CLI="${OPENSTACK_CLI:-$ROOT/.venv/bin/openstack}"
if [ ! -x "$OPENSTACK_CLI" ]; then
  if [ -x "$BL/keystone/.venv/bin/openstack" ]; then
    OPENSTACK_CLI="$BL/keystone/.venv/bin/openstack"
  else
    OPENSTACK_CLI=""   # set up with: python3 -m venv .venv && .venv/bin/pip install -r tests/e2e/requirements.txt
  fi
fi

# ---------------------------------------------------------------- cleanup
OS_PID=""; OS_DATA=""; OS_BIN_COPY=""; KS_STARTED=0
stop_onestack() {
  [ -n "$OS_PID" ] || return 0
  kill -TERM "$OS_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$OS_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$OS_PID" 2>/dev/null || true
  wait "$OS_PID" 2>/dev/null || true
  OS_PID=""
}
cleanup() {
  stop_onestack
  [ "$KS_STARTED" = 1 ] && "$BL/keystone/stop.sh" || true
  if [ -n "$OS_DATA" ]; then rm -rf "$OS_DATA"; fi
  if [ -n "${OS_BIN_COPY:-}" ]; then rm -f "$OS_BIN_COPY"; fi
  return 0
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- meta (machine, command)
META="$RESULTS_DIR/meta.tsv"
{
  printf 'date\t%s\n' "$(date -u +'%Y-%m-%d %H:%M UTC')"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
  printf 'mem\t%s\n' "$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  printf 'kernel\t%s\n' "$(uname -sr)"
  printf 'os\t%s\n' "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}")"
  printf 'load_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  printf 'hyperfine\t%s\n' "$(hyperfine --version | awk '{print $2}')"
  printf 'settings\tRUNS=%s COLD_RUNS=%s DUR=%s SHORT_DUR=%s CONN=%s DRAIN_S=%s CLI_RUNS=%s KEYSTONE_VARIANTS="%s" KEYSTONE_EXTRA=%s\n' \
    "$RUNS" "$COLD_RUNS" "$DUR" "$SHORT_DUR" "$CONN" "$DRAIN_S" "$CLI_RUNS" "$KEYSTONE_VARIANTS" "$KEYSTONE_EXTRA"
  printf 'onestack_env\t%s\n' "$(env | grep '^ONESTACK_' | grep -v -e '^ONESTACK_PORT=' -e '^ONESTACK=' | sort | tr '\n' ' ')"
  printf 'ports\t%s %s\n' "$ONESTACK_PORT" "$KEYSTONE_PORT"
  printf 'git\t%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
  if [ -x "$BIN" ]; then printf 'onestack\t%s\n' "$("$BIN" --version)"; fi
  if [ -n "$OPENSTACK_CLI" ]; then printf 'cli\t%s\n' "$("$OPENSTACK_CLI" --version 2>&1 | tail -1)"; fi
} > "$META"

# ---------------------------------------------------------------- shared helpers
# tsv_mem TSV NAME RUN PID -> NAME.procs / NAME.rss_mib / NAME.pss_mib (as baseline bench.sh)
tsv_mem() {
  "$PROCMEM" "$4" | tr ' =' '\n ' | while read -r k v; do
    [ -n "$k" ] && printf '%s.%s\t%s\t%s\n' "$2" "$k" "$3" "$v"; done >> "$1"
}
# wrk_to OUTDIR TSV BASEURL NAME RUN CONNS DURATION SCRIPT (the baseline's wrk_run)
wrk_to() {
  wrk -t"$(( $6 < 2 ? 1 : 2 ))" -c"$6" -d"$7" --timeout 30s --latency -s "$BENCH/wrk/$8" "$3" > "$1/$4-run$5.txt"
  "$WRKPARSE" "$1/$4-run$5.txt" "$4" "$5" >> "$2"
  sleep "$DRAIN_S"
}
# issue_token URL_V3 PASSWORD -> project-scoped token id (password method)
issue_token() {
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$2\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
    "$1/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r'
}
# make_appcred URL_V3 TOKEN NAME -> "ID SECRET" of a new application credential of the token's
# user, its secret generated by the server (as `openstack application credential create` does)
make_appcred() {
  local uid
  uid="$(curl -sf -H "X-Auth-Token: $2" -H "X-Subject-Token: $2" "$1/auth/tokens" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"]["user"]["id"])')"
  curl -sf -H "X-Auth-Token: $2" -H 'Content-Type: application/json' \
    -d "{\"application_credential\":{\"name\":\"$3\"}}" \
    "$1/users/$uid/application_credentials" |
    python3 -c 'import json,sys; a = json.load(sys.stdin)["application_credential"]; print(a["id"], a["secret"])'
}
# check_issue URL_V3 BODY_JSON -> dies unless POST /auth/tokens answers 201
check_201() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$2" "$1/auth/tokens")"
  [ "$code" = 201 ] || die "POST $1/auth/tokens answered $code for $2"
}

# ---------------------------------------------------------------- onestack
bench_onestack() {
  local out="$RESULTS_DIR/onestack" tsv url v3 pw
  mkdir -p "$out"; tsv="$out/results.tsv"; : > "$tsv"
  url="http://127.0.0.1:$ONESTACK_PORT"; v3="$url/identity/v3"
  OS_DATA="$(mktemp -d /tmp/onestack-bench-data.XXXXXX)"
  curl -s -o /dev/null --max-time 1 "$url/" && die "something already listens on 127.0.0.1:$ONESTACK_PORT (set ONESTACK_PORT)"

  # Run a private copy: target/release/onestack may be relinked by a build during the bench.
  OS_BIN_COPY="$out/onestack.bin"; cp "$BIN" "$OS_BIN_COPY"
  start_onestack() {
    nohup "$OS_BIN_COPY" up --data-dir "$OS_DATA" --listen "127.0.0.1:$ONESTACK_PORT" >> "$out/onestack.log" 2>&1 &
    OS_PID=$!
  }
  wait_up() {  # the baseline's loop: until GET answers 200, every 20 ms
    local n=0
    until curl -sf --max-time 2 -o /dev/null "$v3"; do
      kill -0 "$OS_PID" 2>/dev/null || die "onestack exited; see $out/onestack.log"
      n=$((n + 1)); [ "$n" -lt 3000 ] || die "onestack did not answer GET $v3 within 60 s"
      sleep 0.02
    done
  }

  uptime > "$out/uptime-start.txt"
  log "onestack: first start (bootstrap) in $OS_DATA, port $ONESTACK_PORT"
  start_onestack; wait_up
  pw="$(tr -d '\n' < "$OS_DATA/admin-password")"
  python3 - "$OS_DATA/onestack.db" <<'PY' || die "the admin password hash is not bcrypt cost 12"
import sqlite3, sys
h = sqlite3.connect(sys.argv[1]).execute("select password_hash from users where name='admin'").fetchone()[0]
sys.exit(0 if h.startswith(("$2b$12$", "$2a$12$", "$2y$12$")) else 1)
PY
  stop_onestack; sleep 1

  # (a) cold start on the existing data dir until GET /identity/v3 answers 200, (b) idle memory 5 s later
  for r in $(seq 1 "$COLD_RUNS"); do
    local t0; t0=$(now_ms); start_onestack
    wait_up
    printf 'cold_start_ms\t%s\t%s\n' "$r" $(( $(now_ms) - t0 )) >> "$tsv"
    sleep 5; tsv_mem "$tsv" mem_idle "$r" "$OS_PID"
    stop_onestack; sleep 1
  done
  log "onestack: cold start $(awk -F'\t' '$1=="cold_start_ms"{printf "%s ms ", $3}' "$tsv")"

  export PATH_PREFIX=/identity   # the wrk scripts' path prefix; ADMIN_PASSWORD is passed per call
  for r in $(seq 1 "$RUNS"); do
    start_onestack; wait_up
    for _ in 1 2 3 4; do issue_token "$v3" "$pw" > /dev/null; done   # same warm-up as the baseline
    log "onestack run $r/$RUNS: issue c1"
    ADMIN_PASSWORD="$pw" wrk_to "$out" "$tsv" "$url" issue_c1 "$r" 1 "$SHORT_DUR" issue.lua
    log "onestack run $r/$RUNS: issue c$CONN"
    ADMIN_PASSWORD="$pw" wrk_to "$out" "$tsv" "$url" "issue_c$CONN" "$r" "$CONN" "$DUR" issue.lua
    log "onestack run $r/$RUNS: validate c$CONN"
    AUTH_TOKEN=$(issue_token "$v3" "$pw") SUBJECT_TOKEN=$(issue_token "$v3" "$pw") \
      wrk_to "$out" "$tsv" "$url" "validate_c$CONN" "$r" "$CONN" "$DUR" validate.lua
    log "onestack run $r/$RUNS: version c$CONN"
    wrk_to "$out" "$tsv" "$url" "version_c$CONN" "$r" "$CONN" "$SHORT_DUR" version.lua
    log "onestack run $r/$RUNS: application_credential issue c$CONN"
    local tok acid acsecret
    tok="$(issue_token "$v3" "$pw")"
    read -r acid acsecret <<< "$(make_appcred "$v3" "$tok" "bench-$r-$$")"
    check_201 "$v3" "{\"auth\":{\"identity\":{\"methods\":[\"application_credential\"],\"application_credential\":{\"id\":\"$acid\",\"secret\":\"$acsecret\"}}}}"
    APPCRED_ID="$acid" APPCRED_SECRET="$acsecret" \
      wrk_to "$out" "$tsv" "$url" "appcred_c$CONN" "$r" "$CONN" "$DUR" issue_appcred.lua
    log "onestack run $r/$RUNS: token-method issue c$CONN"
    AUTH_TOKEN="$tok" wrk_to "$out" "$tsv" "$url" "tokenauth_c$CONN" "$r" "$CONN" "$DUR" issue_token.lua
    tsv_mem "$tsv" mem_after_load "$r" "$OS_PID"
    stop_onestack; sleep 1
  done

  # `openstack token issue` wall time end to end, and the CLI's own floor
  if [ -n "$OPENSTACK_CLI" ]; then
    log "onestack: hyperfine openstack token issue"
    start_onestack; wait_up
    ( export OS_AUTH_URL="$v3" OS_IDENTITY_API_VERSION=3 OS_USERNAME=admin OS_PASSWORD="$pw" \
        OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
      "$OPENSTACK_CLI" token issue -f value -c id > /dev/null || die "openstack token issue failed against onestack"
      hyperfine -N --warmup 1 --runs "$CLI_RUNS" --export-json "$out/cli.json" \
        "$OPENSTACK_CLI token issue -f value -c id" "$OPENSTACK_CLI --version" > "$out/cli.txt" 2>&1 )
    cli_tsv "$out/cli.json" >> "$tsv"
    stop_onestack
  else
    log "no openstack CLI (.venv/bin/openstack): skipping the CLI measure"
  fi
  unset PATH_PREFIX
  uptime > "$out/uptime-end.txt"
  rm -rf "$OS_DATA"; OS_DATA=""; rm -f "$OS_BIN_COPY"; OS_BIN_COPY=""
}

cli_tsv() {
  python3 - "$1" <<'PY'
import json, sys
for i, r in enumerate(json.load(open(sys.argv[1]))["results"]):
    name = ["cli_token_issue_ms", "cli_version_ms"][i]
    for j, t in enumerate(r["times"]):
        print(f"{name}\t{j+1}\t{t*1000:.1f}")
PY
}

# ---------------------------------------------------------------- Keystone (the baseline's own bench)
bench_keystone() {  # bench_keystone VARIANT (nocache | cache-memory)
  local variant="$1" cache out before raw url v3 ks="$BL/keystone"
  case "$variant" in nocache) cache=none ;; cache-memory) cache=memory ;; *) die "unknown Keystone variant $variant" ;; esac
  out="$RESULTS_DIR/keystone-$variant"; url="http://127.0.0.1:$KEYSTONE_PORT"; v3="$url/v3"
  curl -s -o /dev/null --max-time 1 "$url/" && die "something already listens on 127.0.0.1:$KEYSTONE_PORT (set KEYSTONE_PORT)"
  log "keystone $variant: setup.sh (CACHE=$cache) in $ks"
  KS_STARTED=1
  ADMIN_PASSWORD="$KS_ADMIN_PASSWORD" CACHE="$cache" PORT="$KEYSTONE_PORT" "$ks/setup.sh" > "$RESULTS_DIR/keystone-$variant-setup.txt" 2>&1 ||
    die "keystone setup failed; see $RESULTS_DIR/keystone-$variant-setup.txt"
  before="$(ls -d "$BL"/results/raw/keystone-"$variant"-* 2>/dev/null || true)"
  log "keystone $variant: baseline bench.sh (RUNS=$RUNS COLD_RUNS=$COLD_RUNS DUR=$DUR CONN=$CONN)"
  ADMIN_PASSWORD="$KS_ADMIN_PASSWORD" RUNS="$RUNS" COLD_RUNS="$COLD_RUNS" DUR="$DUR" CONN="$CONN" DRAIN_S="$DRAIN_S" PORT="$KEYSTONE_PORT" \
    "$ks/bench.sh" > "$RESULTS_DIR/keystone-$variant-bench.txt" 2>&1 ||
    die "keystone bench.sh failed; see $RESULTS_DIR/keystone-$variant-bench.txt"
  raw="$(ls -td "$BL"/results/raw/keystone-"$variant"-* | head -1)"
  if printf '%s\n' "$before" | grep -qxF "$raw"; then die "keystone bench.sh left no new results folder"; fi
  rm -rf "$out"; cp -r "$raw" "$out"
  printf 'keystone_%s_raw\t%s\n' "${variant//-/_}" "$raw" >> "$META"
  printf 'keystone_version\t%s\n' "$(head -2 "$out/summary.txt" | tail -1)" >> "$META"

  if [ "$KEYSTONE_EXTRA" = 1 ]; then  # the two issue methods the baseline does not cover
    local tsv="$out/results.tsv" tok acid acsecret pw="$KS_ADMIN_PASSWORD"
    for r in $(seq 1 "$RUNS"); do
      WAIT=1 PORT="$KEYSTONE_PORT" "$ks/run.sh" > /dev/null
      for _ in 1 2 3 4; do issue_token "$v3" "$pw" > /dev/null; done
      tok="$(issue_token "$v3" "$pw")"
      read -r acid acsecret <<< "$(make_appcred "$v3" "$tok" "bench-$r-$$")"
      check_201 "$v3" "{\"auth\":{\"identity\":{\"methods\":[\"application_credential\"],\"application_credential\":{\"id\":\"$acid\",\"secret\":\"$acsecret\"}}}}"
      log "keystone $variant run $r/$RUNS: application_credential issue c$CONN"
      PATH_PREFIX="" APPCRED_ID="$acid" APPCRED_SECRET="$acsecret" \
        wrk_to "$out" "$tsv" "$url" "appcred_c$CONN" "$r" "$CONN" "$DUR" issue_appcred.lua
      log "keystone $variant run $r/$RUNS: token-method issue c$CONN"
      PATH_PREFIX="" AUTH_TOKEN="$tok" wrk_to "$out" "$tsv" "$url" "tokenauth_c$CONN" "$r" "$CONN" "$DUR" issue_token.lua
      "$ks/stop.sh"; sleep 1
    done
  fi
  KS_STARTED=0
}

# ---------------------------------------------------------------- run
log "results in $RESULTS_DIR (baseline copy: $BL)"
[ "$ONESTACK" = 1 ] && bench_onestack
for v in $KEYSTONE_VARIANTS; do
  [ "$v" = none ] && continue
  bench_keystone "$v"
done
printf 'load_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$META"

mkdir -p "$(dirname "$OUT_MD")"
python3 "$BENCH/summarize.py" "$RESULTS_DIR" > "$OUT_MD.tmp" && mv "$OUT_MD.tmp" "$OUT_MD"
ln -sfn "$(basename "$RESULTS_DIR")" "$(dirname "$RESULTS_DIR")/latest" 2>/dev/null || true
python3 "$BENCH/summarize.py" --text "$RESULTS_DIR"
log "wrote $OUT_MD"
