"""Crash safety: a scripted mixed workload (networks, subnets, ports, servers, images, with
deletes) while onestack is killed with SIGKILL at seeded random moments, then restarted on
the same data directory and checked:

- every write the cloud accepted (2xx) is there, and every accepted delete is gone, apart
  from the one request in flight at the kill, which may have gone either way;
- no half-made resource: servers leave BUILD and every task within a deadline, no image
  stays `saving`/`importing`, no port points at a server that does not exist;
- no leak: each subnet's used addresses are exactly its ports' fixed IPs, each project's
  quota usage is exactly what it has, and no image file lies on disk without its image;
- the process restarts every time;
- as root, the host too (bench/crash_host.py): the network agent runs, and once it has
  converged after each restart nothing of this cloud is on the host for a network, port or
  router the database no longer has (links, namespaces, nft tables and the devices their
  rules name, dnsmasq, /run/onestack/<cloud>/ entries), and nothing is missing (a bridge
  and VXLAN device per network, a tap per port bound here, one dnsmasq per DHCP network);
  at the end everything is deleted through the API, the host must then hold nothing of this
  cloud, and what is left after the final stop is reported (as bench/load.sh does).
  Not root: the agent stays off and the log says the host audit is off.

Run by bench/crash.sh (which `make test` runs with KILLS=40): KILLS kill points, SEED repeats
a run (printed at the start). Exit 1 on any finding. Standard library only."""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import crash_host

BIN = os.environ["BIN"]
DATA = os.environ["DATA"]
PORT = int(os.environ.get("ONESTACK_PORT", "5510"))
URL = f"http://127.0.0.1:{PORT}"
KILLS = int(os.environ.get("KILLS", "40"))
SEED = int(os.environ.get("SEED") or time.time_ns() % 1_000_000_007)
LOG = os.environ.get("SERVER_LOG", os.path.join(DATA, "server.log"))
SETTLE_S = 30
STOP_DHCP_S = 3  # per DHCP server the final sweep removes (see final_host_check)
COMPUTE = {"OpenStack-API-Version": "compute 2.79"}
HOST_AUDIT = crash_host.enabled()
AGENT_HOST = f"crash-{os.getpid()}"
# With the agent on: at most this many networks live (each has a DHCP server the agent checks
# with about ten `ip` commands in every pass, ~0.1 s a network on a busy 2-core host), and a
# full pass every AGENT_RESYNC_S (a pass that finds a VNI still held by a network deleted in
# the same pass builds that network only in the next one), so that each audit waits seconds.
AGENT_NETWORKS = int(os.environ.get("AGENT_NETWORKS", "20"))
AGENT_RESYNC_S = os.environ.get("ONESTACK_NETWORK__RESYNC_SECONDS", "2")


