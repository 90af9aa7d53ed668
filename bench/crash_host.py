"""The host side of bench/crash.py (root only): with the network agent on, what this cloud has
built on the host must be what its database says, once the agent has converged.

Everything the agent makes is named after a resource id (crates/netdrv/src/names.rs) and
carries this cloud's mark (crates/netdrv/src/owner.rs): links `<prefix><first 10 of the
id>` with the alias `onestack:<cloud id>:<host>`, the namespaces `osdhcp-<network id>` and
`osrtr-<router id>` with the mark on their `lo`, the nft tables `onestack_<first 16 of the
cloud id>` (bridge and inet), and per DHCP network one dnsmasq whose files are under
`/run/onestack/<cloud id>/network/<network id>/`. Names map back to ids by the same rules.
`HostAudit.check` finds, once the agent had `deadline_s` to converge:

- orphans: a link, namespace, dnsmasq, run-directory entry, nft table or a device named in
  the nft rules, of this cloud, whose network, port or router the database no longer has
  (or no longer wants on this host); also a link or namespace left without the mark (a kill
  between `ip … add` and the marking), recognised by an id this run has seen;
- what is missing: a bridge (and VXLAN device) per network, a tap per port bound here, the
  security-group tables while a port with port security is bound here, and for each network
  with a DHCP-enabled IPv4 subnet its DHCP port and, bound here, exactly one dnsmasq with its
  namespace, veth and files. Except: a network whose VNI a VXLAN device of another cloud
  holds (on a shared host the agent refuses it and builds nothing after the bridge) is a
  note (`HostAudit.notes`), not a finding: that is the other cloud's leftover.

`leftovers` is bench/load.sh's `host_leftovers`: what this cloud left once onestack stopped.
Other clouds' resources on the host are only read, never changed. `python3 crash_host.py
leftovers <cloud id>` prints them (bench/crash.sh, after an aborted run). Standard library
only."""
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

RUN_DIR = "/run/onestack"
NETNS_DIR = "/run/netns"
SYS_NET = "/sys/class/net"
ID_CHARS = 10
# Link and namespace prefixes (names.rs) and the kind of id that follows each.
LINK_KINDS = {"osbr-": "network", "osvx-": "network", "osvl-": "network", "osdh-": "network",
              "osdi-": "network", "ostp-": "port", "osvp-": "port", "osrp-": "port",
              "osrn-": "port", "osprobe-": None}
NS_KINDS = {"osdhcp-": "network", "osrtr-": "router"}
DHCP_OWNER = "network:dhcp"
ROUTER_OWNERS = ("network:router_interface", "network:router_gateway")
L3_OWNERS = ROUTER_OWNERS + ("network:floatingip",)
COMMAND_TIMEOUT_S = 10
POLL_S = 0.2
PR_SET_CHILD_SUBREAPER = 36


def enabled():
    """Whether the host can be audited: root, with `ip`, `nft` and `dnsmasq` at hand."""
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("ip", "nft", "dnsmasq"))


def run(*argv):
    """A command's standard output ('' when it fails or outlives COMMAND_TIMEOUT_S)."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def read(path):
    """A small file's text, stripped ('' when it cannot be read)."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def split_name(name, kinds):
    """(kind, id or id prefix) of a name made with one of `kinds`' prefixes, else None."""
    for prefix, kind in kinds.items():
        if name.startswith(prefix):
            return kind, name[len(prefix):]
    return None


def host_links():
    """{name: (alias, master)} of every link in the host's namespace."""
    out = {}
    for name in os.listdir(SYS_NET):
        try:
            master = os.path.basename(os.readlink(os.path.join(SYS_NET, name, "master")))
        except OSError:
            master = None
        out[name] = (read(os.path.join(SYS_NET, name, "ifalias")), master)
    return out


def namespaces():
    """The named network namespaces with one of our prefixes, whoever made them."""
    if not os.path.isdir(NETNS_DIR):
        return []
    return sorted(ns for ns in os.listdir(NETNS_DIR) if split_name(ns, NS_KINDS))


def namespace_alias(ns):
    """The alias of `lo` inside `ns`, where a namespace carries its owner's mark ('' if none)."""
    m = re.search(r"\balias (\S+)", run("ip", "-n", ns, "-o", "link", "show", "lo"))
    return m.group(1) if m else ""


