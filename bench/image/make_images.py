#!/usr/bin/env python3
"""Create N images through the Image v2 API: POST {BASE}/v2/images, keep-alive connections
(http.client), CONNS connections in parallel. Stops at the first answer that is not 201 and
prints that exact request and response.

usage: make_images.py BASE_URL TOKEN N [CONNS=4] [NAME_PREFIX=list]
  BASE_URL e.g. http://127.0.0.1:5200/image   -> prints "created=N seconds=S per_s=R"
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def worker(base, token, ids, prefix, failures):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
    path = u.path.rstrip("/") + "/v2/images"
    for i in ids:
        if failures:
            return
        body = json.dumps({"name": f"{prefix}-{i:05d}", "disk_format": "raw", "container_format": "bare"})
        headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
                if attempt == 2:
                    failures.append(f"POST {base}/v2/images body={body}: {type(e).__name__}: {e}")
                    return
        if resp.status != 201:
            failures.append(f"POST {base}/v2/images\nrequest headers: Content-Type: application/json, "
                            f"X-Auth-Token: <token>\nrequest body: {body}\n"
                            f"response: {resp.status} {resp.reason}\n"
                            + "".join(f"{k}: {v}\n" for k, v in resp.getheaders())
                            + f"\n{data[:2000].decode(errors='replace')}")
            return
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)


def main():
    base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    prefix = sys.argv[5] if len(sys.argv) > 5 else "list"
    failures = []
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(base, token, range(k, n, conns), prefix, failures))
               for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    if failures:
        sys.stderr.write("image create failed:\n" + failures[0] + "\n")
        sys.exit(1)
    print(f"created={n} seconds={dt:.2f} per_s={n / dt:.1f}")


if __name__ == "__main__":
    main()
