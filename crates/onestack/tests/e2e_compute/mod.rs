//! End-to-end compute: real QEMU guests (the tiny test guest from
//! `scripts/build-test-guest.sh`) booted, driven and deleted with the `openstack` CLI.
//! Needs root (taps and bridges): fails without it, unless the run opts out
//! (`ONESTACK_TEST_SKIP=root`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{HOST_AGENT, Server, free_port, ok, ok_json, openstack, root_or_skip, workspace};

pub(crate) mod l3;
mod volumes;

/// Builds (or reuses) the test guest and returns its directory.
pub(crate) fn test_guest() -> PathBuf {
    let out = workspace().join("target/test-guest");
    let status = Command::new(workspace().join("scripts/build-test-guest.sh"))
        .arg(&out)
        .status()
        .expect("the guest build script runs");
    assert!(status.success(), "scripts/build-test-guest.sh failed");
    out
}

/// What every walkthrough makes first: the test guest's disk as image `guest`, and the
/// flavor `e2e.tiny` it boots on (returned as the CLI showed it).
pub(crate) fn guest_image_and_tiny_flavor(
    admin: &HashMap<String, String>,
    guest: &Path,
) -> serde_json::Value {
    let disk = guest.join("disk.img");
    ok(
        admin,
        &[
            "image",
            "create",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--file",
            disk.to_str().unwrap(),
            "guest",
        ],
    );
    ok_json(
        admin,
        &[
            "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "e2e.tiny",
        ],
    )
}

