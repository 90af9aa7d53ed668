"""Live migration figures (run by bench/live_migration.sh, as root, with the controller's
admin-openrc in the environment). A host joins from the namespace BENCH_NS (QEMU, its network
agent); the tiny test guest boots there on a VXLAN network whose DHCP namespace is on the
controller. Over ROUNDS moves, alternately to the controller and back to the joined host
(`os-migrateLive`, the scheduler's pick): the time from the request until the server is
placed on the new host, the replies the guest missed to a ping every 10 ms from the DHCP
namespace, and QEMU's own figures from the old host's log (total time, downtime, memory
sent). Then the limit: the same guest image in two QEMUs started by hand, one in each of the
same two places, migrated by QMP over the same underlay, plain TCP, their disk shared (no
copy, no TLS, no cloud). Prints JSON."""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osapi  # noqa: E402

BIN, DATA, WORK = os.environ["ONESTACK_BIN"], os.environ["ONESTACK_DATA"], os.environ["BENCH_WORK"]
NS, CONTROLLER = os.environ["BENCH_NS"], os.environ["BENCH_CONTROLLER"]
GUEST, HAND = os.environ["BENCH_GUEST"], os.environ["BENCH_HAND"]
ROUNDS = int(os.environ.get("ROUNDS", "4"))
HOST = "bench-live-h2"
HOST_IP, CONTROLLER_IP = "10.252.250.2", "10.252.250.1"
RAM_MB = 256
COMPUTE = {"OpenStack-API-Version": "compute 2.37"}


def api(token, method, path, body=None, want=(200, 201, 202, 204), **kw):
    status, reply = osapi.request(token, method, path, body, **kw)
    if status not in want:
        raise SystemExit(f"{method} {path}: {status} {reply}")
    return reply


def wait(what, check, seconds=180):
    deadline = time.perf_counter() + seconds
    while not check():
        if time.perf_counter() > deadline:
            raise SystemExit(f"{what}: not within {seconds} s")
        time.sleep(0.05)


def server(token, sid):
    s = api(token, "GET", f"/compute/v2.1/servers/{sid}", headers=COMPUTE)["server"]
    if s["status"] == "ERROR":
        raise SystemExit(f"server {sid} went to ERROR: {s.get('fault')}")
    return s


def ping_until_stopped(ns, address):
    return subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-q", "-i", "0.01",
                             "-W", "1", address], stdout=subprocess.PIPE, text=True)


def stop_ping(ping):
    ping.send_signal(signal.SIGINT)
    out = ping.communicate(timeout=10)[0]
    sent, got = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out).groups()
    return int(sent), int(got)


def qemu_figures(log):
    """The last `guest live-migrated` line's figures in an onestack log."""
    text = open(log, encoding="utf-8", errors="replace").read()
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [ln for ln in text.splitlines() if "guest live-migrated" in ln]
    if not lines:
        raise SystemExit(f"no live migration in {log}")
    return {k: int(v) for k, v in re.findall(r"(total_ms|downtime_ms|ram_bytes)=(\d+)", lines[-1])}


