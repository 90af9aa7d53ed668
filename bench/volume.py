#!/usr/bin/env python3
"""Block storage benchmark against a running onestack (started by bench/volume.sh).

Prints one JSON document: POST /volumes latency and create -> available over ROUNDS volumes
made one after another; extend -> grown and DELETE -> gone over the same volumes; SCALE
volumes made by WORKERS client threads (wall time, all available); GET /volumes/detail?limit=100
latency with SCALE volumes (LIST_GETS gets); disk used by the SCALE volume files; VmHWM and
VmRSS of onestack. Times are client-side wall clock; percentiles are nearest-rank.
"""
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from osapi import request, token  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "50"))
SCALE = int(os.environ.get("SCALE", "1000"))
WORKERS = int(os.environ.get("WORKERS", "8"))
LIST_GETS = int(os.environ.get("LIST_GETS", "200"))
V3 = "/volume/v3"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def stats(values_s):
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 2), "p90_ms": round(pct(ms, 90), 2),
            "p99_ms": round(pct(ms, 99), 2), "mean_ms": round(statistics.mean(ms), 2)}


def wait(tok, vid, done, deadline_s=60):
    end = time.perf_counter() + deadline_s
    while time.perf_counter() < end:
        status, body = request(tok, "GET", f"{V3}/volumes/{vid}")
        if done(status, body):
            return
        time.sleep(0.005)
    raise SystemExit(f"volume {vid} did not get there in {deadline_s} s")


def available(status, body):
    if status == 200 and body["volume"]["status"] == "error":
        raise SystemExit(f"volume went to error: {body}")
    return status == 200 and body["volume"]["status"] == "available"


def create(tok, name, size=1):
    t0 = time.perf_counter()
    status, body = request(tok, "POST", f"{V3}/volumes", {"volume": {"size": size, "name": name}})
    elapsed = time.perf_counter() - t0
    if status != 202:
        raise SystemExit(f"create: {status} {body}")
    return body["volume"]["id"], elapsed


def proc_kib(field):
    with open(f"/proc/{os.environ['ONESTACK_PID']}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    tok = token()
    post, ready, grow, gone, ids = [], [], [], [], []
    for i in range(ROUNDS):
        t0 = time.perf_counter()
        vid, elapsed = create(tok, f"seq-{i}")
        post.append(elapsed)
        wait(tok, vid, available)
        ready.append(time.perf_counter() - t0)
        ids.append(vid)
    for vid in ids:
        t0 = time.perf_counter()
        status, body = request(tok, "POST", f"{V3}/volumes/{vid}/action", {"os-extend": {"new_size": 2}})
        assert status == 202, (status, body)
        wait(tok, vid, lambda s, b: available(s, b) and b["volume"]["size"] == 2)
        grow.append(time.perf_counter() - t0)
    for vid in ids:
        t0 = time.perf_counter()
        status, body = request(tok, "DELETE", f"{V3}/volumes/{vid}")
        assert status == 202, (status, body)
        wait(tok, vid, lambda s, b: s == 404)
        gone.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        made = list(pool.map(lambda i: create(tok, f"scale-{i}")[0], range(SCALE)))
    posted = time.perf_counter() - t0
    for vid in made:
        wait(tok, vid, available, deadline_s=600)
    all_ready = time.perf_counter() - t0
    lists = []
    for _ in range(LIST_GETS):
        t1 = time.perf_counter()
        status, body = request(tok, "GET", f"{V3}/volumes/detail?limit=100")
        lists.append(time.perf_counter() - t1)
        assert status == 200 and len(body["volumes"]) == 100, status
    du = subprocess.run(["du", "-sk", os.path.join(os.environ["BENCH_DATA"], "volumes")],
                        capture_output=True, text=True, check=True).stdout.split()[0]
    print(json.dumps({
        "sequential": {"rounds": ROUNDS, "post": stats(post), "create_to_available": stats(ready),
                       "extend_to_grown": stats(grow), "delete_to_gone": stats(gone)},
        "scale": {"volumes": SCALE, "workers": WORKERS, "posted_s": round(posted, 2),
                  "all_available_s": round(all_ready, 2),
                  "detail_limit_100": stats(lists),
                  "disk_used_kib": int(du), "disk_used_per_volume_kib": round(int(du) / SCALE, 1)},
        "onestack_vm_hwm_mib": round(proc_kib("VmHWM") / 1024, 1),
        "onestack_vm_rss_mib": round(proc_kib("VmRSS") / 1024, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
