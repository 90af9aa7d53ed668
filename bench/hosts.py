"""Many hosts: how long from `onestack join URL --token T` (the process started) until the
controller lists the host `up` in `GET /os-services`, over ROUNDS joins of new hosts (each
with its own data directory and name), polled every 20 ms. Prints JSON.

Run by bench/hosts.sh with the controller's admin-openrc in the environment."""
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osapi  # noqa: E402

BIN, DATA, WORK = os.environ["ONESTACK_BIN"], os.environ["ONESTACK_DATA"], os.environ["BENCH_WORK"]
ROUNDS = int(os.environ.get("ROUNDS", "10"))


def host_up(token, name):
    status, body = osapi.request(token, "GET", "/compute/v2.1/os-services")
    if status != 200:
        raise SystemExit(f"os-services: {status} {body}")
    return any(s["host"] == name and s["state"] == "up" for s in body["services"])


def one_join(token, i):
    name = f"bench-host-{i}"
    issued = subprocess.run([BIN, "join-token", "--data-dir", DATA], capture_output=True,
                            text=True, check=True).stdout.strip()
    env = dict(os.environ, ONESTACK_COMPUTE__DRIVER="fake")
    started = time.perf_counter()
    agent = subprocess.Popen([BIN, "join", osapi.URL, "--token", issued, "--name", name,
                              "--data-dir", os.path.join(WORK, name)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not host_up(token, name):
            if time.perf_counter() - started > 30:
                raise SystemExit(f"{name} not up after 30 s")
            if agent.poll() is not None:
                raise SystemExit(f"onestack join exited with {agent.returncode}")
            time.sleep(0.02)
        return (time.perf_counter() - started) * 1000
    finally:
        agent.terminate()
        agent.wait()


def main():
    token = osapi.token()
    times = [one_join(token, i) for i in range(ROUNDS)]
    print(json.dumps({"rounds": ROUNDS, "join_to_up_ms": {
        "median": round(statistics.median(times), 1), "min": round(min(times), 1),
        "max": round(max(times), 1), "all": [round(t, 1) for t in times]}}, indent=1))


if __name__ == "__main__":
    main()