def cloud_rounds(token):
    image = api(token, "POST", "/image/v2/images", {
        "name": "bench-live", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"})
    with open(os.path.join(GUEST, "disk.img"), "rb") as f:
        api(token, "PUT", f"/image/v2/images/{image['id']}/file", data=f.read(),
            content_type="application/octet-stream")
    flavor = api(token, "POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "bench.live", "ram": RAM_MB, "vcpus": 1, "disk": 1}})["flavor"]["id"]
    net = "/networking/v2.0"
    network = api(token, "POST", f"{net}/networks", {"network": {"name": "bench-live"}})["network"]["id"]
    api(token, "POST", f"{net}/subnets", {"subnet": {"network_id": network, "ip_version": 4,
                                                     "cidr": "10.252.4.0/24"}})
    group = api(token, "POST", f"{net}/security-groups",
                {"security_group": {"name": "bench-live"}})["security_group"]["id"]
    api(token, "POST", f"{net}/security-group-rules", {"security_group_rule": {
        "security_group_id": group, "direction": "ingress", "protocol": "icmp"}})
    api(token, "POST", f"{net}/security-group-rules", {"security_group_rule": {
        "security_group_id": group, "direction": "ingress", "protocol": "tcp",
        "port_range_min": 80, "port_range_max": 80}})

    issued = subprocess.run([BIN, "join-token", "--data-dir", DATA], capture_output=True,
                            text=True, check=True).stdout.strip()
    host_log = os.path.join(WORK, "host.log")
    env = dict(os.environ, ONESTACK_COMPUTE__DRIVER="qemu", ONESTACK_LOG__LEVEL="info",
               ONESTACK_NETWORK__LOCAL_IP=HOST_IP, ONESTACK_COMPUTE__REPORT_INTERVAL="1")
    env.pop("ONESTACK_CONFIG", None)
    with open(host_log, "w") as log:
        agent = subprocess.Popen(["ip", "netns", "exec", NS, BIN, "join", osapi.URL, "--token",
                                  issued, "--name", HOST, "--data-dir", os.path.join(WORK, "host")],
                                 env=env, stdout=log, stderr=log)
    try:
        def host_up():
            services = api(token, "GET", "/compute/v2.1/os-services", headers=COMPUTE)["services"]
            return any(s["host"] == HOST and s["state"] == "up" for s in services)
        wait("the joined host up", host_up, 30)
        sid = api(token, "POST", "/compute/v2.1/servers", {"server": {
            "name": "bench-live", "imageRef": image["id"], "flavorRef": flavor,
            "networks": [{"uuid": network}], "security_groups": [{"name": "bench-live"}],
            "availability_zone": f"nova:{HOST}"}}, headers=COMPUTE)["server"]["id"]
        wait("the guest ACTIVE", lambda: server(token, sid)["status"] == "ACTIVE")
        address = server(token, sid)["addresses"]["bench-live"][0]["addr"]
        dhcp = f"osdhcp-{network}"

        def answers():
            return subprocess.run(["ip", "netns", "exec", dhcp, "ping", "-c", "1", "-W", "1",
                                   address], capture_output=True).returncode == 0
        try:
            wait("the guest answering pings", answers, 120)
        except SystemExit:
            console = api(token, "POST", f"/compute/v2.1/servers/{sid}/action",
                          {"os-getConsoleOutput": {"length": 30}})
            print(console["output"], file=sys.stderr)
            raise
        rounds = []
        for i in range(ROUNDS):
            to, source_log = (CONTROLLER, host_log) if i % 2 == 0 else (
                HOST, os.path.join(WORK, "controller.log"))
            ping = ping_until_stopped(dhcp, address)
            time.sleep(1)  # a second of replies before the move
            started = time.perf_counter()
            api(token, "POST", f"/compute/v2.1/servers/{sid}/action",
                {"os-migrateLive": {"host": None, "block_migration": "auto"}},
                headers={"OpenStack-API-Version": "compute 2.30"})

            def placed():
                s = server(token, sid)
                return s["OS-EXT-SRV-ATTR:host"] == to and s["OS-EXT-STS:task_state"] is None
            wait(f"the guest placed on {to}", placed)
            placed_ms = (time.perf_counter() - started) * 1000
            time.sleep(2)  # replies after the move, until the network has converged
            sent, got = stop_ping(ping)
            rounds.append({"to": "controller" if to == CONTROLLER else "joined host",
                           "request_to_placed_ms": round(placed_ms), "pings": sent,
                           "missed": sent - got, **qemu_figures(source_log)})
        api(token, "DELETE", f"/compute/v2.1/servers/{sid}")
        wait("the guest deleted", lambda: osapi.request(
            token, "GET", f"/compute/v2.1/servers/{sid}")[0] == 404, 60)
    finally:
        agent.terminate()
        agent.wait()
    return rounds


class Qmp:
    def __init__(self, path):
        deadline = time.perf_counter() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                if time.perf_counter() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw")
        self.read()
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            message = json.loads(self.file.readline())
            if "event" not in message:
                return message

    def cmd(self, command, **arguments):
        self.file.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.file.flush()
        reply = self.read()
        if "error" in reply:
            raise SystemExit(f"{command}: {reply['error']}")
        return reply["return"]


def hand_qemu(ns, tag, disk, incoming=None):
    """A QEMU started by hand in `ns` (None: this namespace) on the shared disk."""
    qmp = os.path.join(WORK, f"hand-{tag}.sock")
    argv = ["qemu-system-x86_64", "-name", f"guest={HAND}-{tag}", "-machine", "pc,accel=tcg",
            "-m", str(RAM_MB), "-nodefaults", "-display", "none",
            "-drive", f"file={disk},format=qcow2,if=virtio,cache=none",
            "-serial", f"file:{os.path.join(WORK, f'hand-{tag}.console')}",
            "-qmp", f"unix:{qmp},server=on,wait=off", "-daemonize"]
    if incoming:
        argv += ["-incoming", incoming]
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    subprocess.run(argv, check=True)
    return Qmp(qmp)


def hand_rounds():
    disk = os.path.join(WORK, "hand.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                    os.path.join(GUEST, "disk.img"), disk], check=True)
    places = [(None, CONTROLLER_IP), (NS, HOST_IP)]
    source = hand_qemu(None, "0", disk)
    console = os.path.join(WORK, "hand-0.console")
    wait("the hand-started guest booted",
         lambda: "onestack-guest" in open(console, errors="replace").read(), 120)
    rounds = []
    for i in range(ROUNDS):
        ns, ip = places[(i + 1) % 2]
        port = 49000 + i
        dest = hand_qemu(ns, str(i + 1), disk, incoming=f"tcp:{ip}:{port}")
        source.cmd("migrate-set-parameters", **{"max-bandwidth": 10 << 30})
        started = time.perf_counter()
        source.cmd("migrate", uri=f"tcp:{ip}:{port}")
        while True:
            info = source.cmd("query-migrate")
            if info["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.005)
        wall_ms = (time.perf_counter() - started) * 1000
        if info["status"] != "completed":
            raise SystemExit(f"hand-started migration {info['status']}: {info}")
        rounds.append({"to": "joined host" if ns else "controller",
                       "request_to_completed_ms": round(wall_ms),
                       "total_ms": info["total-time"], "downtime_ms": info["downtime"],
                       "ram_bytes": info["ram"]["transferred"]})
        source.cmd("quit")
        source = dest
    source.cmd("quit")
    return rounds


def main():
    token = osapi.token()
    cloud = cloud_rounds(token)
    hand = hand_rounds()

    def median(rows, key):
        return round(statistics.median(r[key] for r in rows))
    print(json.dumps({
        "rounds": ROUNDS, "guest_ram_mb": RAM_MB,
        "onestack": {"request_to_placed_ms_median": median(cloud, "request_to_placed_ms"),
                     "qemu_total_ms_median": median(cloud, "total_ms"),
                     "qemu_downtime_ms_median": median(cloud, "downtime_ms"),
                     "missed_pings_at_10ms_median": median(cloud, "missed"),
                     "missed_pings_at_10ms_max": max(r["missed"] for r in cloud),
                     "rounds": cloud},
        "qemu_by_hand": {"total_ms_median": median(hand, "total_ms"),
                         "downtime_ms_median": median(hand, "downtime_ms"),
                         "rounds": hand},
    }, indent=1))


if __name__ == "__main__":
    main()