def call(token, method, path, body=None, data=None, ctype="application/json", headers=None, timeout=10):
    """(status, JSON or None); status 0 when the server did not answer."""
    if body is not None:
        data = json.dumps(body).encode()
    h = {"Content-Type": ctype}
    if token:
        h["X-Auth-Token"] = token
    h.update(headers or {})
    req = urllib.request.Request(URL + path, data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            out = json.loads(text) if text and r.headers.get_content_type().endswith("json") else None
            return r.status, out, r.headers
    except urllib.error.HTTPError as e:
        return e.code, None, e.headers
    except (OSError, urllib.error.URLError):
        return 0, None, None


def login(password, project="admin", user="admin"):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    status, _, headers = call(None, "POST", "/identity/v3/auth/tokens", body)
    return headers["X-Subject-Token"] if status == 201 else None


class Cloud:
    def __init__(self):
        self.proc = None
        self.starts = 0

    def start(self):
        env = dict(os.environ, ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS="4",
                   ONESTACK_COMPUTE__DRIVER="fake",
                   ONESTACK_NETWORK__AGENT="true" if HOST_AUDIT else "false",
                   ONESTACK_NETWORK__RESYNC_SECONDS=AGENT_RESYNC_S,
                   ONESTACK_NETWORK__HOST=AGENT_HOST,
                   ONESTACK_LOG__LEVEL=os.environ.get("ONESTACK_LOG__LEVEL", "warn"))
        log = open(LOG, "a")
        self.proc = subprocess.Popen([BIN, "up", "--data-dir", DATA, "--listen", f"127.0.0.1:{PORT}"],
                                     stdout=log, stderr=log, env=env)
        self.starts += 1
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"crash: onestack exited with {self.proc.returncode} on start {self.starts}; see {LOG}")
            if call(None, "GET", "/identity/v3")[0] == 200:
                return
            time.sleep(0.02)
        sys.exit(f"crash: onestack did not answer within 60 s of start {self.starts}; see {LOG}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM, and SIGKILL if it has not stopped within 10 s."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


class Ledger:
    """What the cloud accepted: live[id] = (kind, path); gone = accepted deletes; doubt =
    the ids of the request each kill cut off."""

    def __init__(self):
        self.live, self.gone, self.doubt, self.children = {}, {}, set(), {}
        self.deleted = 0  # accepted deletes checked so far
        self.host_seconds = []  # per host audit: how long the agent took to converge
        self.lock = threading.Lock()


def workload(token, project_net, ledger, rng, stop):
    """Creates and deletes until the server stops answering or `stop` is set."""
    def created(kind, rid, path, parent=None):
        with ledger.lock:
            if parent and parent not in ledger.live:
                # Another client deleted the parent (a network) between this create and
                # now: the delete took the child along, or came first and the cloud will
                # say the child is gone all the same.
                ledger.gone[rid] = (kind, path)
                return
            ledger.live[rid] = (kind, path)
            if parent:
                ledger.children.setdefault(parent, []).append(rid)

    def deleted(rid):
        with ledger.lock:
            # A network takes its subnets along.
            for gone in [rid] + ledger.children.pop(rid, []):
                if gone in ledger.live:
                    ledger.gone[gone] = ledger.live.pop(gone)

    def doubt(*ids):
        with ledger.lock:
            ledger.doubt.update(i for i in ids if i)

    i = 0
    while not stop.is_set():
        i += 1
        op = rng.choice(["net", "port", "server", "server", "image", "delete", "delete"])
        with ledger.lock:
            if len(ledger.live) > 300:
                op = "delete"  # a steady population keeps each audit the same size
            elif op == "net" and HOST_AUDIT and \
                    sum(kind == "network" for kind, _ in ledger.live.values()) >= AGENT_NETWORKS:
                op = "delete"  # each network costs the agent's every pass (see AGENT_NETWORKS)
        if op == "net":
            s, b, _ = call(token, "POST", "/networking/v2.0/networks", {"network": {"name": f"n{i}"}})
            if s == 0:
                return
            net = b["network"]["id"]
            created("network", net, f"/networking/v2.0/networks/{net}")
            s, b, _ = call(token, "POST", "/networking/v2.0/subnets", {"subnet": {
                "network_id": net, "ip_version": 4, "cidr": f"10.{rng.randrange(1, 250)}.{rng.randrange(250)}.0/24"}})
            if s == 0:
                return
            if s == 201:
                created("subnet", b["subnet"]["id"], f"/networking/v2.0/subnets/{b['subnet']['id']}", net)
        elif op == "port":
            s, b, _ = call(token, "POST", "/networking/v2.0/ports", {"port": {"network_id": project_net}})
            if s == 0:
                return
            if s == 201:
                created("port", b["port"]["id"], f"/networking/v2.0/ports/{b['port']['id']}")
        elif op == "server":
            s, b, _ = call(token, "POST", "/compute/v2.1/servers", {"server": {
                "name": f"s{i}", "imageRef": IMAGE, "flavorRef": FLAVOR,
                "networks": [{"uuid": project_net}]}}, headers=COMPUTE)
            if s == 0:
                return
            if s == 202:
                created("server", b["server"]["id"], f"/compute/v2.1/servers/{b['server']['id']}")
        elif op == "image":
            s, b, _ = call(token, "POST", "/image/v2/images", {
                "name": f"i{i}", "disk_format": "raw", "container_format": "bare"})
            if s == 0:
                return
            iid = b["id"]
            created("image", iid, f"/image/v2/images/{iid}")
            s, _, _ = call(token, "PUT", f"/image/v2/images/{iid}/file",
                           data=os.urandom(rng.randrange(1, 256 << 10)), ctype="application/octet-stream")
            if s == 0:
                return doubt(iid)
        else:
            with ledger.lock:
                candidates = [(rid, v) for rid, v in ledger.live.items()
                              if v[0] in ("server", "image", "port", "network")]
            if not candidates:
                continue
            rid, (kind, path) = rng.choice(candidates)
            s, _, _ = call(token, "DELETE", path, headers=COMPUTE if kind == "server" else None)
            if s == 0:
                return doubt(rid, *ledger.children.get(rid, []))
            if s in (202, 204):
                deleted(rid)
        if s == 0:
            return


def wait(what, check, deadline_s=SETTLE_S):
    deadline = time.time() + deadline_s
    while True:
        ok, detail = check()
        if ok:
            return None
        if time.time() > deadline:
            return f"{what}: {detail}"
        time.sleep(0.1)


def audit(admin, project, ledger, host=None):
    """Findings after a restart (empty when consistent); with `host` (a HostAudit), the host
    checked against the database too, once servers have settled."""
    findings = []
    with ledger.lock:
        live, gone, doubt = dict(ledger.live), dict(ledger.gone), set(ledger.doubt)
    for rid, (kind, path) in live.items():
        if rid in doubt:
            continue
        s, _, _ = call(admin, "GET", path, headers=COMPUTE if kind == "server" else None)
        if s != 200:
            findings.append(f"accepted {kind} {rid} is missing after restart ({s})")
    # Accepted deletes are gone (servers finish deleting in the background); each is checked
    # once, after the kill that followed it.
    with ledger.lock:
        for rid in gone:
            del ledger.gone[rid]
        ledger.deleted += len(gone)
    for rid, (kind, path) in gone.items():
        if rid in doubt:
            continue
        f = wait(f"deleted {kind} {rid} is still there",
                 lambda: (call(admin, "GET", path, headers=COMPUTE)[0] == 404, path))
        if f:
            findings.append(f)

    def servers_settled():
        s, b, _ = call(admin, "GET", f"/compute/v2.1/servers/detail?all_tenants=1", headers=COMPUTE)
        if s != 200:
            return False, f"list {s}"
        busy = [(x["id"], x["status"], x.get("OS-EXT-STS:task_state")) for x in b["servers"]
                if x["status"] == "BUILD" or x.get("OS-EXT-STS:task_state")]
        return not busy, busy
    f = wait("servers still building or busy", servers_settled)
    if f:
        findings.append(f)

    def images_settled():
        s, b, _ = call(admin, "GET", "/image/v2/images?limit=1000")
        busy = [(x["id"], x["status"]) for x in b["images"] if x["status"] in ("saving", "importing")]
        return not busy, busy
    f = wait("images stuck saving or importing", images_settled)
    if f:
        findings.append(f)
    # Image files on disk without an image that has data.
    _, b, _ = call(admin, "GET", "/image/v2/images?limit=1000")
    with_data = {x["id"] for x in b["images"] if x["status"] in ("active", "deactivated")}
    store = os.path.join(DATA, "images")
    for name in os.listdir(store) if os.path.isdir(store) else []:
        base = name.split(".")[0]
        path = os.path.join(store, name)
        if os.path.isfile(path) and len(base) == 36 and base not in with_data:
            findings.append(f"image file {name} has no image with data")
    # Ports point at servers that exist; addresses allocated are exactly the ports' IPs.
    _, ports, _ = call(admin, "GET", "/networking/v2.0/ports")
    _, servers, _ = call(admin, "GET", "/compute/v2.1/servers/detail?all_tenants=1", headers=COMPUTE)
    server_ids = {x["id"] for x in servers["servers"]}
    for p in ports["ports"]:
        if p["device_owner"].startswith("compute:") and p["device_id"] not in server_ids:
            findings.append(f"port {p['id']} is bound to server {p['device_id']}, which does not exist")
    used = {}
    for p in ports["ports"]:
        for ip in p["fixed_ips"]:
            used[ip["subnet_id"]] = used.get(ip["subnet_id"], 0) + 1
    _, avail, _ = call(admin, "GET", "/networking/v2.0/network-ip-availabilities")
    for net in avail["network_ip_availabilities"]:
        for sub in net["subnet_ip_availability"]:
            if sub["used_ips"] != used.get(sub["subnet_id"], 0):
                findings.append(f"subnet {sub['subnet_id']}: {sub['used_ips']} addresses in use, "
                                f"{used.get(sub['subnet_id'], 0)} on ports")
    # Quota usage is what the project has.
    _, limits, _ = call(admin, "GET", f"/compute/v2.1/limits?tenant_id={project}", headers=COMPUTE)
    mine = [x for x in servers["servers"] if x["tenant_id"] == project]
    if limits["limits"]["absolute"]["totalInstancesUsed"] != len(mine):
        findings.append(f"compute quota: {limits['limits']['absolute']['totalInstancesUsed']} instances used, "
                        f"{len(mine)} servers")
    _, quota, _ = call(admin, "GET", f"/networking/v2.0/quotas/{project}/details")
    mine_ports = [p for p in ports["ports"] if p["project_id"] == project]
    if quota["quota"]["port"]["used"] != len(mine_ports):
        findings.append(f"network quota: {quota['quota']['port']['used']} ports used, {len(mine_ports)} ports")
    if host:
        findings += host_audit(admin, ledger, host)
    return findings


def host_audit(admin, ledger, host):
    """Host findings once the agent has had SETTLE_S to converge (see bench/crash_host.py).
    The ledger's ids, deleted ones included, let unmarked leftovers of ours be recognised."""
    with ledger.lock:
        known = {**ledger.gone, **ledger.live}
    for kind in ("network", "port"):
        host.learn(kind, [rid for rid, (k, _) in known.items() if k == kind])
    new, _, seconds = host.check(lambda path: call(admin, "GET", path)[:2], SETTLE_S)
    ledger.host_seconds.append(seconds)
    return [f"host: {f}" for f in new]


def sweep(admin):
    """Deletes every server, port and network through the API (servers first, as ports of
    servers and networks with ports cannot go before them); findings if it cannot."""
    def servers():
        s, b, _ = call(admin, "GET", "/compute/v2.1/servers?all_tenants=1", headers=COMPUTE)
        return b["servers"] if s == 200 else None

    findings = []
    for server in servers() or []:
        call(admin, "DELETE", f"/compute/v2.1/servers/{server['id']}", headers=COMPUTE)
    f = wait("servers still there after delete", lambda: (servers() == [], "servers"))
    if f:
        findings.append(f)
    _, b, _ = call(admin, "GET", "/networking/v2.0/ports")
    for port in b["ports"]:
        if port["device_owner"] != crash_host.DHCP_OWNER:
            call(admin, "DELETE", f"/networking/v2.0/ports/{port['id']}")
    _, b, _ = call(admin, "GET", "/networking/v2.0/networks")
    for net in b["networks"]:
        s, _, _ = call(admin, "DELETE", f"/networking/v2.0/networks/{net['id']}")
        if s != 204:
            findings.append(f"network {net['id']}: delete answered {s}")
    return findings


def final_host_check(admin, host):
    """With everything deleted the agent must take this cloud off the host (findings); what is
    left once onestack has stopped is reported, not counted (as bench/load.sh does). The
    agent stops the DHCP servers one after the other, each until it has left /proc (until
    it is reaped, see crash_host.reap_dnsmasq), so the deadline grows with their number."""
    _, b, _ = call(admin, "GET", f"/networking/v2.0/ports?device_owner={crash_host.DHCP_OWNER}")
    deadline = SETTLE_S + STOP_DHCP_S * len(b["ports"])
    findings = [f"final sweep: {f}" for f in sweep(admin)]
    new, found, seconds = host.check(lambda path: call(admin, "GET", path)[:2], deadline)
    findings += [f"final sweep: host: {f}" for f in new]
    print(f"crash: everything deleted; after {seconds:.1f} s the host "
          f"{'differs: ' + str(len(found)) if found else 'matched'}"
          f"{f' ({len(found) - len(new)} reported before)' if len(found) > len(new) else ''}", flush=True)
    return findings


def host_summary(ledger, cloud_id, left):
    """The host audit's part of result.json, and the leftovers in the log."""
    if left:
        print(f"crash: left on the host by cloud {cloud_id} after onestack stopped (reported, not removed):")
        for item in left:
            print("    " + item)
    else:
        print(f"crash: nothing of cloud {cloud_id} left on the host")
    waits = ledger.host_seconds or [0]
    return {"checked": True, "cloud_id": cloud_id, "converge_seconds_max": round(max(waits), 1),
            "converge_seconds_total": round(sum(waits), 1), "host_leftovers": left}


def host_notes(host):
    """What kept the agent from building a network and is not this cloud's doing (another
    cloud's VXLAN device on its VNI): in the log and result.json, not a finding."""
    for note in sorted(host.notes):
        print(f"crash: note: {note}")
    return sorted(host.notes)


def main():
    global IMAGE, FLAVOR
    rng = random.Random(SEED)
    print(f"crash: SEED={SEED} KILLS={KILLS} data {DATA}", flush=True)
    reaping = HOST_AUDIT and crash_host.reap_dnsmasq()
    cloud = Cloud()
    cloud.start()
    cloud_id = open(os.path.join(DATA, "cloud-id")).read().strip()
    host = crash_host.HostAudit(cloud_id, AGENT_HOST) if HOST_AUDIT else None
    if host:
        print(f"crash: host audit on (root): the network agent runs as {AGENT_HOST}, cloud {cloud_id}; "
              f"{'crash.py reaps' if reaping else 'init reaps'} the dnsmasq daemons", flush=True)
    else:
        print("crash: host audit off (needs root, ip, nft and dnsmasq): the network agent stays off and "
              "the host is not checked", flush=True)
    password = open(os.path.join(DATA, "admin-password")).read().strip()
    admin = login(password)
    _, proj, _ = call(admin, "GET", "/identity/v3/projects?name=admin")
    project = proj["projects"][0]["id"]
    _, b, _ = call(admin, "POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "crash", "ram": 64, "vcpus": 1, "disk": 1}}, headers=COMPUTE)
    FLAVOR = b["flavor"]["id"]
    for quota in ({"quota_set": {"instances": -1, "cores": -1, "ram": -1}},):
        call(admin, "PUT", f"/compute/v2.1/os-quota-sets/{project}", quota, headers=COMPUTE)
    call(admin, "PUT", f"/networking/v2.0/quotas/{project}", {"quota": {
        "network": -1, "subnet": -1, "port": -1}})
    _, b, _ = call(admin, "POST", "/image/v2/images", {"name": "base", "disk_format": "raw", "container_format": "bare"})
    IMAGE = b["id"]
    call(admin, "PUT", f"/image/v2/images/{IMAGE}/file", data=b"\0" * 4096, ctype="application/octet-stream")
    _, b, _ = call(admin, "POST", "/networking/v2.0/networks", {"network": {"name": "crash-net"}})
    net = b["network"]["id"]
    call(admin, "POST", "/networking/v2.0/subnets", {"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.200.0.0/16"}})

    ledger = Ledger()
    findings = []
    started = time.time()
    for k in range(1, KILLS + 1):
        stop = threading.Event()
        workers = [threading.Thread(target=workload, args=(admin, net, ledger, random.Random(rng.random()), stop))
                   for _ in range(2)]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.05, 1.0))
        cloud.kill()
        stop.set()
        for w in workers:
            w.join(30)
        cloud.start()
        admin = login(password)
        if not admin:
            findings.append(f"kill {k}: admin cannot log in after restart")
            break
        found = audit(admin, project, ledger, host)
        for f in found:
            findings.append(f"kill {k}: {f}")
        if k % 10 == 0 or found:
            waited = f", host converged in <= {max(ledger.host_seconds):.1f} s" if ledger.host_seconds else ""
            print(f"crash: {k}/{KILLS} kills, {len(ledger.live)} live resources, {ledger.deleted} deleted, "
                  f"{len(findings)} findings, {time.time() - started:.0f} s{waited}", flush=True)
        if len(findings) > 20:
            break
    result = {"seed": SEED, "kills": k, "live": len(ledger.live), "deleted": ledger.deleted,
              "in_doubt": len(ledger.doubt)}
    if host and admin:
        findings += final_host_check(admin, host)
    if host:
        cloud.stop()
        result["host_audit"] = host_summary(ledger, cloud_id, crash_host.leftovers(cloud_id))
        result["host_audit"]["notes"] = host_notes(host)
    else:
        cloud.kill()
        result["host_audit"] = {"checked": False, "why": "needs root, ip, nft and dnsmasq"}
    result.update(findings=findings, seconds=round(time.time() - started, 1))
    out = os.environ.get("RESULTS_DIR")
    if out:
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump(result, f, indent=1)
    print(f"crash: {k} kill points, {len(ledger.live)} resources live and {ledger.deleted} deleted across them, "
          f"{len(ledger.doubt)} in doubt at a kill; findings: {len(findings)} (SEED={SEED})")
    for f in findings:
        print("  " + f)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
