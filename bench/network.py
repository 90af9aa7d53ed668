#!/usr/bin/env python3
"""Network benchmark against a running onestack with its agent on (root).

Measures, through the Network v2.0 API:
  1. port create latency, sequential (p50/p90/p99 over N ports);
  2. 1,000 ports on one network created concurrently: wall time, failures, duplicate addresses;
  3. time from a security group rule API call to the rule being enforced, with 100 ports of
     the group bound to this host: nftables shows it, and a TCP connection between two
     namespace "guests" that the rule opens succeeds;
  4. nftables rule count with 50 and 100 ports in one group with a remote-group rule.
Prints one JSON document. Only sends traffic to addresses it created (10.253.0.0/16).
"""
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time

import osapi

HOST = os.environ.get("BENCH_HOST", "bench-host")
SEQUENTIAL = int(os.environ.get("SEQUENTIAL", "200"))
CONCURRENT = int(os.environ.get("CONCURRENT", "1000"))
WORKERS = int(os.environ.get("WORKERS", "32"))
# The cloud's own security-group tables (netdrv::owner::Owner::table_name).
TABLE = os.environ["BENCH_TABLE"]


TOKEN = osapi.token()


def call(method, path, body=None):
    return osapi.request(TOKEN, method, "/networking/v2.0" + path, body)


def create(collection, what, attrs):
    status, body = call("POST", "/" + collection, {what: attrs})
    if status != 201:
        raise SystemExit(f"{collection}: {status} {body}")
    return body[what]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def rule_count():
    total = 0
    for family in ("bridge", "inet"):
        out = sh("nft", "-j", "list", "table", family, TABLE, check=False).stdout
        if out:
            total += sum(1 for item in json.loads(out)["nftables"] if "rule" in item)
    return total


def wait_active(ports, timeout=60):
    deadline = time.time() + timeout
    for p in ports:
        while call("GET", "/ports/" + p["id"])[1]["port"]["status"] != "ACTIVE":
            if time.time() > deadline:
                raise SystemExit("ports did not become ACTIVE")
            time.sleep(0.05)


results = {}

# 1. Sequential port creates on a network with a /16 subnet (DHCP off: pure API + IPAM).
net = create("networks", "network", {"name": "bench-seq"})
create("subnets", "subnet", {"network_id": net["id"], "cidr": "10.253.0.0/16", "ip_version": 4, "enable_dhcp": False})
latencies = []
for i in range(SEQUENTIAL):
    t = time.perf_counter()
    create("ports", "port", {"network_id": net["id"], "name": f"s{i}"})
    latencies.append((time.perf_counter() - t) * 1000)
results["port_create_ms"] = {"n": SEQUENTIAL, "p50": round(pct(latencies, 50), 2),
                             "p90": round(pct(latencies, 90), 2), "p99": round(pct(latencies, 99), 2),
                             "mean": round(statistics.mean(latencies), 2)}

# 2. Concurrent creates on one network.
net2 = create("networks", "network", {"name": "bench-conc"})
create("subnets", "subnet", {"network_id": net2["id"], "cidr": "10.254.0.0/20", "ip_version": 4, "enable_dhcp": False})
t = time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
    replies = list(pool.map(lambda i: call("POST", "/ports", {"port": {"network_id": net2["id"], "name": f"c{i}"}}),
                            range(CONCURRENT)))
elapsed = time.perf_counter() - t
ips = [b["port"]["fixed_ips"][0]["ip_address"] for s, b in replies if s == 201]
results["concurrent_ports"] = {"n": CONCURRENT, "workers": WORKERS, "seconds": round(elapsed, 2),
                               "created": len(ips), "failed": CONCURRENT - len(ips),
                               "duplicate_addresses": len(ips) - len(set(ips)),
                               "ports_per_second": round(len(ips) / elapsed, 1)}

# 3 and 4. Ports of one group bound to this host (veth stand-ins), rule counts, rule latency.
group = create("security-groups", "security_group", {"name": "bench-sg"})
create("security-group-rules", "security_group_rule", {"security_group_id": group["id"], "direction": "ingress",
                                                       "remote_group_id": group["id"], "protocol": "icmp"})
net3 = create("networks", "network", {"name": "bench-bound"})
create("subnets", "subnet", {"network_id": net3["id"], "cidr": "10.253.0.0/22", "ip_version": 4, "enable_dhcp": False})
bound = []
counts = {}
for target in (50, 100):
    while len(bound) < target:
        bound.append(create("ports", "port", {"network_id": net3["id"], "security_groups": [group["id"]],
                                              "binding:host_id": HOST, "binding:profile": {"interface": "veth"}}))
    wait_active(bound)
    time.sleep(0.5)
    counts[str(target)] = rule_count()
results["nft_rules_by_ports"] = counts

# Two of the bound ports become guests; a listener on one, a client on the other.
pid = os.getpid()
guests = []
for n, port in enumerate(bound[:2]):
    ns = f"osbench-{pid}-{n}"
    dev = "osvp-" + port["id"][:10]
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "set", dev, "netns", ns)
    ex = ["ip", "netns", "exec", ns]
    sh(*ex, "ip", "link", "set", dev, "address", port["mac_address"])
    sh(*ex, "ip", "link", "set", dev, "up")
    sh(*ex, "ip", "addr", "add", port["fixed_ips"][0]["ip_address"] + "/22", "dev", dev)
    guests.append((ns, port["fixed_ips"][0]["ip_address"]))
listener = subprocess.Popen(["ip", "netns", "exec", guests[1][0], "busybox", "nc", "-ll", "-p", "7777", "-e", "/bin/echo", "hello"])
try:
    time.sleep(0.3)

    def connects():
        out = sh("ip", "netns", "exec", guests[0][0], "busybox", "nc", "-w", "1", guests[1][1], "7777", check=False)
        return "hello" in out.stdout

    assert not connects(), "port 7777 open before the rule"
    samples = []
    for round_ in range(5):
        t = time.perf_counter()
        rule = create("security-group-rules", "security_group_rule", {
            "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 7777, "port_range_max": 7777})
        api_ms = (time.perf_counter() - t) * 1000
        while "7777" not in sh("nft", "list", "table", "inet", TABLE).stdout:
            time.sleep(0.005)
        in_nft_ms = (time.perf_counter() - t) * 1000
        while not connects():
            time.sleep(0.01)
        enforced_ms = (time.perf_counter() - t) * 1000
        samples.append({"api_ms": round(api_ms, 1), "in_nftables_ms": round(in_nft_ms, 1),
                        "connection_ms": round(enforced_ms, 1)})
        call("DELETE", "/security-group-rules/" + rule["id"])
        while connects():
            time.sleep(0.05)
    results["rule_to_enforced_100_ports"] = samples
finally:
    listener.kill()
    for ns, _ in guests:
        sh("ip", "netns", "del", ns, check=False)

# Clean up through the API: the agent removes what it built.
for net_ in (net, net2, net3):
    status, body = call("GET", "/ports?network_id=" + net_["id"] + "&fields=id")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: call("DELETE", "/ports/" + p["id"]), body["ports"]))
    call("DELETE", "/networks/" + net_["id"])
call("DELETE", "/security-groups/" + group["id"])
json.dump(results, sys.stdout, indent=1)
print()
