#!/usr/bin/env bash
# Fuzzing from the OpenAPI documents: schemathesis (pinned in bench/requirements-fuzz.txt)
# reads each service's document from a running onestack (/{service}/openapi.json) and sends
# generated, malformed and boundary requests to every operation as the admin. Any 5xx or
# dropped connection fails the run; so does a panic in the server's log. The fake compute
# driver, the network agent off; no root needed.
#
# usage: bench/openapi-fuzz.sh                   (10 examples per operation: what `make test` runs)
#        EXAMPLES=200 bench/openapi-fuzz.sh      (the long run in docs/benchmarks.md)
#        SEED=<n> bench/openapi-fuzz.sh          (repeat a run: the seed is printed at the start)
# Results: bench/results/openapi-fuzz-<stamp>/{<service>.txt,server.log}.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/onestack}"
PORT="${ONESTACK_PORT:-5530}"
EXAMPLES="${EXAMPLES:-10}"
SEED="${SEED:-$RANDOM$RANDOM}"
VENV="$ROOT/.venv-fuzz"
STAMP="$(date +%Y%m%dT%H%M%S)"
RESULTS_DIR="${RESULTS_DIR:-$ROOT/bench/results/openapi-fuzz-$STAMP}"
URL="http://127.0.0.1:$PORT"

log() { printf '[openapi-fuzz %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --locked -p onestack)
if [ ! -x "$VENV/bin/schemathesis" ] || [ "$ROOT/bench/requirements-fuzz.txt" -nt "$VENV/bin/schemathesis" ]; then
  log "installing the pinned schemathesis into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$ROOT/bench/requirements-fuzz.txt"
  touch "$VENV/bin/schemathesis"
fi
mkdir -p "$RESULTS_DIR"
DATA="$(mktemp -d /tmp/onestack-openapi-fuzz.XXXXXX)"
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_COMPUTE__DRIVER=fake \
  ONESTACK_NETWORK__AGENT=false ONESTACK_NETWORK__HOST="openapi-fuzz-$$" ONESTACK_LOG__LEVEL=warn \
  "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$RESULTS_DIR/server.log" 2>&1 &
SERVER=$!
deadline=$((SECONDS + 60))
until curl -sf -o /dev/null "$URL/identity/v3"; do
  kill -0 "$SERVER" 2>/dev/null || { log "onestack exited at start; see $RESULTS_DIR/server.log"; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { log "onestack did not answer within 60 s"; exit 1; }
  sleep 0.1
done

# A fresh admin token for each service: the identity run may revoke the one it is given.
admin_token() {
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' "$URL/identity/v3/auth/tokens" -d "{
    \"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {
      \"name\": \"admin\", \"domain\": {\"name\": \"Default\"},
      \"password\": \"$(cat "$DATA/admin-password")\"}}},
    \"scope\": {\"project\": {\"name\": \"admin\", \"domain\": {\"name\": \"Default\"}}}}}" |
    awk 'tolower($1) == "x-subject-token:" {print $2}' | tr -d '\r'
}

log "seed $SEED, $EXAMPLES examples per operation"
failed=()
# Identity last: its operations may change the admin's own credentials.
for service in compute image networking volume identity; do
  token="$(admin_token)"
  [ -n "$token" ] || { log "cannot log in as admin before the $service run"; exit 1; }
  started=$SECONDS
  status=0
  # From the results directory: schemathesis keeps its cache in the working directory.
  (cd "$RESULTS_DIR" && SCHEMATHESIS_HOOKS=openapi_fuzz_hooks PYTHONPATH="$ROOT/bench" \
    timeout "${FUZZ_TIMEOUT:-1800}" "$VENV/bin/schemathesis" run "$URL/$service/openapi.json" \
      --url "$URL" -H "X-Auth-Token: $token" --checks not_a_server_error \
      --max-examples "$EXAMPLES" --seed "$SEED" --workers 2 --no-color \
      >"$RESULTS_DIR/$service.txt" 2>&1) || status=$?
  summary="$(grep -E '^ *[0-9]+ generated' "$RESULTS_DIR/$service.txt" | tail -1 | sed 's/^ *//')"
  log "$service: ${summary:-no summary} in $((SECONDS - started)) s"
  if [ "$status" -ne 0 ]; then
    failed+=("$service")
    sed -n '/^=* *\(FAILURES\|ERRORS\) *=*$/,/^=* *SUMMARY/p' "$RESULTS_DIR/$service.txt" | head -80 >&2
  fi
done
if ! kill -0 "$SERVER" 2>/dev/null; then
  log "onestack is no longer running; see $RESULTS_DIR/server.log"
  exit 1
fi
if grep -q "panicked" "$RESULTS_DIR/server.log"; then
  log "onestack panicked:"; grep -m5 "panicked" "$RESULTS_DIR/server.log" >&2
  exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
  log "FAIL: ${failed[*]} (seed $SEED; results in $RESULTS_DIR)"
  exit 1
fi
log "PASS: no 5xx, no dropped connection, no panic (seed $SEED; results in $RESULTS_DIR)"
