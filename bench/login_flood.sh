#!/usr/bin/env bash
# Login under a flood of made-up users: starts a release onestack (bcrypt at its production
# cost) on a scratch data directory and runs bench/login_flood.py against it.
# usage: bench/login_flood.sh        (FLOODERS=64 SAMPLES=20 to change sizes)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/onestack"
PORT="${ONESTACK_PORT:-5310}"
[ -x "$BIN" ] || cargo build --release --locked -p onestack
DATA="$(mktemp -d)"
ONESTACK_LOG__LEVEL=warn ONESTACK_NETWORK__AGENT=false ONESTACK_COMPUTE__AGENT=false \
  "$BIN" up --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$DATA.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA" "$DATA.log"' EXIT
for _ in $(seq 300); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
source "$DATA/admin-openrc"
python3 "$ROOT/bench/login_flood.py"
