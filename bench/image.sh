#!/usr/bin/env bash
# Image benchmark: onestack's Image v2 API side by side with the real Glance 33.0.0, measured in
# the same run with the baseline's own methods (../shared/baseline: curl -T uploads, curl
# downloads to /dev/null, `dd conv=fdatasync` of the same file on the same disk, wrk on
# GET /v2/images, the cold-start loop, tools/procmem.py), then writes the "Image service"
# section of docs/benchmarks.md (between markers; the identity section is left alone).
#
# usage (from anywhere):
#   bench/image.sh                                        # full run (~20 min on 2 vCPU)
#   SIZE_MIB=256 RUNS=1 COLD_RUNS=1 DUR=3s DRAIN_S=2 GLANCE_LIST_IMAGES=1000 bench/image.sh   # quick
#
# Settings (env):
#   SIZE_MIB=2048   image size (random bytes, made once in the baseline's glance/data/)
#   RUNS=3          upload/download rounds and wrk rounds per server (Glance: its bench's RUNS)
#   COLD_RUNS=5     cold starts of onestack (each followed by the idle-memory sample 5 s later);
#                   passed to Glance's bench too
#   LIST_IMAGES=10000  images in onestack's store for the GET /v2/images?limit=25 runs
#   DUR=10s         duration of every wrk run (Glance's bench fixes 10s for its list run)
#   CONN=8          connections of the concurrent list runs
#   DRAIN_S=6       pause after every wrk run
#   SAMPLE_MS=50    RSS sampling period during uploads/downloads
#   GLANCE=1        0 skips Glance (onestack only); ONESTACK=1: 0 skips onestack
#   GLANCE_LIST_IMAGES=10000  also measure Glance's list with this many images in its store
#                   (rows cloned in glance.db from an image created through the API); 0 skips
#   BASELINE_SRC=../shared/baseline  the read-only baseline; BASELINE_DIR: a writable copy
#                   (default: /tmp/baseline when it holds an installed keystone, else a copy
#                   made under the results folder). Glance is installed into it if missing
#                   (glance/setup.sh: pip, needs network the first time).
#   ONESTACK_PORT=5200  (Keystone and Glance listen on the baseline's fixed 5000 and 9292: its
#                   glance/bench.sh passes its PORT on to keystone/run.sh, so neither can move)
#   RESULTS_DIR=bench/results/image-<stamp>   OUT_MD=docs/benchmarks.md
# Any ONESTACK_* variable (e.g. ONESTACK_LOG__LEVEL=warn) reaches the onestack server.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
SIZE_MIB="${SIZE_MIB:-2048}"; RUNS="${RUNS:-3}"; COLD_RUNS="${COLD_RUNS:-5}"
LIST_IMAGES="${LIST_IMAGES:-10000}"; DUR="${DUR:-10s}"; CONN="${CONN:-8}"; DRAIN_S="${DRAIN_S:-6}"
SAMPLE_MS="${SAMPLE_MS:-50}"; GLANCE="${GLANCE:-1}"; ONESTACK="${ONESTACK:-1}"
GLANCE_LIST_IMAGES="${GLANCE_LIST_IMAGES:-10000}"
ONESTACK_PORT="${ONESTACK_PORT:-5200}"; KEYSTONE_PORT=5000; GLANCE_PORT=9292
STAMP="$(date +%Y%m%dT%H%M%S)"
RESULTS_DIR="${RESULTS_DIR:-$BENCH/results/image-$STAMP}"
OUT_MD="${OUT_MD:-$ROOT/docs/benchmarks.md}"
BIN="$ROOT/target/release/onestack"
KS_ADMIN_PASSWORD="${ADMIN_PASSWORD:-baseline-admin-pw}"; unset ADMIN_PASSWORD PATH_PREFIX PORT  # the baseline's

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench/image.sh: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
mibps() { python3 -c "print(f'{$SIZE_MIB / $1:.1f}')"; }   # MiB/s from seconds (as glance/bench.sh)

