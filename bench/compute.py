#!/usr/bin/env python3
"""Compute benchmark against a running onestack (started by bench/compute.sh).

usage: compute.py PHASE            (env: OS_* from the data dir's admin-openrc, ONESTACK_PID, ...)
       compute.py summary RESULTS_DIR

Phases (each prints one JSON document):
  fake-create  fake driver: POST /servers latency, sequential, with networks "none" and with
               one network (a port made per server);
  fake-scale   fake driver: SCALE servers created then deleted by WORKERS client threads (wall
               time of each phase, VmHWM and idle VmRSS of onestack), and with SCALE servers
               existing, GET /servers/detail?limit=100 and GET /servers?limit=100 latency;
  qemu         QEMU driver (root, network agent on, a port on a no-DHCP network): POST latency,
               POST -> ACTIVE and DELETE -> gone over ROUNDS rounds after a first boot that
               caches the image; POST -> "ONESTACK-GUEST-UP" on the serial console against the
               same guest started by a plain qemu-system-x86_64 with onestack's own argv,
               rounds alternated (ABBA) on this noisy host.
Times are client-side wall clock (time.perf_counter). Percentiles are nearest-rank.
"""
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

MARKER = b"ONESTACK-GUEST-UP"
MICROVERSION = os.environ.get("MICROVERSION", "2.90")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def stats(values, digits=2):
    return {"n": len(values), "p50": round(pct(values, 50), digits), "p90": round(pct(values, 90), digits),
            "p99": round(pct(values, 99), digits), "mean": round(statistics.mean(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def spread(values, digits=2):
    return {"n": len(values), "median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits),
            "all": [round(v, digits) for v in values]}


# ---------------------------------------------------------------------------------- API client

def api_base():
    return os.environ["OS_AUTH_URL"].rsplit("/identity", 1)[0]


def token():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": os.environ["OS_USERNAME"], "domain": {"name": "Default"},
        "password": os.environ["OS_PASSWORD"]}}},
        "scope": {"project": {"name": os.environ["OS_PROJECT_NAME"], "domain": {"name": "Default"}}}}}
    req = urllib.request.Request(api_base() + "/identity/v3/auth/tokens", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.headers["X-Subject-Token"]


class Api:
    def __init__(self):
        self.url = api_base()
        self.token = token()

    def call(self, method, path, body=None, raw=None, ctype="application/json"):
        """(status, parsed body); `path` starts with the service prefix (/compute/v2.1/...)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"X-Auth-Token": self.token, "Content-Type": ctype,
                   "OpenStack-API-Version": "compute " + MICROVERSION}
        req = urllib.request.Request(self.url + path, data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text) if text else None
            except ValueError:
                return e.code, text.decode(errors="replace")

    def nova(self, method, path, body=None):
        return self.call(method, "/compute/v2.1" + path, body)

    def must(self, expect, method, path, body=None):
        status, reply = self.call(method, path, body)
        if status != expect:
            raise SystemExit(f"{method} {path}: {status} {reply}")
        return reply


def setup_common(api, image_bytes, ram):
    """A flavor, an image (raw, `image_bytes`), and this host registered by the compute agent."""
    flavor = api.must(200, "POST", "/compute/v2.1/flavors",
                      {"flavor": {"name": f"bench.{ram}", "ram": ram, "vcpus": 1, "disk": 1}})["flavor"]
    image = api.must(201, "POST", "/image/v2/images",
                     {"name": "bench-guest", "disk_format": "raw", "container_format": "bare"})
    status, reply = api.call("PUT", f"/image/v2/images/{image['id']}/file", raw=image_bytes,
                             ctype="application/octet-stream")
    if status != 204:
        raise SystemExit(f"image upload: {status} {reply}")
    deadline = time.time() + 30
    while not api.must(200, "GET", "/compute/v2.1/os-hypervisors")["hypervisors"]:
        if time.time() > deadline:
            raise SystemExit("the compute agent registered no host within 30 s")
        time.sleep(0.1)
    return flavor["id"], image["id"]


def make_network(api, name, cidr):
    net = api.must(201, "POST", "/networking/v2.0/networks", {"network": {"name": name}})["network"]
    api.must(201, "POST", "/networking/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": cidr, "ip_version": 4, "enable_dhcp": False}})
    return net["id"]


def server_body(name, image, flavor, net):
    networks = [{"uuid": net}] if net else "none"
    return {"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": networks}}


def create(api, name, image, flavor, net):
    """POSTs one server; returns (id, latency ms)."""
    t = time.perf_counter()
    status, reply = api.nova("POST", "/servers", server_body(name, image, flavor, net))
    ms = (time.perf_counter() - t) * 1000
    if status != 202:
        raise SystemExit(f"POST /servers: {status} {reply}")
    return reply["server"]["id"], ms


def status_of(api, sid):
    status, reply = api.nova("GET", "/servers/" + sid)
    if status == 404:
        return None
    if status != 200:
        raise SystemExit(f"GET /servers/{sid}: {status} {reply}")
    server = reply["server"]
    if server["status"] == "ERROR":
        raise SystemExit(f"server {sid} went to ERROR: {server.get('fault')}")
    return server["status"]


def wait_status(api, sid, want, timeout=120, poll=0.02):
    deadline = time.time() + timeout
    while (s := status_of(api, sid)) != want:
        if time.time() > deadline:
            raise SystemExit(f"server {sid}: still {s} after {timeout}s (waiting for {want})")
        time.sleep(poll)


def wait_gone(api, sid, timeout=120, poll=0.02):
    deadline = time.time() + timeout
    while status_of(api, sid) is not None:
        if time.time() > deadline:
            raise SystemExit(f"server {sid} not gone after {timeout}s")
        time.sleep(poll)


CONFLICTS = []  # 409s to DELETE (the agent updated the server between the API's read and write)


def delete(api, sid):
    for _ in range(20):
        status, reply = api.nova("DELETE", "/servers/" + sid)
        if status != 409:
            break
        CONFLICTS.append(sid)
        time.sleep(0.01)
    if status != 204:
        raise SystemExit(f"DELETE /servers/{sid}: {status} {reply}")


def count(api, query):
    return len(api.must(200, "GET", "/compute/v2.1/servers" + query)["servers"])


def wait_until(what, check, timeout, poll=0.25):
    t = time.perf_counter()
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)
    return time.perf_counter() - t


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)  # MiB
    return out


# ---------------------------------------------------------------------------------- phases

def fake_create():
    api = Api()
    n = int(os.environ.get("CREATES", "200"))
    flavor, image = setup_common(api, b"\0" * (1 << 20), 64)
    net = make_network(api, "bench-create", "10.252.0.0/16")
    results = {"driver": "fake", "client": "sequential, one request at a time", "microversion": MICROVERSION}
    for variant, network in (("networks_none", None), ("one_network_port", net)):
        for i in range(5):  # warm-up, not counted
            sid, _ = create(api, f"warm-{variant}-{i}", image, flavor, network)
            delete(api, sid)
            wait_gone(api, sid)
        ids, lat = [], []
        for i in range(n):
            sid, ms = create(api, f"c-{variant}-{i}", image, flavor, network)
            ids.append(sid)
            lat.append(ms)
        wait_until("every server ACTIVE", lambda: count(api, "?status=BUILD") == 0, 120)
        errors = count(api, "?status=ERROR")
        for sid in ids:
            delete(api, sid)
        wait_until("every server gone", lambda: count(api, "?limit=1") == 0, 120)
        results["post_servers_ms_" + variant] = stats(lat) | {"errors": errors}
    api.must(204, "DELETE", "/networking/v2.0/networks/" + net)
    return results


def fake_scale():
    api = Api()
    n = int(os.environ.get("SCALE", "1000"))
    workers = int(os.environ.get("WORKERS", "4"))
    gets = int(os.environ.get("LIST_GETS", "200"))
    pid = int(os.environ["ONESTACK_PID"])
    flavor, image = setup_common(api, b"\0" * (1 << 20), 64)
    results = {"driver": "fake", "servers": n, "client_threads": workers, "networks": "none",
               "microversion": MICROVERSION, "database": os.environ.get("BENCH_DATABASE", "sqlite")}
    time.sleep(3)
    results["rss_idle_before_mib"] = proc_status(pid)["VmRSS"]

    # Create: WORKERS threads, each POSTing its share back to back.
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        made = list(pool.map(lambda i: create(api, f"s{i:04d}", image, flavor, None), range(n)))
    posts = time.perf_counter() - t
    settle = wait_until("every server ACTIVE", lambda: count(api, "?status=BUILD") == 0, 600, 0.5)
    ids = [sid for sid, _ in made]
    results["create"] = {"post_seconds": round(posts, 2), "until_all_active_seconds": round(posts + settle, 2),
                         "creates_per_second": round(n / posts, 1),
                         "post_ms": stats([ms for _, ms in made]),
                         "active": count(api, "?status=ACTIVE"), "error": count(api, "?status=ERROR")}
    time.sleep(3)
    results["rss_with_servers_mib"] = proc_status(pid)["VmRSS"]

    # Listing with n servers, sequential requests.
    for name, path in (("servers_detail_limit100", "/servers/detail?limit=100"),
                       ("servers_limit100", "/servers?limit=100")):
        for _ in range(5):
            api.nova("GET", path)
        lat = []
        for _ in range(gets):
            t = time.perf_counter()
            status, reply = api.nova("GET", path)
            lat.append((time.perf_counter() - t) * 1000)
            if status != 200 or len(reply["servers"]) != min(100, n):
                raise SystemExit(f"GET {path}: {status}")
        results["get_ms_" + name] = stats(lat)
    results["get_full_detail_ms"] = stats(timed(lambda: api.nova("GET", "/servers/detail"), 20))
    cli = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".venv", "bin", "openstack")
    if os.path.exists(cli):
        def server_list_long():
            out = subprocess.run([cli, "server", "list", "--long", "-f", "value", "-c", "ID"],
                                 capture_output=True, text=True, check=True).stdout
            if len(out.split()) != n:
                raise SystemExit(f"openstack server list --long: {len(out.split())} servers, not {n}")
        results["cli_server_list_long_ms"] = stats(timed(server_list_long, 5))

    # Delete: WORKERS threads, then until the last record is purged.
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda sid: delete(api, sid), ids))
    deletes = time.perf_counter() - t
    settle = wait_until("every server gone", lambda: count(api, "?limit=1") == 0, 600, 0.5)
    results["delete"] = {"delete_seconds": round(deletes, 2), "until_all_gone_seconds": round(deletes + settle, 2),
                         "deletes_per_second": round(n / deletes, 1)}
    time.sleep(5)
    mem = proc_status(pid)
    results["rss_idle_after_mib"] = mem["VmRSS"]
    results["vmhwm_mib"] = mem["VmHWM"]
    return results


def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


# ---------------------------------------------------------------------------------- qemu phase

WORK = os.environ.get("BENCH_WORK", tempfile.gettempdir())
PLAIN_PIDFILE = os.path.join(WORK, "plain-qemu.pid")


def instance_dir(sid):
    return os.path.join(os.environ["ONESTACK_DATA"], "compute", "instances", sid)


MARKER_LINES = {}  # console log path -> its marker line
LAST_MARKER = {}  # "O" / "P" -> the marker line of the last onestack / plain round


def wait_marker(path, t0, timeout=180, poll=0.01):
    """Seconds from `t0` until MARKER is in file `path`."""
    deadline = time.time() + timeout
    while True:
        try:
            with open(path, "rb") as f:
                text = f.read()
            if MARKER in text:
                elapsed = time.perf_counter() - t0
                MARKER_LINES[path] = text[text.index(MARKER):].split(b"\n")[0].decode(errors="replace").strip()
                return elapsed
        except FileNotFoundError:
            pass
        if time.time() > deadline:
            raise SystemExit(f"no {MARKER.decode()} in {path} after {timeout}s")
        time.sleep(poll)


def qemu_pid(sid):
    with open(os.path.join(instance_dir(sid), "qemu.pid")) as f:
        return int(f.read().strip())


def capture(sid, stage):
    """onestack's argv of a running guest and copies of its disk, base and config drive."""
    idir = instance_dir(sid)
    with open(f"/proc/{qemu_pid(sid)}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", os.path.join(idir, "disk")],
                                     check=True, capture_output=True, text=True).stdout)
    base = info.get("full-backing-filename") or info.get("backing-filename")
    shutil.copyfile(os.path.join(idir, "disk"), os.path.join(stage, "disk"))
    shutil.copyfile(os.path.join(idir, "disk.config"), os.path.join(stage, "disk.config"))
    shutil.copyfile(base, os.path.join(stage, "base"))
    with open(os.path.join(stage, "capture.json"), "w") as f:
        json.dump({"argv": argv, "instance_dir": idir, "base": base,
                   "base_format": info.get("backing-filename-format", "raw")}, f, indent=1)