def dnsmasq_processes(cloud):
    """{pid: network id} of the dnsmasq processes with files under this cloud's run directory
    ('?' when the command line names no pid file of a network)."""
    needle = f"{RUN_DIR}/{cloud}/"
    pid_file = re.compile(rf"^--pid-file={re.escape(needle)}network/([^/]+)/pid$")
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not argv[0].endswith("dnsmasq") or not any(needle in a for a in argv):
            continue
        nets = [m.group(1) for m in map(pid_file.match, argv) if m]
        out[int(pid)] = nets[0] if nets else "?"
    return out


def vxlan_ids():
    """{VNI: (device, alias)} of every VXLAN device in the host's namespace."""
    try:
        devices = json.loads(run("ip", "-j", "-d", "link", "show", "type", "vxlan") or "[]")
    except ValueError:
        return {}
    return {d["linkinfo"]["info_data"]["id"]: (d["ifname"], d.get("ifalias", "")) for d in devices
            if "id" in d.get("linkinfo", {}).get("info_data", {})}


def nft_tables(cloud):
    """This cloud's nft tables, as 'family name'."""
    stem = f"onestack_{cloud[:16]}"
    lines = (line.split() for line in run("nft", "list", "tables").splitlines())
    return sorted(f"{w[1]} {w[2]}" for w in lines if len(w) == 3 and w[2] == stem)


def nft_devices(tables):
    """The link names (`os…-…`) the rules of `tables` name."""
    found = set()
    for table in tables:
        found.update(re.findall(r'"(os[a-z]+-[0-9A-Za-z-]+)"', run("nft", "list", "table", *table.split())))
    return found


def run_entries(cloud):
    """What lies under /run/onestack/<cloud>/ besides the agent's state directory `network`:
    {path relative to it: network id or None}."""
    top = os.path.join(RUN_DIR, cloud)
    out = {}
    for entry in os.listdir(top) if os.path.isdir(top) else []:
        if entry != "network":
            out[entry] = None
            continue
        for net in os.listdir(os.path.join(top, entry)):
            out[f"network/{net}"] = net
    return out


def count_entries(path):
    """How many paths `find path` prints (the directory itself included)."""
    return 1 + sum(len(dirs) + len(files) for _, dirs, files in os.walk(path))


def reap_dnsmasq():
    """Makes this process the subreaper of its descendants and reaps the dnsmasq daemons that
    end under it; False when the kernel refuses. dnsmasq daemonizes, so init inherits it, and
    the agent waits until a stopped dnsmasq has left /proc (netdrv::dhcp::stop, up to 5 s,
    then SIGKILL). PID 1 on this test VM reaps only every ~2 s, which made every DHCP removal
    cost that long; a host's init (systemd) reaps at once, as this does."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        return False
    threading.Thread(target=reaper, name="reap-dnsmasq", daemon=True).start()
    return True


def reaper():
    """Reaps this process's dnsmasq zombies (never other children: subprocess waits for those)."""
    while True:
        for pid in children():
            stat = read(f"/proc/{pid}/stat")
            if stat.startswith(f"{pid} (dnsmasq) Z"):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        time.sleep(0.05)


def children():
    """The pids of this process's children (every thread's)."""
    out = []
    for task in os.listdir("/proc/self/task"):
        out += read(f"/proc/self/task/{task}/children").split()
    return [int(pid) for pid in out]


def leftovers(cloud):
    """What this cloud left on the host, in bench/load.sh's `host_leftovers` words: links and
    namespaces with its mark, its nft tables, its dnsmasq processes, its run directory."""
    mark = f"onestack:{cloud}:"
    out = [f"link {name}" for name, (alias, _) in sorted(host_links().items()) if alias.startswith(mark)]
    out += [f"netns {ns}" for ns in namespaces() if namespace_alias(ns).startswith(mark)]
    out += [f"nft table {t}" for t in nft_tables(cloud)]
    out += [f"process dnsmasq {pid}" for pid in sorted(dnsmasq_processes(cloud))]
    top = os.path.join(RUN_DIR, cloud)
    if os.path.exists(top):
        out.append(f"dir {top} ({count_entries(top)} entries)")
    return out


