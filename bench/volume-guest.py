#!/usr/bin/env python3
"""Block storage with guests, against a running onestack (started by bench/volume-guest.sh).

Prints one JSON document: hot-plug (attach -> in-use) and unplug (detach -> available) of a
volume on a running test guest; boot from an image and from a volume made of it (POST ->
ACTIVE, POST -> the guest's marker line); a full and an incremental backup of a volume of
BACKUP_MIB random MiB (-> available, bytes in the store) and a restore into a new volume.
Times are client-side wall clock; percentiles are nearest-rank.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from osapi import request, token  # noqa: E402
from volume_common import (  # noqa: E402
    DATA, NOVA, V3, backup_status, boot, delete_server, must, new_volume, stats, until,
    upload_image, wait_volume)

ROUNDS = int(os.environ.get("ROUNDS", "5"))
BACKUP_MIB = int(os.environ.get("BACKUP_MIB", "256"))
CHANGE_MIB = int(os.environ.get("CHANGE_MIB", "16"))
GUEST = os.environ["GUEST_DIR"]


def file_kib(path):
    return int(subprocess.run(["du", "-k", path], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def main():
    tok = token()
    image = upload_image(tok, "guest", os.path.join(GUEST, "disk.img"))
    flavor = must(tok, 200, "POST", f"{NOVA}/flavors",
                  {"flavor": {"name": "bench.guest", "ram": 256, "vcpus": 1, "disk": 1}})["flavor"]["id"]
    base = {"flavorRef": flavor, "networks": "none"}
    nova_version = {"OpenStack-API-Version": "compute 2.79"}

    # Boot from the image and from a volume made of it, alternated.
    from_image, from_volume = {"active": [], "marker": []}, {"active": [], "marker": []}
    for i in range(ROUNDS):
        for kind, body in (
            (from_image, {**base, "name": f"img-{i}", "imageRef": image}),
            (from_volume, {**base, "name": f"vol-{i}", "block_device_mapping_v2": [
                {"source_type": "image", "destination_type": "volume", "uuid": image,
                 "boot_index": 0, "volume_size": 1, "delete_on_termination": True}]}),
        ):
            active, marker, sid = boot(tok, body)
            kind["active"].append(active)
            kind["marker"].append(marker)
            delete_server(tok, sid)

    # Hot-plug and unplug on one running guest.
    _, _, sid = boot(tok, {**base, "name": "attach", "imageRef": image})
    attach, detach = [], []
    for i in range(ROUNDS):
        vid = new_volume(tok, {"size": 1, "name": f"att-{i}"})
        t0 = time.perf_counter()
        status, body = request(tok, "POST", f"{NOVA}/servers/{sid}/os-volume_attachments",
                               {"volumeAttachment": {"volumeId": vid}}, headers=nova_version)
        assert status == 200, (status, body)
        wait_volume(tok, vid, "in-use")
        attach.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        status, body = request(tok, "DELETE", f"{NOVA}/servers/{sid}/os-volume_attachments/{vid}")
        assert status == 202, (status, body)
        wait_volume(tok, vid, "available")
        detach.append(time.perf_counter() - t0)
        must(tok, 202, "DELETE", f"{V3}/volumes/{vid}")
    delete_server(tok, sid)

    # Backups of a volume holding BACKUP_MIB random MiB.
    random_raw = os.path.join(DATA, "random.raw")
    with open(random_raw, "wb") as f:
        f.write(os.urandom(BACKUP_MIB << 20))
    data_image = upload_image(tok, "random", random_raw)
    os.remove(random_raw)
    t0 = time.perf_counter()
    vid = new_volume(tok, {"size": 1, "imageRef": data_image})
    from_image_s = time.perf_counter() - t0
    volume_file = os.path.join(DATA, "volumes", f"volume-{vid}")

    def back_up(incremental):
        t0 = time.perf_counter()
        bid = must(tok, 202, "POST", f"{V3}/backups",
                   {"backup": {"volume_id": vid, "incremental": incremental}})["backup"]["id"]
        until("backup available", lambda: backup_status(tok, bid) == "available")
        wait_volume(tok, vid, "available")
        return bid, time.perf_counter() - t0

    full, full_s = back_up(False)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {CHANGE_MIB}M", volume_file],
                   check=True, capture_output=True)
    incremental, incremental_s = back_up(True)
    t0 = time.perf_counter()
    restored = must(tok, 202, "POST", f"{V3}/backups/{incremental}/restore",
                    {"restore": {}})["restore"]["volume_id"]
    wait_volume(tok, restored, "available")
    restore_s = time.perf_counter() - t0
    store = os.path.join(DATA, "backups")

    print(json.dumps({
        "rounds": ROUNDS,
        "boot_from_image": {"post_to_active": stats(from_image["active"]),
                            "post_to_marker": stats(from_image["marker"])},
        "boot_from_new_volume": {"post_to_active": stats(from_volume["active"]),
                                 "post_to_marker": stats(from_volume["marker"])},
        "hot_plug": {"attach_to_in_use": stats(attach), "detach_to_available": stats(detach)},
        "backups": {
            "volume_data_mib": BACKUP_MIB, "changed_mib": CHANGE_MIB,
            "volume_from_image_s": round(from_image_s, 2),
            "full_to_available_s": round(full_s, 2),
            "full_store_kib": file_kib(os.path.join(store, f"backup-{full}")),
            "incremental_to_available_s": round(incremental_s, 2),
            "incremental_store_kib": file_kib(os.path.join(store, f"backup-{incremental}")),
            "restore_to_available_s": round(restore_s, 2),
        },
    }, indent=2))


if __name__ == "__main__":
    main()