def plain_argv(captured, tmp):
    """onestack's argv for a hand run in `tmp`: no -daemonize/-pidfile, files and sockets in
    `tmp`, the tap NIC replaced by -netdev user."""
    idir = captured["instance_dir"].rstrip("/") + "/"
    out, skip = [], False
    for arg in captured["argv"]:
        if skip:
            skip = False
            continue
        if arg == "-daemonize":
            continue
        if arg == "-pidfile":
            skip = True
            continue
        if arg.startswith("tap,"):
            nid = [kv for kv in arg.split(",") if kv.startswith("id=")][0]
            arg = "user," + nid
        out.append(arg.replace(idir, tmp.rstrip("/") + "/"))
    return out


def plain_round(stage):
    with open(os.path.join(stage, "capture.json")) as f:
        captured = json.load(f)
    tmp = tempfile.mkdtemp(prefix="plain-", dir=WORK)
    try:
        for name in ("disk", "disk.config", "base"):
            shutil.copyfile(os.path.join(stage, name), os.path.join(tmp, name))
        subprocess.run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-F", captured["base_format"],
                        "-b", os.path.join(tmp, "base"), os.path.join(tmp, "disk")], check=True)
        argv = plain_argv(captured, tmp)
        log = open(os.path.join(tmp, "qemu.log"), "wb")
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=tmp, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        with open(PLAIN_PIDFILE, "w") as f:
            f.write(str(proc.pid))
        try:
            seconds = wait_marker(os.path.join(tmp, "console.log"), t0)
            LAST_MARKER["P"] = MARKER_LINES[os.path.join(tmp, "console.log")]
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.unlink(PLAIN_PIDFILE)
            log.close()
        return seconds, argv
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def started_after(pid, boot0):
    """Seconds from CLOCK_BOOTTIME `boot0` to the start of process `pid` (10 ms ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK") - boot0


def onestack_round(api, name, image, flavor, net, stage=None):
    """(POST -> marker on the serial console s, POST latency ms, POST -> QEMU process start s);
    deletes the server after."""
    boot0 = time.clock_gettime(time.CLOCK_BOOTTIME)
    t0 = time.perf_counter()
    sid, ms = create(api, name, image, flavor, net)
    seconds = wait_marker(os.path.join(instance_dir(sid), "console.log"), t0)
    LAST_MARKER["O"] = MARKER_LINES[os.path.join(instance_dir(sid), "console.log")]
    to_qemu = started_after(qemu_pid(sid), boot0)
    if stage:
        capture(sid, stage)
    delete(api, sid)
    wait_gone(api, sid)
    return seconds, ms, to_qemu


def qemu():
    api = Api()
    rounds = int(os.environ.get("ROUNDS", "5"))
    guest = os.environ["GUEST_DISK"]
    with open(guest, "rb") as f:
        flavor, image = setup_common(api, f.read(), 256)
    net = make_network(api, "bench-qemu", "10.251.0.0/24")
    results = {"driver": "qemu", "microversion": MICROVERSION, "rounds": rounds}

    # First boot: caches the image on this host (not counted below).
    t0 = time.perf_counter()
    sid, _ = create(api, "bench-first", image, flavor, net)
    wait_status(api, sid, "ACTIVE")
    first_active = time.perf_counter() - t0
    first_marker = wait_marker(os.path.join(instance_dir(sid), "console.log"), t0)
    delete(api, sid)
    wait_gone(api, sid)
    results["first_boot_uncached_image"] = {"post_to_active_s": round(first_active, 2),
                                            "post_to_marker_s": round(first_marker, 2)}

    # POST -> ACTIVE, DELETE -> gone.
    post_ms, active, gone = [], [], []
    for i in range(rounds):
        time.sleep(1)
        t0 = time.perf_counter()
        sid, ms = create(api, f"bench-active-{i}", image, flavor, net)
        wait_status(api, sid, "ACTIVE")
        active.append(time.perf_counter() - t0)
        post_ms.append(ms)
        t1 = time.perf_counter()
        delete(api, sid)
        wait_gone(api, sid)
        gone.append(time.perf_counter() - t1)
    results["post_servers_ms"] = stats(post_ms)
    results["post_to_active_s"] = spread(active)
    results["delete_to_gone_s"] = spread(gone)

    # POST -> marker against plain QEMU, ABBA order (O P P O O P P O ...).
    stage = os.path.join(WORK, "stage")
    order = ["O" if (k + 1) // 2 % 2 == 0 else "P" for k in range(2 * rounds)]
    ones, plains, marker_post_ms, to_qemu, argv = [], [], [], [], None
    for k, kind in enumerate(order):
        time.sleep(1)
        if kind == "O":
            seconds, ms, q = onestack_round(api, f"bench-marker-{k}", image, flavor, net, stage)
            ones.append(seconds)
            marker_post_ms.append(ms)
            to_qemu.append(q)
        else:
            seconds, argv = plain_round(stage)
            plains.append(seconds)
        print(f"  round {k + 1}/{2 * rounds} {'onestack' if kind == 'O' else 'plain   '} "
              f"{seconds:.2f} s", file=sys.stderr)
    results["marker_order"] = "".join(order)
    results["post_to_marker_onestack_s"] = spread(ones)
    results["launch_to_marker_plain_qemu_s"] = spread(plains)
    results["onestack_post_to_qemu_start_s"] = spread(to_qemu)
    results["onestack_qemu_start_to_marker_s"] = spread([o - q for o, q in zip(ones, to_qemu)])
    results["marker_ratio_of_medians"] = round(statistics.median(ones) / statistics.median(plains), 3)
    results["post_servers_ms_marker_rounds"] = stats(marker_post_ms)
    results["marker_line_onestack"] = LAST_MARKER.get("O")
    results["marker_line_plain"] = LAST_MARKER.get("P")
    results["plain_qemu_argv"] = argv
    results["machine"] = argv[argv.index("-machine") + 1] if argv and "-machine" in argv else None
    shutil.rmtree(stage, ignore_errors=True)
    api.must(204, "DELETE", "/networking/v2.0/networks/" + net)
    return results


# ---------------------------------------------------------------------------------- summary

def summary(results_dir):
    def load(name):
        try:
            with open(os.path.join(results_dir, name + ".json")) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def ms(s):
        return f"p50 {s['p50']:.2f}  p90 {s['p90']:.2f}  p99 {s['p99']:.2f} ms  (n={s['n']})"

    def rng(s, unit="s"):
        return f"median {s['median']:.2f} {unit}  (min {s['min']:.2f}, max {s['max']:.2f}, n={s['n']})"

    fc, fs, q = load("fake-create"), load("fake-scale"), load("qemu")
    lines = ["", "==================== compute benchmark summary ===================="]
    lines.append("1. POST /servers latency (client-side)")
    if not fc:
        lines.append("   fake driver: skipped (FAKE=0)")
    if fc:
        lines.append(f"   fake driver, networks none      {ms(fc['post_servers_ms_networks_none'])}")
        lines.append(f"   fake driver, one network (port) {ms(fc['post_servers_ms_one_network_port'])}")
    if q:
        lines.append(f"   qemu driver (port, no DHCP)     p50 {q['post_servers_ms']['p50']:.1f} ms over "
                     f"{q['post_servers_ms']['n']} creates (range {q['post_servers_ms']['min']:.1f}-"
                     f"{q['post_servers_ms']['max']:.1f}); marker rounds: p50 "
                     f"{q['post_servers_ms_marker_rounds']['p50']:.1f} ms")
        lines.append("2. POST -> ACTIVE, qemu/TCG, image cached")
        lines.append(f"   {rng(q['post_to_active_s'])}")
        lines.append(f"   DELETE -> 404: {rng(q['delete_to_gone_s'])}")
        first = q["first_boot_uncached_image"]
        lines.append(f"   (first boot, image not cached: ACTIVE {first['post_to_active_s']:.2f} s, "
                     f"marker {first['post_to_marker_s']:.2f} s)")
        lines.append(f"3. to ONESTACK-GUEST-UP on the serial console (-machine {q['machine']}), "
                     f"order {q['marker_order']}")
        lines.append(f"   onestack POST -> marker         {rng(q['post_to_marker_onestack_s'])}")
        lines.append(f"   plain qemu launch -> marker     {rng(q['launch_to_marker_plain_qemu_s'])}")
        lines.append(f"   ratio of medians                {q['marker_ratio_of_medians']:.3f}  (target <= 1.15)")
        lines.append(f"   onestack's share: POST -> its QEMU process starts {rng(q['onestack_post_to_qemu_start_s'])};")
        lines.append(f"   its QEMU start -> marker        {rng(q['onestack_qemu_start_to_marker_s'])}")
    else:
        try:
            with open(os.path.join(results_dir, "qemu.skipped")) as f:
                why = f.read().strip()
        except FileNotFoundError:
            why = "no result (failed? see the qemu server log)"
        lines.append(f"   qemu driver: skipped: {why}")
        lines.append(f"2./3. skipped: {why}")
    if fs:
        c, d = fs["create"], fs["delete"]
        lines.append(f"4. {fs['servers']} servers, fake driver, {fs['client_threads']} client threads, "
                     f"control database {fs.get('database', 'sqlite')}")
        lines.append(f"   create: POSTs {c['post_seconds']:.2f} s ({c['creates_per_second']:.0f}/s), all ACTIVE "
                     f"after {c['until_all_active_seconds']:.2f} s; active {c['active']}, error {c['error']}")
        lines.append(f"   delete: DELETEs {d['delete_seconds']:.2f} s ({d['deletes_per_second']:.0f}/s), all gone "
                     f"after {d['until_all_gone_seconds']:.2f} s")
        lines.append(f"   memory: VmRSS idle before {fs['rss_idle_before_mib']} MiB, with {fs['servers']} servers "
                     f"{fs['rss_with_servers_mib']} MiB, idle after {fs['rss_idle_after_mib']} MiB; "
                     f"VmHWM {fs['vmhwm_mib']} MiB")
        lines.append(f"5. listing with {fs['servers']} servers (sequential GETs)")
        lines.append(f"   GET /servers/detail?limit=100   {ms(fs['get_ms_servers_detail_limit100'])}  (target p50 < 20)")
        lines.append(f"   GET /servers?limit=100          {ms(fs['get_ms_servers_limit100'])}")
        lines.append(f"   (GET /servers/detail, all {fs['servers']}: {ms(fs['get_full_detail_ms'])})")
        if "cli_server_list_long_ms" in fs:
            lines.append(f"   openstack server list --long    {ms(fs['cli_server_list_long_ms'])}")
    else:
        lines.append("4./5. skipped (FAKE=0)")
    retried = {name: d.get("delete_409_retried", 0) for name, d in (("fake-create", fc), ("fake-scale", fs), ("qemu", q)) if d}
    if any(retried.values()):
        lines.append("note: DELETE answered 409 (server changed by the agent meanwhile) and was retried: "
                     + ", ".join(f"{k} {v}x" for k, v in retried.items()))
    lines.append("=" * 67)
    print("\n".join(lines))


PHASES = {"fake-create": fake_create, "fake-scale": fake_scale, "qemu": qemu}

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] in PHASES:
        out = PHASES[sys.argv[1]]()
        out["delete_409_retried"] = len(CONFLICTS)
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        raise SystemExit(__doc__)