# ---------------------------------------------------------------- prerequisites
BASELINE_SRC="${BASELINE_SRC:-$ROOT/../shared/baseline}"
[ -f "$BASELINE_SRC/glance/bench.sh" ] && [ -x "$BASELINE_SRC/tools/procmem.py" ] || die \
  "the Glance baseline is missing: expected $BASELINE_SRC (glance/bench.sh, tools/procmem.py).
  It lives in ../shared/baseline beside the repository; set BASELINE_SRC=/path/to/baseline."
BASELINE_SRC="$(cd "$BASELINE_SRC" && pwd)"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v bc >/dev/null || need+=(bc)
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
  if [ -x /tmp/baseline/keystone/.venv/bin/keystone-manage ] && [ -f /tmp/baseline/glance/bench.sh ]; then
    BASELINE_DIR=/tmp/baseline
  else
    BASELINE_DIR="$RESULTS_DIR/baseline"
  fi
fi
if [ ! -f "$BASELINE_DIR/glance/bench.sh" ]; then
  log "copying $BASELINE_SRC to $BASELINE_DIR"
  mkdir -p "$(dirname "$BASELINE_DIR")"
  cp -r "$BASELINE_SRC" "$BASELINE_DIR"
fi
chmod -R u+w "$BASELINE_DIR" 2>/dev/null || true
BL="$(cd "$BASELINE_DIR" && pwd)"
PROCMEM="$BL/tools/procmem.py"; WRKPARSE="$BL/tools/wrkparse.py"

# The image file: the one glance/bench.sh uses (it reuses it when present), so both servers
# receive the same bytes.
mkdir -p "$BL/glance/data"
IMG="$BL/glance/data/image-${SIZE_MIB}m.bin"
if [ ! -f "$IMG" ] || [ "$(stat -c %s "$IMG")" != $(( SIZE_MIB * 1048576 )) ]; then
  log "making $IMG ($SIZE_MIB MiB from /dev/urandom)"
  head -c "${SIZE_MIB}M" /dev/urandom > "$IMG.tmp" && mv "$IMG.tmp" "$IMG"
fi

# ---------------------------------------------------------------- cleanup
OS_PID=""; OS_DATA=""; OS_BIN_COPY=""; KS_STARTED=0; GL_STARTED=0; SAMPLER_PID=""
stop_onestack() {
  [ -n "$OS_PID" ] || return 0
  kill -TERM "$OS_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$OS_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$OS_PID" 2>/dev/null || true
  wait "$OS_PID" 2>/dev/null || true
  OS_PID=""
}
cleanup() {
  if [ -n "$SAMPLER_PID" ]; then kill -TERM "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
  stop_onestack
  [ "$GL_STARTED" = 1 ] && "$BL/glance/stop.sh" || true
  [ "$KS_STARTED" = 1 ] && "$BL/keystone/stop.sh" || true
  if [ -n "$OS_DATA" ]; then rm -rf "$OS_DATA"; fi
  if [ -n "${OS_BIN_COPY:-}" ]; then rm -f "$OS_BIN_COPY"; fi
  rm -f "$BL/glance/data/copy.bin"
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
  printf 'disk\t%s\n' "$(df -h --output=source,fstype,size "$BL/glance/data" | tail -1 | tr -s ' ')"
  printf 'load_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  printf 'curl\t%s\n' "$(curl --version | head -1 | awk '{print $2}')"
  printf 'settings\tSIZE_MIB=%s RUNS=%s COLD_RUNS=%s LIST_IMAGES=%s DUR=%s CONN=%s DRAIN_S=%s SAMPLE_MS=%s GLANCE_LIST_IMAGES=%s\n' \
    "$SIZE_MIB" "$RUNS" "$COLD_RUNS" "$LIST_IMAGES" "$DUR" "$CONN" "$DRAIN_S" "$SAMPLE_MS" "$GLANCE_LIST_IMAGES"
  printf 'onestack_env\t%s\n' "$(env | grep '^ONESTACK_' | grep -v -e '^ONESTACK_PORT=' -e '^ONESTACK=' | sort | tr '\n' ' ')"
  printf 'ports\t%s %s %s\n' "$ONESTACK_PORT" "$GLANCE_PORT" "$KEYSTONE_PORT"
  printf 'git\t%s\n' "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
  if [ -x "$BIN" ]; then printf 'onestack\t%s\n' "$("$BIN" --version)"; fi
} > "$META"

