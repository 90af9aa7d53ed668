# Sourced by the benches that run a controller and a host joined from a network namespace
# (bench/hosts_network.sh, bench/live_migration.sh), as the tests do: an underlay veth
# (10.252.250.1 here, 10.252.250.2 in the namespace $NS), and `start_controller` to run
# `onestack up` on it. Needs ROOT, BIN, PORT, WORK and a `bench_cleanup` function; removes
# what the controller's agent built when the bench ends.
NS="bench-host2-$$"
NEAR="bnn$$"
SERVER=""
two_hosts_cleanup() {
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  [ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$NEAR" 2>/dev/null || true
  bench_cleanup   # the bench's own
  if [ -f "$WORK/controller/cloud-id" ]; then
    id="$(cat "$WORK/controller/cloud-id")"
    # What the controller's agent built and had no time to remove (a failed run).
    for ns in $(ip netns list | awk '{print $1}' | grep -E '^os(dhcp|rtr)-' || true); do
      if ip netns exec "$ns" ip -d link show lo | grep -q "onestack:$id:"; then
        for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns"
      fi
    done
    for dev in $(ip -d link show | awk -v id="onestack:$id:" '/^[0-9]+:/ {name=$2} $0 ~ "alias " id {sub(/@.*/, "", name); sub(/:$/, "", name); print name}'); do
      ip link del "$dev" 2>/dev/null || true
    done
    nft delete table bridge "onestack_${id:0:16}" 2>/dev/null || true
    nft delete table inet "onestack_${id:0:16}" 2>/dev/null || true
    rm -rf "/run/onestack/$id"
  fi
  rm -rf "$WORK"
}
trap two_hosts_cleanup EXIT
ip link add "$NEAR" type veth peer name "bnf$$"
ip netns add "$NS"
ip link set "bnf$$" netns "$NS"
ip addr add 10.252.250.1/30 dev "$NEAR"
ip link set "$NEAR" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add 10.252.250.2/30 dev "bnf$$"
ip netns exec "$NS" ip link set "bnf$$" up

# Starts the controller with its network agent on the underlay (extra settings as
# NAME=VALUE arguments), waits for it, and sources its admin-openrc; DATA is its directory.
start_controller() {
  DATA="$WORK/controller"
  env ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS=4 ONESTACK_NETWORK__AGENT=true \
    ONESTACK_NETWORK__HOST="bench-ctl-$$" ONESTACK_NETWORK__LOCAL_IP=10.252.250.1 "$@" \
    "$BIN" up --data-dir "$DATA" --listen "10.252.250.1:$PORT" >"$WORK/controller.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 200); do [ -f "$DATA/admin-openrc" ] && break; sleep 0.1; done
  [ -f "$DATA/admin-openrc" ] || { cat "$WORK/controller.log"; exit 1; }
  # shellcheck disable=SC1091
  source "$DATA/admin-openrc"
}