class Db:
    """The database as the admin API shows it: networks, subnets, ports, routers by id."""

    PATHS = {"networks": "/networking/v2.0/networks", "subnets": "/networking/v2.0/subnets",
             "ports": "/networking/v2.0/ports", "routers": "/networking/v2.0/routers"}

    def __init__(self, get):
        """Reads every collection through `get(path) -> (status, body)`; `ok` says whether all
        of them answered."""
        self.ok = True
        for name, path in self.PATHS.items():
            status, body = get(path)
            self.ok &= status == 200
            setattr(self, name, {x["id"]: x for x in (body or {}).get(name, [])})

    def find(self, kind, id_part):
        """The `kind` ('network', 'port', 'router') whose id starts with `id_part`, or None."""
        table = {"network": self.networks, "port": self.ports, "router": self.routers}.get(kind, {})
        return next((x for i, x in table.items() if id_part and i.startswith(id_part)), None)

    def dhcp_port(self, network_id):
        """The network's DHCP port (`device_id` dhcp-<network>), or None."""
        return next((p for p in self.ports.values() if p["device_owner"] == DHCP_OWNER
                     and p["device_id"] == f"dhcp-{network_id}"), None)

    def wants_dhcp(self, network_id):
        """Whether the network has an IPv4 subnet with DHCP on and a pool (so a DHCP port)."""
        return any(s["network_id"] == network_id and s["ip_version"] == 4 and s["enable_dhcp"]
                   and s.get("allocation_pools") for s in self.subnets.values())

    def explain(self, kind, id_part):
        """What the database says about the `kind` whose id starts with `id_part`."""
        if kind is None:
            return "no resource is named by it"
        x = self.find(kind, id_part)
        if x is None:
            return f"the database has no {kind} {id_part}{'…' if len(id_part) < 36 else ''}"
        if kind == "network":
            dhcp = self.dhcp_port(x["id"])
            where = f"DHCP port bound to {dhcp.get('binding:host_id')!r}" if dhcp else "no DHCP port"
            return f"network {x['id']} exists ({x.get('provider:network_type')}, {where})"
        if kind == "port":
            return (f"port {x['id']} exists (owner {x['device_owner']!r}, device {x['device_id']!r}, "
                    f"bound to {x.get('binding:host_id')!r}, network {x['network_id']})")
        return f"router {x['id']} exists"


class Want:
    """What the agent must have built on `host` for `db`: the `links` and `netns` (name: why),
    a dnsmasq for each network in `dhcp`, the nft `tables` naming `nft_required`; anything of
    this cloud outside `allowed_links`, `allowed_netns`, `dhcp` (and `blocked`) and
    `nft_allowed` must not be there."""

    def __init__(self, db, host, cloud, foreign_vnis):
        """Derives links, namespaces, DHCP networks and nft contents from the database;
        `foreign_vnis` ({VNI: (device, alias)}) are held by devices of other clouds."""
        self.links, self.netns, self.dhcp, self.problems = {}, {}, set(), []
        self.allowed_links, self.allowed_netns = set(), set()
        self.foreign_vnis, self.blocked = foreign_vnis, {}
        local = [p for p in db.ports.values() if p.get("binding:host_id") == host
                 and p["device_owner"] != DHCP_OWNER and p["device_owner"] not in L3_OWNERS]
        for net in db.networks.values():
            self.network(db, net, host)
        for port in local:
            devices = {short("ostp-", port["id"]): f"tap of port {port['id']} (bound to {host})"}
            if (port.get("binding:profile") or {}).get("interface") == "veth":
                devices[short("osvp-", port["id"])] = f"veth peer of port {port['id']}"
            if port["network_id"] in self.blocked:
                self.allowed_links.update(devices)
            else:
                self.links.update(devices)
        self.routers(db, host)
        self.allowed_links |= set(self.links)
        self.allowed_netns |= set(self.netns)
        filtered = [p for p in local if p["port_security_enabled"]]
        stem = f"onestack_{cloud[:16]}"
        self.tables = [f"bridge {stem}", f"inet {stem}"] if filtered else []
        self.nft_required = {short("ostp-", p["id"]) for p in filtered}
        self.nft_allowed = self.nft_required | {short("osbr-", n) for n in db.networks}

    def network(self, db, net, host):
        """A network's bridge and uplink, and its DHCP server when one is bound here. A VXLAN
        network whose VNI another cloud's device holds gets only its bridge (the agent refuses
        the VNI and builds nothing after it, its ports' taps neither): noted in `blocked`,
        nothing more required."""
        nid = net["id"]
        self.links[short("osbr-", nid)] = f"bridge of network {nid}"
        vni = net.get("provider:segmentation_id")
        if net.get("provider:network_type") == "vxlan" and vni in self.foreign_vnis:
            device, alias = self.foreign_vnis[vni]
            self.blocked[nid] = f"network {nid}: VNI {vni} is held by {device} of another cloud ({alias!r})"
            self.allowed_links.update({short("osvx-", nid), short("osdh-", nid)})
            self.allowed_netns.add(f"osdhcp-{nid}")
            return
        if net.get("provider:network_type") == "vxlan":
            self.links[short("osvx-", nid)] = f"VXLAN device of network {nid}"
        if net.get("provider:network_type") == "vlan":
            self.allowed_links.add(short("osvl-", nid))
        dhcp = db.dhcp_port(nid)
        if db.wants_dhcp(nid) and dhcp is None:
            self.problems.append(f"network {nid} has a DHCP-enabled IPv4 subnet but no DHCP port")
        if dhcp is not None and dhcp.get("binding:host_id") == host:
            self.dhcp.add(nid)
            self.links[short("osdh-", nid)] = f"DHCP veth of network {nid}"
            self.netns[f"osdhcp-{nid}"] = f"DHCP namespace of network {nid}"

    def routers(self, db, host):
        """Router namespaces and their veths: allowed while the router and its port exist
        (the workload makes none, so nothing of them is required)."""
        for port in db.ports.values():
            if port["device_owner"] in ROUTER_OWNERS and port.get("binding:host_id") == host \
                    and port["device_id"] in db.routers:
                self.allowed_netns.add(f"osrtr-{port['device_id']}")
                self.allowed_links.update({short("osrp-", port["id"]), short("osrn-", port["id"])})