# ---------------------------------------------------------------- shared helpers
# tsv_mem TSV NAME RUN PID -> NAME.procs / NAME.rss_mib / NAME.pss_mib (as baseline bench.sh)
tsv_mem() {
  "$PROCMEM" "$4" | tr ' =' '\n ' | while read -r k v; do
    [ -n "$k" ] && printf '%s.%s\t%s\t%s\n' "$2" "$k" "$3" "$v"; done >> "$1"
}
rec() { printf '%s\t%s\t%s\n' "$2" "$3" "$4" >> "$1"; }   # rec TSV NAME RUN VALUE
# wrk_to OUTDIR TSV BASEURL NAME RUN CONNS (LIST_PATH / AUTH_TOKEN from the environment)
wrk_to() {
  wrk -t"$(( $6 < 2 ? 1 : 2 ))" -c"$6" -d"$DUR" --timeout 30s --latency -s "$BENCH/wrk/image_list.lua" "$3" > "$1/$4-run$5.txt"
  "$WRKPARSE" "$1/$4-run$5.txt" "$4" "$5" >> "$2"
  sleep "$DRAIN_S"
}
# issue_token URL_V3 PASSWORD -> project-scoped token id (password method)
issue_token() {
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$2\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
    "$1/auth/tokens" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r'
}
# call EXPECTED OUTFILE curl-args... : one API request, its response body in OUTFILE (headers in
# $RESULTS_DIR/last-response.headers); dies with the exact request and response unless the
# status is EXPECTED. Sets CALL_CODE and CALL_TIME (curl's time_total, seconds).
CALL_CODE=""; CALL_TIME=""
call() {
  local want="$1" body="$2" hdr="$RESULTS_DIR/last-response.headers" res; shift 2
  res="$(curl -s -D "$hdr" -o "$body" -w '%{http_code} %{time_total}' "$@")" || true
  CALL_CODE="${res%% *}"; CALL_TIME="${res##* }"
  if [ "$CALL_CODE" != "$want" ]; then
    {
      echo "request failed (expected $want, got ${CALL_CODE:-no answer}):"
      printf '  curl'; for a in "$@"; do
        case "$a" in X-Auth-Token:*) printf " 'X-Auth-Token: <token>'" ;; *) printf " '%s'" "$a" ;; esac; done; echo
      echo "response headers:"; sed 's/^/  /' "$hdr" 2>/dev/null | tr -d '\r'
      if [ "$body" != /dev/null ]; then
        echo "response body (first 2000 bytes):"; head -c 2000 "$body" 2>/dev/null; echo
      fi
    } >&2
    exit 1
  fi
}
# sample_start PID OUTFILE / sample_stop: peak RSS of PID while a transfer runs
sample_start() {
  { echo 5 > "/proc/$1/clear_refs"; } 2>/dev/null || true   # reset VmHWM to the current RSS
  python3 "$BENCH/image/rss_peak.py" "$1" "$SAMPLE_MS" > "$2" &
  SAMPLER_PID=$!
  sleep 0.2
}
sample_stop() {
  kill -TERM "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
}
# rss_growth TSV NAME RUN BEFORE_KIB SAMPLEFILE -> NAME_rss_{before,peak,growth}_mib, NAME_rss_samples
rss_growth() {
  python3 - "$1" "$2" "$3" "$4" "$5" <<'PY'
import sys
tsv, name, run, before, path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
kv = dict(x.split("=") for x in open(path).read().split())
peak = max(int(kv["rss_max_kib"]), int(kv["hwm_kib"]))
with open(tsv, "a") as f:
    f.write(f"{name}_rss_before_mib\t{run}\t{before / 1024:.1f}\n")
    f.write(f"{name}_rss_peak_mib\t{run}\t{peak / 1024:.1f}\n")
    f.write(f"{name}_rss_growth_mib\t{run}\t{max(0, peak - before) / 1024:.1f}\n")
    f.write(f"{name}_rss_samples\t{run}\t{kv['samples']}\n")
PY
}
vmrss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# check_image JSONFILE SIZE SHA512 MD5: an uploaded image is active with the file's size and hashes
check_image() {
  python3 - "$@" <<'PY' || die "the stored image does not match the file: $1"
import json, sys
img = json.load(open(sys.argv[1]))
errs = []
if img.get("status") != "active": errs.append(f"status {img.get('status')!r}")
if img.get("size") != int(sys.argv[2]): errs.append(f"size {img.get('size')!r} != {sys.argv[2]}")
if img.get("os_hash_algo") != "sha512": errs.append(f"os_hash_algo {img.get('os_hash_algo')!r}")
if img.get("os_hash_value") != sys.argv[3]: errs.append("os_hash_value is not the file's sha512")
if img.get("checksum") != sys.argv[4]: errs.append(f"checksum {img.get('checksum')!r} is not the file's md5 {sys.argv[4]}")
if errs:
    sys.stderr.write("; ".join(errs) + "\n"); sys.exit(1)
PY
}
# dd_limit TSV DIR: the physical limit, measured exactly as glance/bench.sh does, on DIR's disk
dd_limit() {
  local r t0 t1 copy="$2/copy.bin"
  for r in $(seq 1 "$RUNS"); do
    rm -f "$copy"; sync
    t0=$(date +%s.%N); cp "$IMG" "$copy"; t1=$(date +%s.%N)
    rec "$1" cp_page_cache_mibps "$r" "$(mibps "$(echo "$t1 - $t0" | bc)")"
    rm -f "$copy"; sync
    t0=$(date +%s.%N); dd if="$IMG" of="$copy" bs=4M conv=fdatasync status=none; t1=$(date +%s.%N)
    rec "$1" dd_fdatasync_mibps "$r" "$(mibps "$(echo "$t1 - $t0" | bc)")"
    t0=$(date +%s.%N); dd if="$IMG" of=/dev/null bs=4M status=none; t1=$(date +%s.%N)
    rec "$1" read_page_cache_mibps "$r" "$(mibps "$(echo "$t1 - $t0" | bc)")"
    rm -f "$copy"
  done
}

