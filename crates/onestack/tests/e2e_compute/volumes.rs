//! Volumes in a real guest, through the `openstack` CLI: hot-plugged into a running guest
//! that finds the disk by its serial and writes to it, grown under it, kept across an
//! onestack restart, unplugged again with the bytes in the volume's file, plugged into a
//! stopped guest at its next start, read by a second guest, and read back after a
//! snapshot, a backup of it and a restore. No network is involved, so no root is needed.

use std::collections::HashMap;
use std::process::Command;

use super::{console, guest_image_and_tiny_flavor, test_guest, within};
use crate::{Server, free_port, ok, ok_json};

/// Run by the guest at every boot: when `/dev/vdb` comes it says so, with the disk's serial,
/// size and the marker a guest wrote on it before, then writes its own marker (its
/// hostname); it says when the disk grows and when it goes.
const WATCH_VDB: &str = "#!/bin/sh
while true; do
  while [ ! -b /dev/vdb ]; do usleep 200000; done
  size=$(cat /sys/block/vdb/size)
  held=$(dd if=/dev/vdb bs=64 count=1 2>/dev/null | tr -cd 'a-z0-9=. -')
  echo \"VOLUME-SEEN serial=$(cat /sys/block/vdb/serial) sectors=$size held=[$held]\" > /dev/ttyS0
  echo \"onestack-volume-data from=$(hostname)\" | dd of=/dev/vdb bs=512 conv=sync 2>/dev/null
  sync
  echo VOLUME-WRITTEN > /dev/ttyS0
  while [ -b /dev/vdb ]; do
    now=$(cat /sys/block/vdb/size 2>/dev/null)
    if [ -n \"$now\" ] && [ \"$now\" != \"$size\" ]; then
      size=$now
      echo \"VOLUME-SIZE sectors=$size\" > /dev/ttyS0
    fi
    usleep 200000
  done
  echo VOLUME-GONE > /dev/ttyS0
done
";

fn volume_status(env: &HashMap<String, String>, volume: &str) -> String {
    ok_json(env, &["volume", "show", volume])["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn wait_volume(env: &HashMap<String, String>, volume: &str, status: &str) {
    within(90, &format!("volume {volume} to become {status}"), || {
        volume_status(env, volume) == status
    });
}

/// Boots test guest `name` from `image` on e2e.tiny with no network and a config drive,
/// with `extra` options; returns the server once ACTIVE and its marker is on the console.
fn boot_guest(
    env: &HashMap<String, String>,
    image: &str,
    extra: &[&str],
    name: &str,
) -> serde_json::Value {
    let mut args = vec![
        "server",
        "create",
        "--flavor",
        "e2e.tiny",
        "--image",
        image,
        "--nic",
        "none",
        "--config-drive",
        "true",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--wait", name]);
    let server = ok_json(env, &args);
    assert_eq!(server["status"], "ACTIVE", "{server}");
    within(90, &format!("{name}'s marker"), || {
        console(env, name).contains(&format!("ONESTACK-GUEST-UP hostname={name}"))
    });
    server
}

/// Boots test guest `name` with no network that runs `script` at every boot.
fn boot_watcher(
    env: &HashMap<String, String>,
    script: &std::path::Path,
    name: &str,
) -> serde_json::Value {
    let script = script.to_str().expect("a UTF-8 path");
    boot_guest(env, "guest", &["--user-data", script], name)
}

/// How often `marker` is on the guest's console.
fn seen(env: &HashMap<String, String>, server: &str, marker: &str) -> usize {
    console(env, server).matches(marker).count()
}

#[test]
fn volumes_plug_into_a_real_guest_with_the_cli() {
    let guest = test_guest();
    let dir = crate::CloudDir::new();
    let port = free_port();
    let server = Server::start_on(dir.path(), port);
    let admin = server.admin_env();
    guest_image_and_tiny_flavor(&admin, &guest);
    let script = dir.path().join("watch-vdb.sh");
    std::fs::write(&script, WATCH_VDB).unwrap();
    let volume = ok_json(&admin, &["volume", "create", "--size", "1", "data"]);
    let volume_id = volume["id"].as_str().unwrap().to_owned();
    let serial = &volume_id[..20];
    wait_volume(&admin, "data", "available");
    let vm = boot_watcher(&admin, &script, "vm");
    assert_eq!(vm["status"], "ACTIVE");
    within(90, "the guest's marker", || {
        console(&admin, "vm").contains("ONESTACK-GUEST-UP hostname=vm")
    });

    // Hot-plug: the running guest finds the blank disk by the volume's serial and writes.
    ok(&admin, &["server", "add", "volume", "vm", "data"]);
    wait_volume(&admin, "data", "in-use");
    within(60, "the guest to see and write the volume", || {
        let text = console(&admin, "vm");
        text.contains(&format!(
            "VOLUME-SEEN serial={serial} sectors=2097152 held=[]"
        )) && text.contains("VOLUME-WRITTEN")
    });
    // Extended while attached (3.42): the running guest sees the disk grow.
    ok(
        &admin,
        &[
            "--os-volume-api-version",
            "3.42",
            "volume",
            "set",
            "--size",
            "2",
            "data",
        ],
    );
    within(60, "the guest to see the volume grow", || {
        console(&admin, "vm").contains("VOLUME-SIZE sectors=4194304")
    });
    wait_volume(&admin, "data", "in-use");
    assert_eq!(ok_json(&admin, &["volume", "show", "data"])["size"], 2);
    let listed = ok_json(&admin, &["server", "volume", "list", "vm"]);
    assert_eq!(listed[0]["Device"], "/dev/vdb", "{listed}");
    assert_eq!(listed[0]["Volume ID"], volume_id.as_str(), "{listed}");
    let shown = ok_json(&admin, &["volume", "show", "data"]);
    assert_eq!(shown["attachments"][0]["server_id"], vm["id"], "{shown}");
    let refused = crate::openstack(&admin, &["volume", "delete", "data"]);
    assert!(!refused.status.success(), "an attached volume was deleted");

    // onestack restarts; the guest keeps running and its attachment stays.
    let (status, _) = server.stop();
    assert!(status.success());
    let server = Server::start_on(dir.path(), port);
    assert_eq!(volume_status(&admin, "data"), "in-use");
    assert_eq!(
        ok_json(&admin, &["server", "volume", "list", "vm"])[0]["Volume ID"],
        volume_id.as_str()
    );

    // Hot-unplug through the re-adopted guest: it lets go, the bytes are in the file.
    ok(&admin, &["server", "remove", "volume", "vm", "data"]);
    wait_volume(&admin, "data", "available");
    within(30, "the guest to see the volume go", || {
        seen(&admin, "vm", "VOLUME-GONE") == 1
    });
    let file = dir
        .path()
        .join("volumes")
        .join(format!("volume-{volume_id}"));
    let read = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", "read -v 0 21"])
        .arg(&file)
        .output()
        .expect("qemu-io runs");
    let dump = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "{dump}");
    assert!(dump.contains("6f 6e 65 73 74 61 63 6b 2d 76"), "{dump}");

    // A stopped guest gets the volume at its next start, and reads its own marker.
    ok(&admin, &["server", "stop", "vm"]);
    within(60, "vm to stop", || {
        super::status(&admin, "vm") == "SHUTOFF"
    });
    ok(&admin, &["server", "add", "volume", "vm", "data"]);
    wait_volume(&admin, "data", "in-use");
    ok(&admin, &["server", "start", "vm"]);
    within(90, "the restarted guest to see the volume", || {
        seen(&admin, "vm", "held=[onestack-volume-data from=vm]") == 1
    });

    // A second guest reads through the volume what the first one wrote, and writes its own.
    let vm2 = boot_watcher(&admin, &script, "vm2");
    assert_eq!(vm2["status"], "ACTIVE", "{vm2}");
    ok(&admin, &["server", "remove", "volume", "vm", "data"]);
    wait_volume(&admin, "data", "available");
    ok(&admin, &["server", "add", "volume", "vm2", "data"]);
    within(
        90,
        "the second guest to read the first one's marker",
        || {
            let text = console(&admin, "vm2");
            text.contains("held=[onestack-volume-data from=vm]") && text.contains("VOLUME-WRITTEN")
        },
    );
    // A snapshot of the volume in use (3.66; the CLI's `--force` needs an older
    // `--os-volume-api-version`, as with Cinder): the running guest's QEMU copies it.
    ok(
        &admin,
        &[
            "--os-volume-api-version",
            "3.66",
            "volume",
            "snapshot",
            "create",
            "--volume",
            "data",
            "live",
        ],
    );
    within(60, "the snapshot of the attached volume", || {
        ok_json(&admin, &["volume", "snapshot", "show", "live"])["status"] == "available"
    });
    // A forced backup of the volume in use: read from a copy the guest's QEMU takes, which
    // goes when the backup is done; the volume stays attached throughout.
    ok(
        &admin,
        &[
            "volume", "backup", "create", "--force", "--name", "live-bk", "data",
        ],
    );
    within(120, "the backup of the attached volume", || {
        ok_json(&admin, &["volume", "backup", "show", "live-bk"])["status"] == "available"
    });
    assert_eq!(volume_status(&admin, "data"), "in-use");
    within(60, "the backup's copy to go", || {
        !ok_json(&admin, &["volume", "snapshot", "list"])
            .to_string()
            .contains("backup-snap-")
    });
    ok(&admin, &["server", "remove", "volume", "vm2", "data"]);
    wait_volume(&admin, "data", "available");
    ok(
        &admin,
        &[
            "volume",
            "create",
            "--snapshot",
            "live",
            "--size",
            "2",
            "from-live",
        ],
    );
    wait_volume(&admin, "from-live", "available");
    ok(&admin, &["server", "add", "volume", "vm", "from-live"]);
    within(90, "the first guest to read the live snapshot", || {
        seen(&admin, "vm", "held=[onestack-volume-data from=vm2]") == 1
    });
    // The live backup restored holds what the second guest had written too.
    ok(&admin, &["server", "remove", "volume", "vm", "from-live"]);
    wait_volume(&admin, "from-live", "available");
    ok(
        &admin,
        &["volume", "backup", "restore", "live-bk", "live-restored"],
    );
    wait_volume(&admin, "live-restored", "available");
    ok(&admin, &["server", "add", "volume", "vm", "live-restored"]);
    within(90, "the first guest to read the live backup", || {
        seen(&admin, "vm", "held=[onestack-volume-data from=vm2]") == 2
    });

    // Snapshot, back the snapshot up, restore it into a new volume: the second guest reads
    // its own marker back from the restored volume.
    ok(
        &admin,
        &["volume", "snapshot", "create", "--volume", "data", "snap"],
    );
    within(60, "the snapshot", || {
        ok_json(&admin, &["volume", "snapshot", "show", "snap"])["status"] == "available"
    });
    ok(
        &admin,
        &[
            "volume",
            "backup",
            "create",
            "--snapshot",
            "snap",
            "--name",
            "bk",
            "data",
        ],
    );
    within(120, "the backup", || {
        ok_json(&admin, &["volume", "backup", "show", "bk"])["status"] == "available"
    });
    ok(&admin, &["volume", "backup", "restore", "bk", "restored"]);
    wait_volume(&admin, "restored", "available");
    ok(&admin, &["server", "add", "volume", "vm2", "restored"]);
    within(90, "the second guest to read the restored marker", || {
        seen(&admin, "vm2", "held=[onestack-volume-data from=vm2]") == 1
    });

    // Deleting the server gives the volume back.
    ok(&admin, &["server", "delete", "--wait", "vm2"]);
    wait_volume(&admin, "restored", "available");
    ok(&admin, &["server", "delete", "--wait", "vm"]);
    wait_volume(&admin, "from-live", "available");
    ok(&admin, &["volume", "backup", "delete", "bk"]);
    ok(&admin, &["volume", "snapshot", "delete", "snap"]);

    // Boot from a volume made from the image: the guest runs from the volume's file.
    let bfv = boot_guest(&admin, "guest", &["--boot-from-volume", "1"], "bfv");
    let listed = ok_json(&admin, &["server", "volume", "list", "bfv"]);
    assert_eq!(listed[0]["Device"], "/dev/vda", "{listed}");
    let root = listed[0]["Volume ID"].as_str().unwrap().to_owned();
    assert_eq!(volume_status(&admin, &root), "in-use");
    let instance = dir
        .path()
        .join("compute/instances")
        .join(bfv["id"].as_str().unwrap());
    assert!(
        !instance.join("disk").exists(),
        "a volume-backed guest has no root disk of its own"
    );

    // Rebuilt with the image its volume came from: the guest restarts on the same volume.
    ok(
        &admin,
        &["server", "rebuild", "--image", "guest", "--wait", "bfv"],
    );
    within(90, "the rebuilt guest's second boot", || {
        seen(&admin, "bfv", "ONESTACK-GUEST-UP hostname=bfv") == 2
    });
    assert_eq!(
        ok_json(&admin, &["server", "volume", "list", "bfv"])[0]["Volume ID"],
        root.as_str()
    );

    // Its snapshot is an image that maps a snapshot of the volume, copied under the running
    // guest; a server booted from that image runs from a new volume made from it.
    ok(
        &admin,
        &[
            "server", "image", "create", "--wait", "--name", "bfv-snap", "bfv",
        ],
    );
    let image = ok_json(&admin, &["image", "show", "bfv-snap"]);
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["size"], 0, "{image}");
    let mapping: serde_json::Value = serde_json::from_str(
        image["properties"]["block_device_mapping"]
            .as_str()
            .expect("a block_device_mapping property"),
    )
    .unwrap();
    let snapshot = mapping[0]["snapshot_id"].as_str().unwrap().to_owned();
    within(90, "the root volume's snapshot", || {
        ok_json(&admin, &["volume", "snapshot", "show", &snapshot])["status"] == "available"
    });
    boot_guest(&admin, "bfv-snap", &[], "bfv2");
    let copy = ok_json(&admin, &["server", "volume", "list", "bfv2"])[0]["Volume ID"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(copy, root);
    assert_eq!(
        ok_json(&admin, &["volume", "show", &copy])["snapshot_id"],
        snapshot.as_str()
    );
    ok(&admin, &["server", "delete", "--wait", "bfv2"]);
    ok(&admin, &["server", "delete", "--wait", "bfv"]);
    // The CLI's --boot-from-volume keeps the volume (delete_on_termination false), and
    // so does the mapping copied from it.
    wait_volume(&admin, &root, "available");
    wait_volume(&admin, &copy, "available");
    ok(&admin, &["volume", "delete", &copy]);
    ok(&admin, &["volume", "snapshot", "delete", &snapshot]);
    within(90, "the snapshot to go", || {
        !ok_json(&admin, &["volume", "snapshot", "list"])
            .to_string()
            .contains(&snapshot)
    });
    ok(&admin, &["volume", "delete", &root]);
    drop(server);
}
