#!/usr/bin/env python3
"""Routers, floating IPs and the metadata service against a running onestack (root, agent on,
fake compute driver), started by bench/l3.sh. Namespaces stand in for guests (their ports are
veths, `binding:profile {"interface": "veth"}`) and for a host outside on the external network.

Measures:
  1. router namespace setup: `router create` (with a gateway) answered -> namespace up with its
     gateway leg, and `add_router_interface` answered -> the interface's gateway address in it;
     removal (interface removed and router deleted -> namespace gone);
  2. floating IP: `PUT /floatingips/{id}` with a port answered -> a TCP connection from the
     outside host to the floating address succeeds (probe every 2 ms, 20 ms connect timeout),
     and disassociation -> it stops;
  3. the metadata service from one guest: sequential GETs of meta_data.json, each on a new
     connection as cloud-init makes them (p50/p99, req/s), and 4 clients at once;
  4. forwarding throughput through the router namespace between two guests on two subnets
     (iperf3, 1 stream), next to the same two guests on one network (the bridge alone).
Prints one JSON document. Only sends traffic to addresses it created (10.240-10.244.x.x).

Run inside a namespace as `l3.py --probe MODE ...` it is its own probe.
"""
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import time


# ---- probes, run inside a namespace ---------------------------------------------------------

def probe_connect(address, port, want, limit):
    """Prints the wall-clock time at which connecting starts to succeed (want=up) or fail."""
    want_up = want == "up"
    deadline = time.time() + float(limit)
    while time.time() < deadline:
        s = socket.socket()
        s.settimeout(0.02)
        try:
            s.connect((address, int(port)))
            up = True
        except OSError:
            up = False
        finally:
            s.close()
        if up == want_up:
            print(json.dumps({"at": time.time()}))
            return
        time.sleep(0.002)
    print(json.dumps({"at": None}))


