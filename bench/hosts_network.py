"""Networking across hosts (run by bench/hosts_network.sh, as root, with the controller's
admin-openrc in the environment). Over ROUNDS joins of a new host in the namespace BENCH_NS:
the time from starting `onestack join` until a port bound to that host (created right
after the start) is ACTIVE: the join, the host's first report, its network agent's first
pass over the agent protocol (bridge, VXLAN, the port's device, security groups) and its
status report. Then the ping round trip (50 at 20 ms intervals) between stand-in guests on
the two hosts, and between two on the controller; and once, TCP throughput (iperf3, 3 s)
between the guests on two hosts (VXLAN, with the security groups' rules on both bridges)
next to the bare underlay veth. Prints JSON."""
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osapi  # noqa: E402

BIN, DATA, WORK = os.environ["ONESTACK_BIN"], os.environ["ONESTACK_DATA"], os.environ["BENCH_WORK"]
NS, CONTROLLER = os.environ["BENCH_NS"], os.environ["BENCH_CONTROLLER"]
GUEST = os.environ["BENCH_GUEST_PREFIX"]
ROUNDS = int(os.environ.get("ROUNDS", "5"))
NET = "/networking/v2.0"


def api(token, method, path, body=None, want=(200, 201, 204)):
    status, reply = osapi.request(token, method, NET + path, body)
    if status not in want:
        raise SystemExit(f"{method} {path}: {status} {reply}")
    return reply


def port(token, network, group, host, name):
    return api(token, "POST", "/ports", {"port": {
        "network_id": network, "name": name, "security_groups": [group],
        "binding:host_id": host, "binding:profile": {"interface": "veth"}}})["port"]


def wait_active(token, port_id, started, agent=None):
    while api(token, "GET", f"/ports/{port_id}")["port"]["status"] != "ACTIVE":
        if time.perf_counter() - started > 60:
            raise SystemExit(f"port {port_id} not ACTIVE after 60 s")
        if agent is not None and agent.poll() is not None:
            raise SystemExit(f"onestack join exited with {agent.returncode}")
        time.sleep(0.01)
    return (time.perf_counter() - started) * 1000


def forget_host(token, name):
    status, body = osapi.request(token, "GET", "/compute/v2.1/os-services",
                                 headers={"OpenStack-API-Version": "compute 2.53"})
    for service in body.get("services", []):
        if service["host"] == name:
            status, reply = osapi.request(
                token, "DELETE", f"/compute/v2.1/os-services/{service['id']}",
                headers={"OpenStack-API-Version": "compute 2.53"})
            if status != 204:
                raise SystemExit(f"removing {name}: {status} {reply}")


def throughput(client_ns, server_ns, address):
    """iperf3's received bits per second from `client_ns` (None: here) to a server in
    `server_ns` on `address`, over 3 s."""
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1",
                               "-B", address], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        client = ["iperf3", "-c", address, "-t", "3", "-J"]
        if client_ns:
            client = ["ip", "netns", "exec", client_ns] + client
        for _ in range(50):
            out = subprocess.run(client, capture_output=True, text=True)
            if out.returncode == 0 and "sum_received" in out.stdout:
                return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]
            time.sleep(0.1)  # the server is still starting
        raise SystemExit(f"iperf3 to {address}: {out.stdout} {out.stderr}")
    finally:
        server.kill()
        server.wait()


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def guest(port_info, tag, where=None):
    """Moves the port's veth peer (in `where`, a namespace, or here) into a new namespace."""
    ns = GUEST + tag
    dev = "osvp-" + port_info["id"][:10]
    run("ip", "netns", "add", ns)
    move = ["ip", "link", "set", dev, "netns", ns]
    run(*(["ip", "netns", "exec", where] + move if where else move))
    ip = port_info["fixed_ips"][0]["ip_address"]
    for args in (["link", "set", dev, "address", port_info["mac_address"]],
                 ["link", "set", dev, "up"], ["addr", "add", f"{ip}/24", "dev", dev]):
        run("ip", "netns", "exec", ns, "ip", *args)
    return ns, ip


def reachable(ns, address):
    """Waits (up to 10 s) for a first reply: the hosts' forwarding entries converge."""
    deadline = time.perf_counter() + 10
    while subprocess.run(["ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "1",
                          address], capture_output=True).returncode != 0:
        if time.perf_counter() > deadline:
            raise SystemExit(f"{address} unreachable from {ns} after 10 s")