log "results in $RESULTS_DIR (baseline copy: $BL, image $IMG)"
log "hashing the image file (sha512, md5)"
IMG_SHA512="$(sha512sum "$IMG" | cut -d' ' -f1)"; IMG_MD5="$(md5sum "$IMG" | cut -d' ' -f1)"
IMG_BYTES=$(( SIZE_MIB * 1048576 ))

# ---------------------------------------------------------------- onestack
bench_onestack() {
  local out="$RESULTS_DIR/onestack" tsv url v3 api pw tok r id before
  mkdir -p "$out"; tsv="$out/results.tsv"; : > "$tsv"
  url="http://127.0.0.1:$ONESTACK_PORT"; v3="$url/identity/v3"; api="$url/image"
  OS_DATA="$(mktemp -d /tmp/onestack-bench-image.XXXXXX)"
  curl -s -o /dev/null --max-time 1 "$url/" && die "something already listens on 127.0.0.1:$ONESTACK_PORT (set ONESTACK_PORT)"

  # Run a private copy: target/release/onestack may be relinked by a build during the bench.
  OS_BIN_COPY="$out/onestack.bin"; cp "$BIN" "$OS_BIN_COPY"
  start_onestack() {
    nohup "$OS_BIN_COPY" up --data-dir "$OS_DATA" --listen "127.0.0.1:$ONESTACK_PORT" >> "$out/onestack.log" 2>&1 &
    OS_PID=$!
  }
  wait_up() {  # as glance/bench.sh: until GET /image/ answers 300 (the version list), every 20 ms
    local n=0
    until [ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$api/")" = 300 ]; do
      kill -0 "$OS_PID" 2>/dev/null || die "onestack exited; see $out/onestack.log"
      n=$((n + 1)); [ "$n" -lt 3000 ] || die "onestack did not answer GET $api/ with 300 within 60 s"
      sleep 0.02
    done
  }

  uptime > "$out/uptime-start.txt"
  log "onestack: first start (bootstrap) in $OS_DATA, port $ONESTACK_PORT"
  start_onestack; wait_up
  pw="$(tr -d '\n' < "$OS_DATA/admin-password")"
  stop_onestack; sleep 1

  # (a) cold start on the existing data dir until GET /image/ answers 300, (b) idle memory 5 s later
  for r in $(seq 1 "$COLD_RUNS"); do
    local t0; t0=$(now_ms); start_onestack
    wait_up
    rec "$tsv" cold_start_ms "$r" $(( $(now_ms) - t0 ))
    sleep 5; tsv_mem "$tsv" mem_idle "$r" "$OS_PID"
    stop_onestack; sleep 1
  done
  log "onestack: cold start $(awk -F'\t' '$1=="cold_start_ms"{printf "%s ms ", $3}' "$tsv")"

  # The physical limit on the disk of the data dir, right before onestack's uploads.
  log "onestack: cp / dd conv=fdatasync / dd read of the $SIZE_MIB MiB file in $OS_DATA ($RUNS runs)"
  dd_limit "$tsv" "$OS_DATA"
  log "onestack: dd conv=fdatasync $(awk -F'\t' '$1=="dd_fdatasync_mibps"{printf "%s MiB/s ", $3}' "$tsv")"

  start_onestack; wait_up
  tok="$(issue_token "$v3" "$pw")"; [ -n "$tok" ] || die "no token from POST $v3/auth/tokens"
  tsv_mem "$tsv" mem_before_transfer 1 "$OS_PID"
  for r in $(seq 1 "$RUNS"); do
    local t0; t0=$(now_ms)
    call 201 "$out/create-$r.json" -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' \
      -d "{\"name\":\"bench-$r\",\"disk_format\":\"raw\",\"container_format\":\"bare\"}" "$api/v2/images"
    rec "$tsv" image_create_ms "$r" $(( $(now_ms) - t0 ))
    id="$(json_field "$out/create-$r.json" id)"
    sync
    log "onestack run $r/$RUNS: upload $SIZE_MIB MiB (PUT $api/v2/images/$id/file)"
    before="$(vmrss_kib "$OS_PID")"; sample_start "$OS_PID" "$out/upload-rss-$r.txt"
    call 204 "$out/upload-$r.body" -X PUT -H "X-Auth-Token: $tok" \
      -H 'Content-Type: application/octet-stream' -T "$IMG" "$api/v2/images/$id/file"
    sample_stop; rss_growth "$tsv" upload "$r" "$before" "$out/upload-rss-$r.txt"
    rec "$tsv" upload_mibps "$r" "$(mibps "$CALL_TIME")"
    call 200 "$out/image-$r.json" -H "X-Auth-Token: $tok" "$api/v2/images/$id"
    check_image "$out/image-$r.json" "$IMG_BYTES" "$IMG_SHA512" "$IMG_MD5"
    log "onestack run $r/$RUNS: download (GET $api/v2/images/$id/file > /dev/null)"
    before="$(vmrss_kib "$OS_PID")"; sample_start "$OS_PID" "$out/download-rss-$r.txt"
    call 200 /dev/null -H "X-Auth-Token: $tok" "$api/v2/images/$id/file"
    sample_stop; rss_growth "$tsv" download "$r" "$before" "$out/download-rss-$r.txt"
    rec "$tsv" download_mibps "$r" "$(mibps "$CALL_TIME")"
    tsv_mem "$tsv" mem_after_transfer "$r" "$OS_PID"
    if [ "$r" = 1 ]; then   # the bytes served are the file's (untimed, once)
      [ "$(curl -sf -H "X-Auth-Token: $tok" "$api/v2/images/$id/file" | sha512sum | cut -d' ' -f1)" = "$IMG_SHA512" ] ||
        die "GET $api/v2/images/$id/file: the downloaded bytes are not the uploaded file (sha512 differs)"
    fi
    call 204 "$out/delete-$r.body" -X DELETE -H "X-Auth-Token: $tok" "$api/v2/images/$id"
  done
  log "onestack: upload $(awk -F'\t' '$1=="upload_mibps"{printf "%s ", $3}' "$tsv")MiB/s, download $(awk -F'\t' '$1=="download_mibps"{printf "%s ", $3}' "$tsv")MiB/s, RSS growth during upload $(awk -F'\t' '$1=="upload_rss_growth_mib"{printf "%s ", $3}' "$tsv")MiB"

  # GET /v2/images as glance/bench.sh measures it: 3 small images, CONN connections, no limit
  for i in 1 2 3; do
    call 201 "$out/small-$i.json" -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' \
      -d "{\"name\":\"small-$i\",\"disk_format\":\"raw\",\"container_format\":\"bare\"}" "$api/v2/images"
  done
  call 200 "$out/list-small.json" -H "X-Auth-Token: $tok" "$api/v2/images"
  rec "$tsv" list_small_images 1 "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["images"]))' "$out/list-small.json")"
  export AUTH_TOKEN="$tok"
  for r in $(seq 1 "$RUNS"); do
    log "onestack run $r/$RUNS: GET /image/v2/images c$CONN ($(awk -F'\t' '$1=="list_small_images"{print $3}' "$tsv") images)"
    LIST_PATH=/image/v2/images wrk_to "$out" "$tsv" "$url" "list_small_c$CONN" "$r" "$CONN"
  done

  # LIST_IMAGES images in the store, then GET /v2/images?limit=25 at 1 and CONN connections
  local have; have="$(awk -F'\t' '$1=="list_small_images"{print $3}' "$tsv")"
  log "onestack: creating $(( LIST_IMAGES - have )) images (POST $api/v2/images, 4 keep-alive connections)"
  python3 "$BENCH/image/make_images.py" "$api" "$tok" $(( LIST_IMAGES - have )) 4 list > "$out/create-many.txt" ||
    die "creating $LIST_IMAGES images failed (the request and response are above)"
  log "onestack: $(cat "$out/create-many.txt")"
  python3 - "$tsv" "$out/create-many.txt" <<'PY'
import sys
kv = dict(x.split("=") for x in open(sys.argv[2]).read().split())
open(sys.argv[1], "a").write(f"create_many_per_s\t1\t{kv['per_s']}\ncreate_many_s\t1\t{kv['seconds']}\n")
PY
  call 200 "$out/list-25.json" -H "X-Auth-Token: $tok" "$api/v2/images?limit=25"
  python3 - "$out/list-25.json" <<'PY' || die "GET $api/v2/images?limit=25: not a full first page with a next link (see $out/list-25.json)"
import json, sys
body = json.load(open(sys.argv[1]))
assert len(body["images"]) == 25 and body.get("next"), (len(body["images"]), body.get("next"))
PY
  tsv_mem "$tsv" mem_before_list 1 "$OS_PID"
  for r in $(seq 1 "$RUNS"); do
    log "onestack run $r/$RUNS: GET /image/v2/images?limit=25, $LIST_IMAGES images, c1 and c$CONN"
    LIST_PATH='/image/v2/images?limit=25' wrk_to "$out" "$tsv" "$url" list_c1 "$r" 1
    LIST_PATH='/image/v2/images?limit=25' wrk_to "$out" "$tsv" "$url" "list_c$CONN" "$r" "$CONN"
  done
  unset AUTH_TOKEN
  tsv_mem "$tsv" mem_after_load 1 "$OS_PID"
  stop_onestack
  uptime > "$out/uptime-end.txt"
  rm -rf "$OS_DATA"; OS_DATA=""; rm -f "$OS_BIN_COPY"; OS_BIN_COPY=""
}