def short(prefix, rid):
    """A link name as netdrv makes it: the prefix and the first ID_CHARS of the id."""
    return prefix + rid[:ID_CHARS]


class HostAudit:
    """Compares the host with the database for one cloud (`cloud` id, agent `host` name)."""

    def __init__(self, cloud, host):
        """Nothing is read yet; ids are learnt from the ledger and every database read."""
        self.cloud, self.host = cloud, host
        self.mark = f"onestack:{cloud}:"
        self.known = {"network": set(), "port": set(), "router": set()}
        self.foreign = set()  # namespaces another cloud marked: asked once
        self.notes = set()  # networks another cloud's devices keep the agent from building
        self.reported = set()  # findings of earlier checks: the agent does not repair them

    def learn(self, kind, ids):
        """Remembers ids this run has seen, to recognise its own unmarked leftovers."""
        if kind in self.known:
            self.known[kind].update(ids)

    def is_known(self, kind, id_part):
        """Whether some id of `kind` this run has seen starts with `id_part`."""
        return bool(id_part) and any(i.startswith(id_part) for i in self.known.get(kind, ()))

    def ours(self, name, alias, kinds):
        """Whether a link or namespace is this cloud's: its mark, or no mark and one of our ids."""
        if alias.startswith(self.mark):
            return True
        kind, id_part = split_name(name, kinds)
        return alias == "" and self.is_known(kind, id_part)

    def observe(self):
        """What this cloud has on the host now."""
        links = {n: v for n, v in host_links().items()
                 if split_name(n, LINK_KINDS) and self.ours(n, v[0], LINK_KINDS)}
        netns = {}
        for ns in namespaces():
            if ns in self.foreign:
                continue
            alias = namespace_alias(ns)
            if alias.startswith("onestack:") and not alias.startswith(self.mark):
                self.foreign.add(ns)
            elif os.path.exists(os.path.join(NETNS_DIR, ns)) and self.ours(ns, alias, NS_KINDS):
                netns[ns] = alias
        tables = nft_tables(self.cloud)
        foreign_vnis = {vni: (name, alias) for vni, (name, alias) in vxlan_ids().items()
                        if not (split_name(name, LINK_KINDS) and self.ours(name, alias, LINK_KINDS))}
        return {"links": links, "netns": netns, "tables": tables, "nft_devices": nft_devices(tables),
                "foreign_vnis": foreign_vnis,
                "dnsmasq": dnsmasq_processes(self.cloud), "run": run_entries(self.cloud)}

    def differences(self, db, want, seen):
        """Findings: orphans, then what is missing (empty when the host matches)."""
        out = list(want.problems)
        out += self.orphans(db, want, seen)
        out += self.missing(want, seen)
        return out

    def orphans(self, db, want, seen):
        """This cloud's things on the host that the database does not want here."""
        out = []
        for name, (alias, master) in sorted(seen["links"].items()):
            if name not in want.allowed_links:
                how = "marked" if alias else "UNMARKED"
                out.append(f"orphan link {name} ({how}, master {master}): "
                           f"{db.explain(*split_name(name, LINK_KINDS))}")
        for ns, alias in sorted(seen["netns"].items()):
            if ns not in want.allowed_netns:
                how = "marked" if alias else "UNMARKED"
                out.append(f"orphan namespace {ns} ({how}): {db.explain(*split_name(ns, NS_KINDS))}")
        for pid, net in sorted(seen["dnsmasq"].items()):
            if net not in want.dhcp and net not in want.blocked:
                out.append(f"orphan dnsmasq pid {pid} (network {net}): {db.explain('network', net)}")
        for path, net in sorted(seen["run"].items()):
            if net not in want.dhcp and net not in want.blocked:
                what = db.explain("network", net) if net else "not something the agent makes"
                out.append(f"orphan {RUN_DIR}/{self.cloud}/{path}: {what}")
        for table in seen["tables"]:
            if table not in want.tables:
                out.append(f"orphan nft table {table}: no port with port security is bound to {self.host}")
        for dev in sorted(seen["nft_devices"] - want.nft_allowed):
            out.append(f"nft rules of {self.cloud[:16]} name {dev}: "
                       f"{db.explain(*(split_name(dev, LINK_KINDS) or (None, '')))}")
        return out

    def missing(self, want, seen):
        """What the database wants on the host and is not there (or is there unmarked)."""
        out = []
        for name, why in sorted(want.links.items()):
            if name not in seen["links"]:
                out.append(f"missing link {name}: {why}")
            elif not seen["links"][name][0]:
                out.append(f"link {name} is not marked: {why}")
        for ns, why in sorted(want.netns.items()):
            if ns not in seen["netns"]:
                out.append(f"missing namespace {ns}: {why}")
            elif not seen["netns"][ns]:
                out.append(f"namespace {ns} is not marked: {why}")
        for net in sorted(want.dhcp):
            pids = sorted(p for p, n in seen["dnsmasq"].items() if n == net)
            if len(pids) != 1:
                out.append(f"network {net} has {len(pids)} dnsmasq of this cloud {pids}, wants exactly 1")
            if f"network/{net}" not in seen["run"]:
                out.append(f"missing {RUN_DIR}/{self.cloud}/network/{net}: DHCP files of network {net}")
        for table in want.tables:
            if table not in seen["tables"]:
                out.append(f"missing nft table {table}: ports with port security are bound to {self.host}")
        if want.tables:
            for dev in sorted(want.nft_required - seen["nft_devices"]):
                out.append(f"nft rules of {self.cloud[:16]} do not name {dev}, a port with port security")
        return out

    def check(self, get, deadline_s):
        """(new findings, all findings, seconds): polls until the host matches the database
        read through `get(path) -> (status, body)` but for what an earlier check reported
        (a leak stays, and waiting for it would only make every later check wait its whole
        deadline), or until `deadline_s`. Each finding is new once."""
        started = time.monotonic()
        while True:
            db = Db(get)
            for kind, table in (("network", db.networks), ("port", db.ports), ("router", db.routers)):
                self.learn(kind, table)
            if db.ok:
                seen = self.observe()
                want = Want(db, self.host, self.cloud, seen["foreign_vnis"])
                found = self.differences(db, want, seen)
            else:
                found = ["cannot read networks, subnets, ports and routers from the API"]
            elapsed = time.monotonic() - started
            if set(found) <= self.reported or elapsed > deadline_s:
                self.notes.update(want.blocked.values() if db.ok else ())
                new = [f for f in found if f not in self.reported]
                self.reported.update(new)
                return new, found, elapsed
            time.sleep(POLL_S)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "leftovers":
        print("\n".join(leftovers(sys.argv[2])))
    else:
        sys.exit("usage: crash_host.py leftovers <cloud id>")