def rtt(ns, address):
    reachable(ns, address)
    out = subprocess.run(["ip", "netns", "exec", ns, "busybox", "ping", "-c", "50", "-i",
                          "0.02", "-q", address], capture_output=True, text=True).stdout
    found = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)", out)
    if not found:
        raise SystemExit(f"ping {address} from {ns}: {out}")
    return float(found.group(2))


def main():
    token = osapi.token()
    network = api(token, "POST", "/networks", {"network": {"name": "bench"}})["network"]["id"]
    api(token, "POST", "/subnets", {"subnet": {"network_id": network, "ip_version": 4,
                                               "cidr": "10.252.3.0/24"}})
    group = api(token, "POST", "/security-groups",
                {"security_group": {"name": "bench"}})["security_group"]["id"]
    api(token, "POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": group, "direction": "ingress", "protocol": "icmp"}})
    api(token, "POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": group, "direction": "ingress", "protocol": "tcp",
        "port_range_min": 5201, "port_range_max": 5201}})  # iperf3
    joins, across, within, ports = [], [], [], []
    here = [port(token, network, group, CONTROLLER, f"here-{i}") for i in range(2)]
    ports += here
    for p in here:
        wait_active(token, p["id"], time.perf_counter())
    g1, ip1 = guest(here[0], "here-0")
    g2, ip2 = guest(here[1], "here-1")
    name = "bench-h2"
    for i in range(ROUNDS):
        issued = subprocess.run([BIN, "join-token", "--data-dir", DATA], capture_output=True,
                                text=True, check=True).stdout.strip()
        env = dict(os.environ, ONESTACK_COMPUTE__DRIVER="fake",
                   ONESTACK_NETWORK__LOCAL_IP="10.252.250.2")
        started = time.perf_counter()
        agent = subprocess.Popen(["ip", "netns", "exec", NS, BIN, "join", osapi.URL,
                                  "--token", issued, "--name", name,
                                  "--data-dir", os.path.join(WORK, name)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            there = port(token, network, group, name, f"there-{i}")
            ports.append(there)
            joins.append(wait_active(token, there["id"], started, agent))
            g3, ip3 = guest(there, f"there-{i}", NS)
            # The address was the previous round's port's, under another MAC: a real guest
            # would announce itself, a stand-in's peer forgets the old answer instead.
            run("ip", "netns", "exec", g1, "ip", "neigh", "flush", "dev",
                "osvp-" + here[0]["id"][:10])
            across.append(rtt(g1, ip3))
            within.append(rtt(g1, ip2))
            if i == 0:
                vxlan_bps = throughput(g1, g3, ip3)
                underlay_bps = throughput(None, NS, "10.252.250.2")
            run("ip", "netns", "del", g3)
        finally:
            agent.terminate()
            agent.wait()
        # The next round joins afresh: its port, the host and the host's devices gone.
        api(token, "DELETE", f"/ports/{there['id']}", want=(204, 404))
        forget_host(token, name)
        links = subprocess.run(["ip", "netns", "exec", NS, "ip", "-br", "link"],
                               capture_output=True, text=True, check=True).stdout
        for line in links.splitlines():
            dev = line.split()[0].split("@")[0]
            if dev.startswith("os"):
                subprocess.run(["ip", "netns", "exec", NS, "ip", "link", "del", dev],
                               capture_output=True)
    for ns in (g1, g2):
        run("ip", "netns", "del", ns)
    for p in ports:
        api(token, "DELETE", f"/ports/{p['id']}", want=(204, 404))
    api(token, "DELETE", f"/networks/{network}")
    # The controller's agent removes the bridge before the script stops it.
    deadline = time.perf_counter() + 10
    while network[:10] in subprocess.run(["ip", "-br", "link"], capture_output=True,
                                         text=True).stdout:
        if time.perf_counter() > deadline:
            raise SystemExit("the controller kept the network's bridge")
        time.sleep(0.05)

    def summary(values):
        return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
                "max": round(max(values), 3), "all": [round(v, 3) for v in values]}
    print(json.dumps({"rounds": ROUNDS,
                      "join_to_first_port_active_ms": summary(joins),
                      "ping_rtt_across_hosts_ms": summary(across),
                      "ping_rtt_on_one_host_ms": summary(within),
                      "tcp_gbit_s_across_hosts_vxlan": round(vxlan_bps / 1e9, 2),
                      "tcp_gbit_s_bare_underlay": round(underlay_bps / 1e9, 2),
                      "vxlan_over_underlay": round(vxlan_bps / underlay_bps, 3)}, indent=1))


if __name__ == "__main__":
    main()