# ---------------------------------------------------------------- Glance (the baseline's own bench)
bench_glance() {
  local gl="$BL/glance" ks="$BL/keystone" out="$RESULTS_DIR/glance" before raw url
  url="http://127.0.0.1:$GLANCE_PORT"
  curl -s -o /dev/null --max-time 1 "$url/" && die "something already listens on 127.0.0.1:$GLANCE_PORT (Glance's port)"
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$KEYSTONE_PORT/" && die "something already listens on 127.0.0.1:$KEYSTONE_PORT (Keystone's port)"
  # The README's step by step: a fresh keystone (its setup resets keystone.db, so the glance
  # user and endpoint are registered again), keystone running, glance/setup.sh, keystone stopped.
  log "glance: keystone/setup.sh + run.sh, glance/setup.sh (installs glance into $gl/.venv if missing)"
  KS_STARTED=1
  ADMIN_PASSWORD="$KS_ADMIN_PASSWORD" PORT="$KEYSTONE_PORT" "$ks/setup.sh" > "$RESULTS_DIR/keystone-setup.txt" 2>&1 ||
    die "keystone setup failed; see $RESULTS_DIR/keystone-setup.txt"
  PORT="$KEYSTONE_PORT" "$ks/run.sh" > /dev/null
  ADMIN_PASSWORD="$KS_ADMIN_PASSWORD" PORT="$GLANCE_PORT" KEYSTONE_PORT="$KEYSTONE_PORT" "$gl/setup.sh" > "$RESULTS_DIR/glance-setup.txt" 2>&1 ||
    die "glance setup failed; see $RESULTS_DIR/glance-setup.txt"
  "$ks/stop.sh"

  before="$(ls -d "$BL"/results/raw/glance-* 2>/dev/null || true)"
  log "glance: baseline glance/bench.sh (SIZE_MIB=$SIZE_MIB RUNS=$RUNS COLD_RUNS=$COLD_RUNS CONN=$CONN)"
  GL_STARTED=1
  ADMIN_PASSWORD="$KS_ADMIN_PASSWORD" SIZE_MIB="$SIZE_MIB" RUNS="$RUNS" COLD_RUNS="$COLD_RUNS" CONN="$CONN" \
    "$gl/bench.sh" > "$RESULTS_DIR/glance-bench.txt" 2>&1 ||
    die "glance bench.sh failed; see $RESULTS_DIR/glance-bench.txt"
  raw="$(ls -td "$BL"/results/raw/glance-* | head -1)"
  if printf '%s\n' "$before" | grep -qxF "$raw"; then die "glance bench.sh left no new results folder"; fi
  rm -rf "$out"; cp -r "$raw" "$out"
  printf 'glance_raw\t%s\n' "$raw" >> "$META"
  printf 'glance_version\t%s\n' "$(head -1 "$out/summary.txt")" >> "$META"
  printf 'glance_list_images\t%s\n' "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from images where deleted=0").fetchone()[0])' "$gl/glance.db")" >> "$META"
  log "glance: upload $(awk -F'\t' '$1=="upload_mibps"{printf "%s ", $3}' "$out/results.tsv")MiB/s, download $(awk -F'\t' '$1=="download_mibps"{printf "%s ", $3}' "$out/results.tsv")MiB/s, list c$CONN $(awk -F'\t' '$1=="image_list_c'"$CONN"'.rps"{printf "%s ", $3}' "$out/results.tsv")req/s"

  [ "$GLANCE_LIST_IMAGES" -gt 0 ] || { GL_STARTED=0; KS_STARTED=0; return 0; }
  # The same list, with GLANCE_LIST_IMAGES images in the store (rows cloned in glance.db from
  # one image created through the API; creating them through Glance would take ~15-40 min).
  local lo="$RESULTS_DIR/glance-list" tsv tok tmpl have r
  mkdir -p "$lo"; tsv="$lo/results.tsv"; : > "$tsv"
  PORT="$KEYSTONE_PORT" "$ks/run.sh" > /dev/null
  PORT="$GLANCE_PORT" WAIT=1 "$gl/run.sh" > /dev/null
  tok="$(issue_token "http://127.0.0.1:$KEYSTONE_PORT/v3" "$KS_ADMIN_PASSWORD")"; [ -n "$tok" ] || die "no token from keystone"
  call 201 "$lo/template.json" -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' \
    -d '{"name":"list-template","disk_format":"raw","container_format":"bare"}' "$url/v2/images"
  tmpl="$(json_field "$lo/template.json" id)"
  "$gl/stop.sh"
  have="$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from images where deleted=0").fetchone()[0])' "$gl/glance.db")"
  log "glance: cloning $(( GLANCE_LIST_IMAGES - have )) image rows in glance.db (store: $have images)"
  python3 "$BENCH/image/glance_clone_images.py" "$gl/glance.db" "$tmpl" $(( GLANCE_LIST_IMAGES - have )) > "$lo/clone.txt"
  PORT="$GLANCE_PORT" WAIT=1 "$gl/run.sh" > /dev/null
  call 200 "$lo/list-25.json" -H "X-Auth-Token: $tok" "$url/v2/images?limit=25"
  python3 - "$lo/list-25.json" <<'PY' || die "Glance GET /v2/images?limit=25: not a full first page with a next link"
