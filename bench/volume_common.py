"""What the block storage benchmarks share: waits with deadlines, volume and server
states, uploads and boots through the APIs (urllib only, through osapi)."""
import os
import statistics
import time

from osapi import request

DATA = os.environ["BENCH_DATA"]
V3 = "/volume/v3"
NOVA = "/compute/v2.1"
MARKER = "ONESTACK-GUEST-UP"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def stats(values_s):
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 1), "p90_ms": round(pct(ms, 90), 1),
            "mean_ms": round(statistics.mean(ms), 1)}


def must(tok, expect, method, path, body=None, headers=None):
    status, reply = request(tok, method, path, body, headers=headers)
    if status != expect:
        raise SystemExit(f"{method} {path}: {status} {reply}")
    return reply


def until(what, check, timeout=300, poll=0.01):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        found = check()
        if found:
            return found
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")


def volume_status(tok, vid):
    status, body = request(tok, "GET", f"{V3}/volumes/{vid}")
    if status == 200 and body["volume"]["status"].startswith("error"):
        raise SystemExit(f"volume went to error: {body}")
    return body["volume"]["status"] if status == 200 else None


def wait_volume(tok, vid, want):
    until(f"volume {vid} {want}", lambda: volume_status(tok, vid) == want)


def backup_status(tok, bid):
    body = must(tok, 200, "GET", f"{V3}/backups/{bid}")["backup"]
    if body["status"] == "error":
        raise SystemExit(f"backup went to error: {body}")
    return body["status"]


def new_volume(tok, body):
    vid = must(tok, 202, "POST", f"{V3}/volumes", {"volume": body})["volume"]["id"]
    wait_volume(tok, vid, "available")
    return vid


def upload_image(tok, name, path):
    image = must(tok, 201, "POST", "/image/v2/images",
                 {"name": name, "disk_format": "raw", "container_format": "bare"})
    with open(path, "rb") as f:
        data = f.read()
    status, body = request(tok, "PUT", f"/image/v2/images/{image['id']}/file", data=data,
                           content_type="application/octet-stream")
    if status != 204:
        raise SystemExit(f"upload: {status} {body}")
    return image["id"]


def server_status(tok, sid):
    body = must(tok, 200, "GET", f"{NOVA}/servers/{sid}")["server"]
    if body["status"] == "ERROR":
        raise SystemExit(f"server went to ERROR: {body}")
    return body["status"]


def console(sid):
    """The guest's console log so far ('' before it has one)."""
    path = os.path.join(DATA, "compute", "instances", sid, "console.log")
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def console_has_marker(sid):
    return MARKER in console(sid)


def boot(tok, body):
    """(POST -> ACTIVE s, POST -> marker s, server id)."""
    t0 = time.perf_counter()
    sid = must(tok, 202, "POST", f"{NOVA}/servers", {"server": body})["server"]["id"]
    until("ACTIVE", lambda: server_status(tok, sid) == "ACTIVE", poll=0.02)
    active = time.perf_counter() - t0
    until("the marker", lambda: console_has_marker(sid), poll=0.02)
    return active, time.perf_counter() - t0, sid


def delete_server(tok, sid):
    must(tok, 204, "DELETE", f"{NOVA}/servers/{sid}")
    until("gone", lambda: request(tok, "GET", f"{NOVA}/servers/{sid}")[0] == 404)
