"""Many hosts at scale, on the fake driver (run by bench/hosts_scale.sh with the
controller's admin-openrc in the environment): HOSTS joined hosts, each an `onestack join`
process; the controller's own host disabled; SERVERS servers without ports booted AT_ONCE
at a time. Prints JSON: `POST /servers` latency (p50/p99/max), the time until all were
asked for and until all are ACTIVE, how the servers spread over the hosts, the time of the
full admin server list (`GET /servers/detail?all_tenants=1`, what `openstack server list
--all-projects --long` asks for; median of 5), and the resident memory (RSS) of the
controller and of the joined hosts."""
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osapi  # noqa: E402
from hosts import image_and_flavor  # noqa: E402  (the same environment)

BIN, DATA, WORK = os.environ["ONESTACK_BIN"], os.environ["ONESTACK_DATA"], os.environ["BENCH_WORK"]
HOSTS = int(os.environ.get("HOSTS", "50"))
SERVERS = int(os.environ.get("SERVERS", "1000"))
AT_ONCE = int(os.environ.get("AT_ONCE", "8"))
COMPUTE = "/compute/v2.1"
V253 = {"OpenStack-API-Version": "compute 2.53"}


def call(token, method, path, body=None, want=(200,), headers=None):
    status, reply = osapi.request(token, method, COMPUTE + path, body, headers=headers)
    if status not in want:
        raise SystemExit(f"{method} {path}: {status} {reply}")
    return reply


def services(token):
    return call(token, "GET", "/os-services", headers=V253)["services"]


def join_hosts(token):
    env = dict(os.environ, ONESTACK_COMPUTE__DRIVER="fake", ONESTACK_NETWORK__AGENT="false",
               ONESTACK_LOG__LEVEL="warn", ONESTACK_COMPUTE__VCPUS="24",
               ONESTACK_COMPUTE__MEMORY_MB="16384", ONESTACK_COMPUTE__DISK_GB="1000",
               ONESTACK_COMPUTE__RESERVED_HOST_MEMORY_MB="0",
               ONESTACK_COMPUTE__CPU_ALLOCATION_RATIO="1.0",
               ONESTACK_COMPUTE__RAM_ALLOCATION_RATIO="1.0",
               ONESTACK_COMPUTE__DISK_ALLOCATION_RATIO="1.0")
    env.pop("ONESTACK_DATABASE__URL", None)
    agents, names = [], [f"scale-{i:02}" for i in range(HOSTS)]
    for name in names:
        issued = subprocess.run([BIN, "join-token", "--data-dir", DATA], capture_output=True,
                                text=True, check=True).stdout.strip()
        agents.append(subprocess.Popen(
            [BIN, "join", osapi.URL, "--token", issued, "--name", name,
             "--data-dir", os.path.join(WORK, "host-" + name)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.perf_counter() + 60
    while sum(s["host"] in names and s["state"] == "up" for s in services(token)) < HOSTS:
        if time.perf_counter() > deadline:
            raise SystemExit(f"not all {HOSTS} hosts up after 60 s")
        for a in agents:
            if a.poll() is not None:
                raise SystemExit(f"an `onestack join` exited with {a.returncode}")
        time.sleep(0.2)
    return agents, names


def boot(token, i, image, flavor):
    body = {"server": {"name": f"s{i:04}", "imageRef": image, "flavorRef": flavor,
                       "networks": "none"}}
    asked = time.perf_counter()
    call(token, "POST", "/servers", body, want=(202,),
         headers={"OpenStack-API-Version": "compute 2.37"})
    return (time.perf_counter() - asked) * 1000


def all_servers(token):
    return call(token, "GET", "/servers/detail?all_tenants=1")["servers"]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    token = osapi.token()
    controller = services(token)[0]
    call(token, "PUT", f"/os-services/{controller['id']}", {"status": "disabled"},
         headers=V253)
    joined_at = time.perf_counter()
    agents, names = join_hosts(token)
    joined_in = time.perf_counter() - joined_at
    try:
        image, flavor = image_and_flavor(token, "bench-scale", 512)
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
            latencies = sorted(pool.map(lambda i: boot(token, i, image, flavor), range(SERVERS)))
        asked_all = time.perf_counter() - started
        deadline = time.perf_counter() + 600
        while True:
            servers = all_servers(token)
            if sum(s["status"] == "ACTIVE" for s in servers) == SERVERS:
                break
            if any(s["status"] == "ERROR" for s in servers) or time.perf_counter() > deadline:
                raise SystemExit("servers in ERROR, or not all ACTIVE after 600 s")
            time.sleep(0.2)
        all_active = time.perf_counter() - started
        lists = []
        for _ in range(5):
            listed = time.perf_counter()
            count = len(all_servers(token))
            lists.append((time.perf_counter() - listed) * 1000)
        per_host = Counter(s["OS-EXT-SRV-ATTR:host"] for s in servers)
        agent_rss = [rss_mb(a.pid) for a in agents]
        print(json.dumps({
            "database": os.environ.get("BENCH_DATABASE", "sqlite"),
            "hosts": HOSTS, "servers": SERVERS, "at_once": AT_ONCE,
            "all_hosts_up_s": round(joined_in, 2),
            "post_servers_ms": {"p50": round(latencies[len(latencies) // 2], 1),
                                "p99": round(latencies[len(latencies) * 99 // 100], 1),
                                "max": round(latencies[-1], 1)},
            "boots_per_s": round(SERVERS / asked_all, 1),
            "all_asked_s": round(asked_all, 2),
            "all_active_s": round(all_active, 2),
            "servers_per_host_min_max": [min(per_host.get(n, 0) for n in names),
                                         max(per_host.values())],
            "list_all_servers_ms_median": round(statistics.median(lists), 1),
            "listed": count,
            "controller_rss_mb": round(rss_mb(os.environ["BENCH_CONTROLLER_PID"]), 1),
            "joined_host_rss_mb_median": round(statistics.median(agent_rss), 1),
        }, indent=1))
    finally:
        for a in agents:
            a.terminate()
        for a in agents:
            a.wait()


if __name__ == "__main__":
    main()