import json, sys
body = json.load(open(sys.argv[1]))
assert len(body["images"]) == 25 and body.get("next"), (len(body["images"]), body.get("next"))
PY
  printf 'glance_list_many_images\t%s\n' "$(sed 's/.*visible=//' "$lo/clone.txt")" >> "$META"
  for _ in 1 2 3 4; do curl -s -o /dev/null -H "X-Auth-Token: $tok" "$url/v2/images?limit=25"; done   # each worker's imports
  export AUTH_TOKEN="$tok"
  for r in $(seq 1 "$RUNS"); do
    log "glance run $r/$RUNS: GET /v2/images?limit=25, $GLANCE_LIST_IMAGES images, c1 and c$CONN"
    LIST_PATH='/v2/images?limit=25' wrk_to "$lo" "$tsv" "$url" list_c1 "$r" 1
    LIST_PATH='/v2/images?limit=25' wrk_to "$lo" "$tsv" "$url" "list_c$CONN" "$r" "$CONN"
  done
  unset AUTH_TOKEN
  tsv_mem "$tsv" mem_after_load 1 "$(cat "$gl/glance.pid")"
  "$gl/stop.sh"; "$ks/stop.sh"
  GL_STARTED=0; KS_STARTED=0
}

# ---------------------------------------------------------------- run
[ "$ONESTACK" = 1 ] && bench_onestack
[ "$GLANCE" = 1 ] && bench_glance
printf 'load_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$META"

mkdir -p "$(dirname "$OUT_MD")"
python3 "$BENCH/summarize_image.py" --update "$OUT_MD" "$RESULTS_DIR"
ln -sfn "$(basename "$RESULTS_DIR")" "$(dirname "$RESULTS_DIR")/image-latest" 2>/dev/null || true
python3 "$BENCH/summarize_image.py" --text "$RESULTS_DIR"
log "wrote the Image service section of $OUT_MD"
