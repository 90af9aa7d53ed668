# Sourced by benchmarks: a PostgreSQL server of their own for one run (Debian's server, a
# Unix socket in a scratch directory, default durability settings, as a real controller's).
#   pg_start   initdb in a directory of its own under /tmp (the postgres user must reach it),
#              start the server, create database "onestack"; sets PG_URL
#   pg_stop    stops it and removes its directory
PG_DIR="" PG_PORT="${PG_PORT:-5499}"

pg_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -x "$bin/postgres" ] || { echo "no PostgreSQL server: scripts/install-deps.sh installs it" >&2; return 1; }
  echo "$bin"
}

# As root the server runs as the postgres user (it refuses root).
pg_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_start() {
  local bin
  bin="$(pg_bin)" || return 1
  PG_DIR="$(mktemp -d /tmp/onestack-bench-pg.XXXXXX)"
  chmod 755 "$PG_DIR"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DIR"
  pg_as "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=" start >/dev/null
  pg_as "$bin/psql" -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE onestack"
  PG_URL="postgres://postgres@localhost/onestack?host=$PG_DIR&port=$PG_PORT"
}

pg_stop() {
  [ -n "$PG_DIR" ] || return 0
  pg_as "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=""
}