/// Waits up to `secs` for `check` to hold, saying what it waited for on failure.
pub(crate) fn within(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn status(env: &HashMap<String, String>, server: &str) -> String {
    ok_json(env, &["server", "show", server])["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn console(env: &HashMap<String, String>, server: &str) -> String {
    ok(env, &["console", "log", "show", server])
}

/// Runs a server action and waits for the status it leads to.
pub(crate) fn act(env: &HashMap<String, String>, args: &[&str], server: &str, expect: &str) {
    let started = Instant::now();
    ok(env, &[args, &[server]].concat());
    within(
        120,
        &format!("{server} to become {expect} after {args:?}"),
        || status(env, server) == expect,
    );
    println!(
        "{args:?} -> {expect} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// When this host's compute agent last reported (`compute service list`'s "Updated At",
/// an ISO timestamp that sorts as text).
fn compute_synced_at(env: &HashMap<String, String>) -> String {
    ok_json(env, &["compute", "service", "list"])
        .as_array()
        .and_then(|s| s.first())
        .and_then(|s| s["Updated At"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn qemu_pid(data_dir: &Path, server_id: &str) -> u32 {
    let path = data_dir
        .join("compute/instances")
        .join(server_id)
        .join("qemu.pid");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

const PROBE: &str = "#!/bin/sh
# Asks the first guest for its hostname on port 80 every second and says what happened.
while true; do
  if timeout 3 wget -q -O - http://10.77.0.10/ > /tmp/reply 2>/dev/null; then
    echo \"PROBE-OK $(cat /tmp/reply)\" > /dev/ttyS0
  else
    echo PROBE-FAIL > /dev/ttyS0
  fi
  sleep 1
done
";

#[test]
fn compute_walkthrough_with_real_guests() {
    if !root_or_skip() {
        return;
    }
    let _agent = HOST_AGENT.lock().unwrap_or_else(|e| e.into_inner());
    let guest = test_guest();
    let dir = crate::CloudDir::new();
    let port = free_port();
    let host = format!("e2e-compute-{}", std::process::id());
    let env: Vec<(&str, &str)> = vec![
        ("ONESTACK_NETWORK__AGENT", "true"),
        ("ONESTACK_NETWORK__HOST", &host),
        ("ONESTACK_COMPUTE__SYNC_SECONDS", "2"),
        ("ONESTACK_COMPUTE__SHUTDOWN_TIMEOUT_SECONDS", "5"),
    ];
    let mut server = Server::start_with(dir.path(), port, &env);
    let admin = server.admin_env();

    // What a newcomer does first: an image, a flavor, a keypair, a network without DHCP.
    let flavor = guest_image_and_tiny_flavor(&admin, &guest);
    assert_eq!(flavor["ram"], 256);
    ok(
        &admin,
        &[
            "flavor",
            "create",
            "--ram",
            "320",
            "--disk",
            "2",
            "--vcpus",
            "1",
            "e2e.small",
        ],
    );
    // Below microversion 2.92 Nova makes the keypair; the CLI prints the private key.
    let key = ok(&admin, &["keypair", "create", "k1"]);
    assert!(key.contains("PRIVATE KEY"), "{key}");
    ok(&admin, &["network", "create", "e2enet"]);
    ok(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "e2enet",
            "--subnet-range",
            "10.77.0.0/24",
            "--no-dhcp",
            "e2esub",
        ],
    );
    let net_id = ok_json(&admin, &["network", "show", "e2enet"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The first guest's group starts without the rule that lets port 80 in.
    ok(&admin, &["security", "group", "create", "web"]);
    let probe = dir.path().join("probe.sh");
    std::fs::write(&probe, PROBE).unwrap();

    let started = Instant::now();
    let vm1 = ok_json(
        &admin,
        &[
            "server",
            "create",
            "--flavor",
            "e2e.tiny",
            "--image",
            "guest",
            "--nic",
            &format!("net-id={net_id},v4-fixed-ip=10.77.0.10"),
            "--security-group",
            "web",
            "--key-name",
            "k1",
            "--wait",
            "vm1",
        ],
    );
    println!(
        "server create --wait (vm1): {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(vm1["status"], "ACTIVE");
    let vm1_id = vm1["id"].as_str().unwrap().to_owned();
    ok(
        &admin,
        &[
            "server",
            "create",
            "--flavor",
            "e2e.tiny",
            "--image",
            "guest",
            "--network",
            "e2enet",
            "--user-data",
            probe.to_str().unwrap(),
            "--wait",
            "vm2",
        ],
    );

    // The guest knows its hostname and static address from the config drive.
    within(90, "vm1's marker on its console", || {
        console(&admin, "vm1").contains("ONESTACK-GUEST-UP hostname=vm1 ip=10.77.0.10")
    });
    println!(
        "vm1 marker {:.1}s after create",
        started.elapsed().as_secs_f64()
    );
    let listed = ok(&admin, &["server", "list", "--long"]);
    assert!(
        listed.contains("vm1") && listed.contains("10.77.0.10") && listed.contains(&host),
        "{listed}"
    );

    // Port 80 is closed by vm1's group, then opened by a rule.
    within(90, "vm2's probes to run", || {
        console(&admin, "vm2").contains("PROBE-FAIL")
    });
    assert!(
        !console(&admin, "vm2").contains("PROBE-OK"),
        "port 80 must be blocked without the rule"
    );
    ok(
        &admin,
        &[
            "security",
            "group",
            "rule",
            "create",
            "--proto",
            "tcp",
            "--dst-port",
            "80",
            "web",
        ],
    );
    within(30, "vm2 to reach vm1 on port 80", || {
        console(&admin, "vm2").contains("PROBE-OK vm1")
    });

    // Every action reaches its state on a real guest.
    act(&admin, &["server", "stop"], "vm1", "SHUTOFF");
    act(&admin, &["server", "start"], "vm1", "ACTIVE");
    act(&admin, &["server", "reboot"], "vm1", "ACTIVE");
    act(&admin, &["server", "pause"], "vm1", "PAUSED");
    act(&admin, &["server", "unpause"], "vm1", "ACTIVE");
    act(&admin, &["server", "suspend"], "vm1", "SUSPENDED");
    act(&admin, &["server", "resume"], "vm1", "ACTIVE");
    act(
        &admin,
        &["server", "resize", "--flavor", "e2e.small"],
        "vm1",
        "VERIFY_RESIZE",
    );
    act(&admin, &["server", "resize", "confirm"], "vm1", "ACTIVE");
    assert_eq!(
        ok_json(&admin, &["server", "show", "vm1"])["flavor"]["original_name"],
        "e2e.small"
    );
    ok(
        &admin,
        &["server", "rebuild", "--image", "guest", "--wait", "vm1"],
    );
    assert_eq!(status(&admin, "vm1"), "ACTIVE");
    let snap = ok_json(
        &admin,
        &[
            "server", "image", "create", "--name", "vm1-snap", "--wait", "vm1",
        ],
    );
    assert_eq!(snap["status"], "active", "{snap}");
    within(90, "vm1 back up after all that", || {
        console(&admin, "vm1")
            .matches("ONESTACK-GUEST-UP hostname=vm1")
            .count()
            >= 4
    });

    // Killing onestack leaves the guest running; the restarted one re-adopts it as ACTIVE:
    // the same QEMU process, still answering on the network after the new agent's passes.
    let pid = qemu_pid(dir.path(), &vm1_id);
    drop(server);
    assert!(alive(pid), "the guest must outlive onestack");
    server = Server::start_with(dir.path(), port, &env);
    let (mut last, mut syncs) = (compute_synced_at(&admin), 0);
    within(30, "two syncs of the restarted compute agent", || {
        let now = compute_synced_at(&admin);
        if now > last {
            (last, syncs) = (now, syncs + 1);
        }
        syncs >= 2
    });
    let answered = console(&admin, "vm2").matches("PROBE-OK vm1").count();
    within(30, "vm1 to answer vm2 on port 80 after the restart", || {
        console(&admin, "vm2").matches("PROBE-OK vm1").count() >= answered + 2
    });
    assert_eq!(status(&admin, "vm1"), "ACTIVE");
    assert_eq!(
        qemu_pid(dir.path(), &vm1_id),
        pid,
        "the same QEMU, not a new one"
    );

    // A guest that powers itself off is reported SHUTOFF.
    let bye = dir.path().join("bye.sh");
    std::fs::write(&bye, "#!/bin/sh\nsleep 2\npoweroff\n").unwrap();
    ok(
        &admin,
        &[
            "server",
            "create",
            "--flavor",
            "e2e.tiny",
            "--image",
            "guest",
            "--network",
            "e2enet",
            "--user-data",
            bye.to_str().unwrap(),
            "--wait",
            "vm3",
        ],
    );
    within(90, "vm3 to power itself off and show SHUTOFF", || {
        status(&admin, "vm3") == "SHUTOFF"
    });

    // An ISO boots from the CD-ROM with a blank root disk as its install target.
    let iso = guest.join("install.iso");
    ok(
        &admin,
        &[
            "image",
            "create",
            "--disk-format",
            "iso",
            "--container-format",
            "bare",
            "--file",
            iso.to_str().unwrap(),
            "installer",
        ],
    );
    ok(
        &admin,
        &[
            "server",
            "create",
            "--flavor",
            "e2e.tiny",
            "--image",
            "installer",
            "--network",
            "e2enet",
            "--wait",
            "vm4",
        ],
    );
    within(120, "the ISO guest's marker", || {
        console(&admin, "vm4").contains("ONESTACK-GUEST-UP hostname=vm4")
    });

    for vm in ["vm1", "vm2", "vm3", "vm4"] {
        ok(&admin, &["server", "delete", "--wait", vm]);
    }
    assert!(
        ok_json(&admin, &["server", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let left = std::fs::read_dir(dir.path().join("compute/instances"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "instance directories left behind");
    assert!(!alive(pid), "vm1's QEMU must be gone");
    let out = openstack(
        &admin,
        &["port", "list", "-f", "value", "-c", "device_owner"],
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("compute:"),
        "ports left behind"
    );
    drop(server);
}