def probe_listen(port):
    """Accepts and closes connections on `port` until killed."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    s.listen(64)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        c.close()


def metadata_get():
    import http.client
    c = http.client.HTTPConnection("169.254.169.254", 80, timeout=5)
    c.request("GET", "/openstack/latest/meta_data.json")
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200 or b'"uuid"' not in body:
        raise RuntimeError(f"metadata answered {r.status}")


def probe_metadata(requests, clients):
    requests, clients = int(requests), int(clients)
    for _ in range(20):  # warm-up
        metadata_get()
    latencies = []
    start = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        metadata_get()
        latencies.append(time.perf_counter() - t)
    sequential = time.perf_counter() - start

    def worker(n):
        for _ in range(n):
            metadata_get()

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [requests // clients] * clients))
    parallel = time.perf_counter() - start
    latencies.sort()
    print(json.dumps({
        "sequential": {"requests": requests, "req_per_s": round(requests / sequential, 1),
                       "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
                       "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
                       "max_ms": round(latencies[-1] * 1000, 2)},
        "parallel": {"clients": clients, "requests": requests // clients * clients,
                     "req_per_s": round(requests // clients * clients / parallel, 1)},
    }))


if len(sys.argv) > 1 and sys.argv[1] == "--probe":
    {"connect": probe_connect, "listen": probe_listen, "metadata": probe_metadata}[sys.argv[2]](*sys.argv[3:])
    sys.exit(0)


# ---- the benchmark ----------------------------------------------------------------------------

import osapi  # noqa: E402 (needs OS_AUTH_URL, which the probes run without)

HOST = os.environ.get("BENCH_HOST", "bench-host")
OUTSIDE = os.environ["OUTSIDE_NS"]
ROUNDS = int(os.environ.get("ROUNDS", "5"))
METADATA_REQUESTS = int(os.environ.get("METADATA_REQUESTS", "500"))
BLAST_SECONDS = int(os.environ.get("SECONDS_PER_BLAST", "5"))
SELF = os.path.abspath(__file__)


TOKEN = osapi.token()


def call(method, path, body=None, data=None, content_type="application/json"):
    return osapi.request(TOKEN, method, path, body, data, content_type)


def net(method, path, body=None):
    return call(method, "/networking/v2.0" + path, body)


def create(collection, what, attrs):
    status, body = net("POST", "/" + collection, {what: attrs})
    if status != 201:
        raise SystemExit(f"{collection}: {status} {body}")
    return body[what]


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def wait(what, check, limit=15.0, step=0.005):
    deadline = time.time() + limit
    while not check():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(step)
    return time.time()


def ns_has_address(ns, address):
    out = sh("ip", "-n", ns, "-4", "-o", "addr", "show", check=False).stdout
    return f" {address}/" in out


def ns_exists(ns):
    return os.path.exists(f"/run/netns/{ns}")


def stats(values):
    values = sorted(values)
    return {"median": round(statistics.median(values), 3), "min": round(values[0], 3),
            "max": round(values[-1], 3), "n": len(values), "all": [round(v, 3) for v in values]}


def tenant_network(name, cidr):
    n = create("networks", "network", {"name": name})
    s = create("subnets", "subnet", {"network_id": n["id"], "ip_version": 4, "cidr": cidr,
                                      "enable_dhcp": False})
    return n, s


class Guest:
    """A veth port plugged by the agent, its peer moved into a namespace of its own."""

    def __init__(self, network, tag, bound=True, gateway=None):
        attrs = {"network_id": network["id"], "binding:profile": {"interface": "veth"},
                 "port_security_enabled": False}
        if bound:
            attrs["binding:host_id"] = HOST
        self.port = create("ports", "port", attrs)
        self.ns = f"l3b-{tag}-{os.getpid()}"
        self.ip = self.port["fixed_ips"][0]["ip_address"]
        self.gateway = gateway
        self.plugged = False

    def plug(self):
        dev = "osvp-" + self.port["id"][:10]
        wait(f"the agent to make {dev}",
             lambda: sh("ip", "link", "show", dev, check=False).returncode == 0, step=0.05)
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "set", dev, "netns", self.ns)
        self.run("ip", "link", "set", dev, "address", self.port["mac_address"])
        self.run("ip", "link", "set", "lo", "up")
        self.run("ip", "link", "set", dev, "up")
        self.run("ip", "addr", "add", self.ip + "/24", "dev", dev)
        if self.gateway:
            self.run("ip", "route", "add", "default", "via", self.gateway)
        self.plugged = True

    def run(self, *args, check=True):
        return sh("ip", "netns", "exec", self.ns, *args, check=check)

    def remove(self):
        if os.path.exists(f"/run/netns/{self.ns}"):
            pids = sh("ip", "netns", "pids", self.ns, check=False).stdout.split()
            for pid in pids:
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", self.ns, check=False)


def in_ns(ns, *args):
    return ["ip", "netns", "exec", ns, *args]


def router_setup():
    public = EXTERNAL[0]
    create_times, interface_times, removal_times = [], [], []
    for i in range(ROUNDS):
        n, s = tenant_network(f"setup{i}", f"10.242.{i}.0/24")
        r = create("routers", "router", {"name": f"setup{i}",
                                         "external_gateway_info": {"network_id": public["id"]}})
        answered = time.time()
        ns = "osrtr-" + r["id"]
        gw_ip = r["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        up = wait("the router namespace", lambda: ns_has_address(ns, gw_ip))
        create_times.append(up - answered)
        status, _ = net("PUT", f"/routers/{r['id']}/add_router_interface", {"subnet_id": s["id"]})
        assert status == 200, status
        answered = time.time()
        up = wait("the interface address", lambda: ns_has_address(ns, f"10.242.{i}.1"))
        interface_times.append(up - answered)
        net("PUT", f"/routers/{r['id']}/remove_router_interface", {"subnet_id": s["id"]})
        status, _ = net("DELETE", f"/routers/{r['id']}")
        assert status == 204, status
        answered = time.time()
        gone = wait("the namespace to go", lambda: not ns_exists(ns))
        removal_times.append(gone - answered)
        net("DELETE", f"/networks/{n['id']}")
    return {"router_create_with_gateway_to_namespace_s": stats(create_times),
            "add_router_interface_to_address_s": stats(interface_times),
            "delete_to_namespace_gone_s": stats(removal_times)}


def floating_ip(guest):
    listener = subprocess.Popen(in_ns(guest.ns, sys.executable, SELF, "--probe", "listen", "80"),
                                stdout=subprocess.PIPE, text=True)
    listener.stdout.readline()
    fip = create("floatingips", "floatingip", {"floating_network_id": EXTERNAL[0]["id"]})
    address = fip["floating_ip_address"]
    on, off = [], []
    try:
        for _ in range(ROUNDS):
            for port_id, want, sink in ((guest.port["id"], "up", on), (None, "down", off)):
                probe = subprocess.Popen(
                    in_ns(OUTSIDE, sys.executable, SELF, "--probe", "connect", address, "80",
                          want, "10"), stdout=subprocess.PIPE, text=True)
                time.sleep(0.3)
                status, body = net("PUT", f"/floatingips/{fip['id']}",
                                   {"floatingip": {"port_id": port_id}})
                answered = time.time()
                assert status == 200, (status, body)
                out, _ = probe.communicate(timeout=20)
                at = json.loads(out)["at"]
                if at is None:
                    raise SystemExit(f"the floating IP never went {want}")
                sink.append(max(0.0, at - answered))
    finally:
        listener.kill()
        net("DELETE", f"/floatingips/{fip['id']}")
    return {"associate_to_answering_s": stats(on), "disassociate_to_silent_s": stats(off)}


def metadata(guest):
    out = guest.run(sys.executable, SELF, "--probe", "metadata", str(METADATA_REQUESTS), "4").stdout
    return json.loads(out)


def iperf(client, server):
    srv = subprocess.Popen(in_ns(server.ns, "iperf3", "-s", "-1"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        out = client.run("iperf3", "-c", server.ip, "-t", str(BLAST_SECONDS), "-J").stdout
    finally:
        srv.kill()
        srv.wait()
    result = json.loads(out)
    return round(result["end"]["sum_received"]["bits_per_second"] / 1e9, 2)


def boot_server(port):
    status, image = call("POST", "/image/v2/images",
                         {"name": "l3bench", "disk_format": "raw", "container_format": "bare"})
    assert status == 201, (status, image)
    status, _ = call("PUT", f"/image/v2/images/{image['id']}/file", data=b"\0" * 4096,
                     content_type="application/octet-stream")
    assert status == 204, status
    status, body = call("POST", "/compute/v2.1/servers", {"server": {
        "name": "l3bench-guest", "imageRef": image["id"], "flavorRef": "1",
        "networks": [{"port": port["id"]}]}})
    assert status == 202, (status, body)
    sid = body["server"]["id"]
    wait("the server to be ACTIVE",
         lambda: call("GET", f"/compute/v2.1/servers/{sid}")[1]["server"]["status"] == "ACTIVE",
         step=0.05)
    return sid


EXTERNAL = []


def main():
    public = create("networks", "network", {
        "name": "public", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "physnet1"})
    create("subnets", "subnet", {
        "network_id": public["id"], "ip_version": 4, "cidr": "10.240.0.0/24",
        "gateway_ip": "10.240.0.1", "enable_dhcp": False,
        "allocation_pools": [{"start": "10.240.0.10", "end": "10.240.0.200"}]})
    EXTERNAL.append(public)
    result = {"rounds": ROUNDS}
    result["router_setup"] = router_setup()

    t1, s1 = tenant_network("t1", "10.241.1.0/24")
    t2, s2 = tenant_network("t2", "10.241.2.0/24")
    t3, _ = tenant_network("t3", "10.243.0.0/24")
    r = create("routers", "router", {"name": "r", "external_gateway_info": {"network_id": public["id"]}})
    for s in (s1, s2):
        status, _ = net("PUT", f"/routers/{r['id']}/add_router_interface", {"subnet_id": s["id"]})
        assert status == 200
    guests = []
    try:
        g1 = Guest(t1, "g1", gateway="10.241.1.1")
        g2 = Guest(t2, "g2", gateway="10.241.2.1")
        g3 = Guest(t3, "g3")
        g4 = Guest(t3, "g4")
        gm = Guest(t1, "gm", bound=False, gateway="10.241.1.1")
        guests = [g1, g2, g3, g4, gm]
        boot_server(gm.port)
        for g in guests:
            g.plug()
        wait("g1 to reach g2 through the router",
             lambda: g1.run("busybox", "ping", "-c", "1", "-W", "1", g2.ip, check=False).returncode == 0,
             step=0.1)
        result["floating_ip"] = floating_ip(g1)
        wait("the metadata service", lambda: gm.run(
            sys.executable, "-c", "import urllib.request as u; u.urlopen('http://169.254.169.254/openstack', timeout=1)",
            check=False).returncode == 0, step=0.1)
        result["metadata"] = metadata(gm)
        routed = [iperf(g1, g2) for _ in range(3)]
        direct = [iperf(g3, g4) for _ in range(3)]
        result["throughput_gbit_s"] = {
            "through_router": statistics.median(routed), "through_router_all": routed,
            "same_network_no_router": statistics.median(direct), "same_network_all": direct,
            "ratio": round(statistics.median(routed) / statistics.median(direct), 3)}
    finally:
        for g in guests:
            g.remove()
    result["memory"] = rss()
    print(json.dumps(result, indent=2))


def rss():
    out = sh("pgrep", "-f", "onestack up --data-dir", check=False).stdout.split()
    for pid in out:
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            return {"VmRSS": fields["VmRSS"].strip(), "VmHWM": fields["VmHWM"].strip()}
        except OSError:
            continue
    return None


main()
