#!/usr/bin/env python3
"""Login latency of a real user while a flood of logins for made-up users runs.

Measures the password-method token issue of the admin (real bcrypt hash) idle, then while
FLOODERS threads keep sending logins for unknown users, and reports the flood's answers
(401 refused at once when its queue is full). Prints one JSON object.

env: OS_AUTH_URL, OS_PASSWORD (admin), FLOODERS=64, SAMPLES=20
"""
import json
import os
import statistics
import threading
import time
import urllib.error
import urllib.request

AUTH = os.environ["OS_AUTH_URL"].rstrip("/") + "/auth/tokens"
PASSWORD = os.environ["OS_PASSWORD"]
FLOODERS = int(os.environ.get("FLOODERS", "64"))
SAMPLES = int(os.environ.get("SAMPLES", "20"))


def login(user, password, project=None):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}}
    if project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    req = urllib.request.Request(AUTH, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.perf_counter() - start


def real_logins(n):
    times = []
    for _ in range(n):
        status, t = login("admin", PASSWORD, "admin")
        assert status == 201, status
        times.append(t * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def main():
    idle = real_logins(SAMPLES)
    stop = threading.Event()
    flood = {"answers": 0, "fast_401": 0, "other": 0}
    lock = threading.Lock()

    def flooder(i):
        while not stop.is_set():
            status, t = login(f"nobody-{i}", "guess")
            with lock:
                flood["answers"] += 1
                if status == 401 and t < 0.01:
                    flood["fast_401"] += 1
                elif status != 401:
                    flood["other"] += 1

    threads = [threading.Thread(target=flooder, args=(i,), daemon=True) for i in range(FLOODERS)]
    for t in threads:
        t.start()
    time.sleep(2)
    started = time.perf_counter()
    loaded = real_logins(SAMPLES)
    elapsed = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join(timeout=130)
    print(json.dumps({"flooders": FLOODERS, "samples": SAMPLES, "idle": idle,
                      "under_flood": loaded, "flood": flood,
                      "flood_rate_per_s": round(flood["answers"] / (elapsed + 2), 1)}, indent=2))


if __name__ == "__main__":
    main()
