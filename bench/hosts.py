"""Many hosts: how long from `onestack join URL --token T` (the process started) until the
controller lists the host `up` in `GET /os-services` (it is schedulable from then on), and
until a server placed on it (no ports, the fake driver) is ACTIVE, built by the joined
agent over the agent protocol, and how long its console output takes (asked of the joined
host through its long poll); over ROUNDS joins of new hosts (each with its own data
directory and name), polled every 20 ms. Prints JSON.

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


def wait_for(what, check, started, agent):
    while not check():
        if time.perf_counter() - started > 30:
            raise SystemExit(f"not {what} after 30 s")
        if agent.poll() is not None:
            raise SystemExit(f"onestack join exited with {agent.returncode}")
        time.sleep(0.02)
    return (time.perf_counter() - started) * 1000


def server_active(token, server_id):
    status, body = osapi.request(token, "GET", f"/compute/v2.1/servers/{server_id}")
    if status != 200 or body["server"]["status"] == "ERROR":
        raise SystemExit(f"server {server_id}: {status} {body}")
    return body["server"]["status"] == "ACTIVE"


def boot_on(token, host, image, flavor):
    body = {"server": {"name": f"on-{host}", "imageRef": image, "flavorRef": flavor,
                       "networks": "none", "availability_zone": f"nova:{host}"}}
    status, reply = osapi.request(token, "POST", "/compute/v2.1/servers", body,
                                  headers={"OpenStack-API-Version": "compute 2.37"})
    if status != 202:
        raise SystemExit(f"boot on {host}: {status} {reply}")
    return reply["server"]["id"]


def image_and_flavor(token, name="bench-hosts", ram=64):
    """A tiny raw image and a flavor of `ram` MiB, 1 vCPU, 1 GB (ids)."""
    status, image = osapi.request(token, "POST", "/image/v2/images", {
        "name": name, "disk_format": "raw", "container_format": "bare"})
    if status != 201:
        raise SystemExit(f"image create: {status} {image}")
    status, _ = osapi.request(token, "PUT", f"/image/v2/images/{image['id']}/file",
                              data=b"\0" * 65536, content_type="application/octet-stream")
    if status != 204:
        raise SystemExit(f"image upload: {status}")
    status, flavor = osapi.request(token, "POST", "/compute/v2.1/flavors", {"flavor": {
        "name": name.replace("-", "."), "ram": ram, "vcpus": 1, "disk": 1}})
    if status != 200:
        raise SystemExit(f"flavor create: {status} {flavor}")
    return image["id"], flavor["flavor"]["id"]


def one_join(token, i, image, flavor):
    name = f"bench-host-{i}"
    issued = subprocess.run([BIN, "join-token", "--data-dir", DATA], capture_output=True,
                            text=True, check=True).stdout.strip()
    env = dict(os.environ, ONESTACK_COMPUTE__DRIVER="fake")
    started = time.perf_counter()
    agent = subprocess.Popen([BIN, "join", osapi.URL, "--token", issued, "--name", name,
                              "--data-dir", os.path.join(WORK, name)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        up = wait_for(f"{name} up", lambda: host_up(token, name), started, agent)
        server = boot_on(token, name, image, flavor)
        built = wait_for(f"a server ACTIVE on {name}", lambda: server_active(token, server),
                         started, agent)
        asked = time.perf_counter()
        status, reply = osapi.request(token, "POST", f"/compute/v2.1/servers/{server}/action",
                                      {"os-getConsoleOutput": {}})
        if status != 200 or "output" not in reply:
            raise SystemExit(f"console of the server on {name}: {status} {reply}")
        console = (time.perf_counter() - asked) * 1000
        osapi.request(token, "DELETE", f"/compute/v2.1/servers/{server}")
        return up, built, console
    finally:
        agent.terminate()
        agent.wait()


def main():
    token = osapi.token()
    image, flavor = image_and_flavor(token)
    rounds = [one_join(token, i, image, flavor) for i in range(ROUNDS)]

    def summary(times):
        return {"median": round(statistics.median(times), 1), "min": round(min(times), 1),
                "max": round(max(times), 1), "all": [round(t, 1) for t in times]}
    print(json.dumps({"rounds": ROUNDS,
                      "join_to_up_ms": summary([r[0] for r in rounds]),
                      "join_to_first_server_active_ms": summary([r[1] for r in rounds]),
                      "console_output_from_the_joined_host_ms": summary([r[2] for r in rounds])},
                     indent=1))


if __name__ == "__main__":
    main()
