#!/usr/bin/env python3
"""Issue 18's figures for block storage, against a running onestack (started by
bench/volume-guest.sh figures). Prints one JSON document:

  blank_10g      POST a 10 GiB blank volume -> available, ROUNDS times
  from_image     a volume from a 1 GiB raw image of random data -> available, beside
                 `qemu-img convert -f raw -O qcow2` of the same file on the same disk
  hot_plug       POST os-volume_attachments -> the running guest's console says it has
                 the disk (its script polls every 10 ms), ROUNDS times
  backup         whole backup of that 1 GiB volume -> available, and its restore into a new
                 volume -> available, beside `dd bs=1M conv=fdatasync` of the volume's file
  guest_write    SEQ_MIB MiB written with dd (conv=fsync) inside a guest to an attached
                 volume: the guest started by onestack, and the same QEMU command line
                 started by hand (same file, same options), alternated, ROUNDS times each
  list_long      GET /volumes/detail (what `openstack volume list --long` asks) with
                 SCALE volumes, to the last byte of the reply, LIST_GETS times; and the CLI
                 command itself, 3 times

ONLY=part,part runs just those parts. Times are client-side wall clock, except guest_write (the guest's /proc/uptime around dd);
percentiles are nearest-rank.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from osapi import URL, request, token  # noqa: E402
from volume_common import (  # noqa: E402
    DATA, NOVA, V3, backup_status, console, delete_server, must, new_volume, pct,
    server_status, stats, until, upload_image, wait_volume)

ROUNDS = int(os.environ.get("ROUNDS", "5"))
SEQ_MIB = int(os.environ.get("SEQ_MIB", "128"))
SCALE = int(os.environ.get("SCALE", "1000"))
LIST_GETS = int(os.environ.get("LIST_GETS", "100"))
GUEST = os.environ["GUEST_DIR"]
OPENSTACK = os.environ.get("OPENSTACK_CLI", "openstack")
# ONLY=guest_write,list_long runs just those parts.
ONLY = [part for part in os.environ.get("ONLY", "").split(",") if part]


def wanted(part):
    return not ONLY or part in ONLY

# Says when /dev/vdb comes and goes, polling every 10 ms.
WATCH = """#!/bin/sh
while true; do
  while [ ! -b /dev/vdb ]; do usleep 10000; done
  echo VOLUME-SEEN > /dev/ttyS0
  while [ -b /dev/vdb ]; do usleep 10000; done
  echo VOLUME-GONE > /dev/ttyS0
done
"""

# At every boot: writes SEQ_MIB MiB to /dev/vdb and says how long it took (guest uptime).
WRITE = f"""#!/bin/sh
while [ ! -b /dev/vdb ]; do usleep 10000; done
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/zero of=/dev/vdb bs=1M count={SEQ_MIB} conv=fsync 2>/dev/null
t1=$(cut -d' ' -f1 /proc/uptime)
echo "WRITE-DONE $t0 $t1" > /dev/ttyS0
"""


def timed(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def median(values):
    return pct(values, 50)


def guest_body(flavor, image, name, script):
    return {"flavorRef": flavor, "imageRef": image, "networks": "none", "name": name,
            "config_drive": True, "user_data": base64.b64encode(script.encode()).decode()}


def boot_active(tok, body):
    sid = must(tok, 202, "POST", f"{NOVA}/servers", {"server": body})["server"]["id"]
    until("ACTIVE", lambda: server_status(tok, sid) == "ACTIVE", poll=0.05)
    return sid


def attach(tok, sid, vid):
    status, body = request(tok, "POST", f"{NOVA}/servers/{sid}/os-volume_attachments",
                           {"volumeAttachment": {"volumeId": vid}})
    assert status == 200, (status, body)


def detach(tok, sid, vid):
    status, body = request(tok, "DELETE", f"{NOVA}/servers/{sid}/os-volume_attachments/{vid}")
    assert status == 202, (status, body)
    wait_volume(tok, vid, "available")


def server_action(tok, sid, action, want):
    must(tok, 202, "POST", f"{NOVA}/servers/{sid}/action", {action: None})
    until(want, lambda: server_status(tok, sid) == want, poll=0.05)


def blank_10g(tok):
    times = []
    for i in range(ROUNDS * 4):
        t0 = time.perf_counter()
        vid = new_volume(tok, {"size": 10, "name": f"blank-{i}"})
        times.append(time.perf_counter() - t0)
        must(tok, 202, "DELETE", f"{V3}/volumes/{vid}")
    return stats(times)


def from_image(tok, raw):
    image = upload_image(tok, "random-1g", raw)
    made, reference = [], []
    vid = None
    for i in range(3):
        if vid:
            must(tok, 202, "DELETE", f"{V3}/volumes/{vid}")
        t0 = time.perf_counter()
        vid = new_volume(tok, {"size": 1, "imageRef": image, "name": f"from-image-{i}"})
        made.append(time.perf_counter() - t0)
        out = os.path.join(DATA, "reference.qcow2")
        reference.append(timed(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out]))
        os.remove(out)
    return vid, {"volume_s": [round(t, 2) for t in made],
                 "qemu_img_convert_s": [round(t, 2) for t in reference],
                 "ratio_of_medians": round(median(made) / median(reference), 2)}


def backup_and_restore(tok, vid):
    volume_file = os.path.join(DATA, "volumes", f"volume-{vid}")
    copy = os.path.join(DATA, "dd.out")
    dd = []
    for _ in range(3):
        dd.append(timed(["dd", f"if={volume_file}", f"of={copy}", "bs=1M", "conv=fdatasync"]))
        os.remove(copy)
    mib = os.path.getsize(volume_file) / (1 << 20)
    backups, restores = [], []
    for i in range(3):
        t0 = time.perf_counter()
        bid = must(tok, 202, "POST", f"{V3}/backups",
                   {"backup": {"volume_id": vid, "name": f"full-{i}"}})["backup"]["id"]
        until("backup available", lambda: backup_status(tok, bid) == "available")
        wait_volume(tok, vid, "available")
        backups.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        restored = must(tok, 202, "POST", f"{V3}/backups/{bid}/restore",
                        {"restore": {}})["restore"]["volume_id"]
        wait_volume(tok, restored, "available")
        restores.append(time.perf_counter() - t0)
        must(tok, 202, "DELETE", f"{V3}/volumes/{restored}")
        must(tok, 202, "DELETE", f"{V3}/backups/{bid}")
        until("backup gone", lambda: request(tok, "GET", f"{V3}/backups/{bid}")[0] == 404)
    rate = lambda seconds: round(mib / median(seconds), 1)  # noqa: E731
    return {"volume_file_mib": round(mib, 1),
            "dd_fdatasync_s": [round(t, 2) for t in dd], "dd_mib_s": rate(dd),
            "backup_s": [round(t, 2) for t in backups], "backup_mib_s": rate(backups),
            "restore_s": [round(t, 2) for t in restores], "restore_mib_s": rate(restores),
            "backup_vs_dd": round(median(dd) / median(backups), 2),
            "restore_vs_dd": round(median(dd) / median(restores), 2)}


def hot_plug(tok, flavor, image):
    sid = boot_active(tok, guest_body(flavor, image, "plug", WATCH))
    until("the guest's marker", lambda: "ONESTACK-GUEST-UP" in console(sid), poll=0.05)
    times = []
    for i in range(ROUNDS):
        vid = new_volume(tok, {"size": 1, "name": f"plug-{i}"})
        seen = console(sid).count("VOLUME-SEEN")
        t0 = time.perf_counter()
        attach(tok, sid, vid)
        until("the guest to see the disk", lambda: console(sid).count("VOLUME-SEEN") > seen,
              timeout=60, poll=0.005)
        times.append(time.perf_counter() - t0)
        detach(tok, sid, vid)
        must(tok, 202, "DELETE", f"{V3}/volumes/{vid}")
    delete_server(tok, sid)
    return stats(times)


def write_seconds(text, after):
    """The dd time of the first WRITE-DONE line past offset `after` of a console log."""
    for line in text[after:].splitlines():
        if "WRITE-DONE" in line:
            t0, t1 = line.split("WRITE-DONE", 1)[1].split()[:2]
            return float(t1) - float(t0)
    return None


def by_hand(argv, instance, run_dir):
    """Runs the guest's own QEMU command line by hand (console, pid file and sockets moved
    to `run_dir`) until the guest reports its write; returns the dd time."""
    moved = {os.path.join(instance, name): os.path.join(run_dir, name)
             for name in ("console.log", "qemu.pid", "qmp.sock", "vnc.sock")}
    args = []
    for arg in argv:
        for old, new in moved.items():
            arg = arg.replace(old, new)
        args.append(arg)
    for path in moved.values():
        if os.path.exists(path):
            os.remove(path)
    subprocess.run(args, check=True, capture_output=True)
    log = moved[os.path.join(instance, "console.log")]
    try:
        return until("the hand-started guest's write", lambda: write_seconds(
            open(log, errors="replace").read() if os.path.exists(log) else "", 0), timeout=300,
            poll=0.1)
    finally:
        pidfile = moved[os.path.join(instance, "qemu.pid")]
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
        until("the hand-started QEMU to exit", lambda: not os.path.exists(f"/proc/{pid}"))


def guest_write(tok, flavor, image):
    vid = new_volume(tok, {"size": 1, "name": "seq"})
    sid = boot_active(tok, guest_body(flavor, image, "writer", WRITE))
    server_action(tok, sid, "os-stop", "SHUTOFF")
    attach(tok, sid, vid)
    wait_volume(tok, vid, "in-use")
    instance = os.path.join(DATA, "compute", "instances", sid)
    run_dir = os.path.join(DATA, "by-hand")
    os.makedirs(run_dir, exist_ok=True)
    onestack, hand = [], []
    argv = None
    # Round 0 only warms up: its write allocates the clusters that later rounds overwrite.
    for round_ in range(ROUNDS + 1):
        offset = len(console(sid))
        server_action(tok, sid, "os-start", "ACTIVE")
        if argv is None:
            with open(os.path.join(instance, "qemu.pid")) as f:
                pid = f.read().strip()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
        took = until("the guest's write", lambda: write_seconds(console(sid), offset),
                     timeout=300, poll=0.1)
        server_action(tok, sid, "os-stop", "SHUTOFF")
        if round_ == 0:
            continue
        onestack.append(took)
        hand.append(by_hand(argv, instance, run_dir))
    delete_server(tok, sid)
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"mib": SEQ_MIB,
            "onestack_s": [round(t, 2) for t in onestack],
            "by_hand_s": [round(t, 2) for t in hand],
            "onestack_mib_s": round(SEQ_MIB / median(onestack), 1),
            "by_hand_mib_s": round(SEQ_MIB / median(hand), 1),
            "ratio": round(median(hand) / median(onestack), 3),
            "qemu_argv": argv}


def list_long(tok):
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: must(tok, 202, "POST", f"{V3}/volumes",
                                           {"volume": {"size": 1, "name": f"many-{i}"}})
                            ["volume"]["id"], range(SCALE)))
    def all_available():
        listed = must(tok, 200, "GET", f"{V3}/volumes/detail")["volumes"]
        return len(listed) >= SCALE and all(v["status"] == "available" for v in listed)
    until("all volumes available", all_available, timeout=600, poll=1)
    # The reply's bytes, not their decoding: Python's json.loads of the 0.9 MB takes 13 ms,
    # which is the client's time, not the cloud's.
    req = urllib.request.Request(URL + f"{V3}/volumes/detail", headers={"X-Auth-Token": tok})
    gets = []
    for _ in range(LIST_GETS):
        t0 = time.perf_counter()
        with urllib.request.urlopen(req) as r:
            data = r.read()
        gets.append(time.perf_counter() - t0)
    body = json.loads(data)
    cli = [timed([OPENSTACK, "volume", "list", "--long", "-f", "value"]) for _ in range(3)]
    return {"volumes": len(ids), "listed_per_get": len(body["volumes"]),
            "get_detail": stats(gets), "cli_s": [round(t, 2) for t in cli]}


def main():
    tok = token()
    image = upload_image(tok, "guest", os.path.join(GUEST, "disk.img"))
    flavor = must(tok, 200, "POST", f"{NOVA}/flavors",
                  {"flavor": {"name": "bench.guest", "ram": 256, "vcpus": 1, "disk": 1}})["flavor"]["id"]
    raw = os.path.join(DATA, "random.raw")
    with open(raw, "wb") as f:
        for _ in range(1024 if wanted("from_image") or wanted("backup") else 0):
            f.write(os.urandom(1 << 20))
    result = {"rounds": ROUNDS}
    if wanted("blank_10g"):
        result["blank_10g"] = blank_10g(tok)
    if wanted("from_image") or wanted("backup"):
        vid, result["from_image"] = from_image(tok, raw)
        result["backup"] = backup_and_restore(tok, vid)
        must(tok, 202, "DELETE", f"{V3}/volumes/{vid}")
    os.remove(raw)
    if wanted("hot_plug"):
        result["hot_plug"] = hot_plug(tok, flavor, image)
    if wanted("guest_write"):
        result["guest_write"] = guest_write(tok, flavor, image)
    if wanted("list_long"):
        result["list_long"] = list_long(tok)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
