//! A real guest with a port on a joined host: the host runs in a network namespace of its
//! own (an underlay veth to the controller), builds the guest's port and VXLAN to the
//! controller, and the guest, booted without a config drive, gets its address from the
//! controller's DHCP and its hostname from the metadata service in the controller's router
//! namespace, and answers an outside host on its floating IP, which that router carries.
//! `openstack server migrate --live-migration` moves it to the controller and back while it
//! answers (its disk copied on the way), `openstack server migrate` does the same cold, and
//! when the host dies (its processes killed), `openstack server evacuate` rebuilds the
//! guest on the controller with the same address, and the floating IP reaches it there.
//!
//! Root is required: without it this test fails, unless `ONESTACK_TEST_SKIP=root` says
//! skipping it is meant.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::wait_state;
use crate::common::{KillOnDrop, Underlay, Uplink};
use crate::e2e_compute::l3::http_get;
use crate::e2e_compute::{console, guest_image_and_tiny_flavor, test_guest, within};
use crate::{HOST_AGENT, Server, free_port, ok, ok_json, openstack, root_or_skip, stop_guests};

#[test]
fn a_guest_on_a_joined_host_is_served_by_the_controllers_network() {
    if !root_or_skip() {
        return;
    }
    let _agent = HOST_AGENT.lock().unwrap_or_else(|e| e.into_inner());
    let guest = test_guest();
    let underlay = Underlay::new();
    let up = Uplink::new();
    let outside = &up.outside;
    outside.exec_ok(&["ip", "addr", "add", "10.78.0.1/24", "dev", &outside.dev]);
    let dir = crate::CloudDir::new();
    let controller_dir = dir.path().join("controller");
    let host_dir = dir.path().join(super::HOST);
    let controller = format!("e2e-ctl-{}", std::process::id());
    let interfaces = format!("{{physnet1 = \"{}\"}}", up.uplink);
    let server = Server::start_listening(
        &controller_dir,
        Underlay::CONTROLLER_IP,
        free_port(),
        &[
            ("ONESTACK_NETWORK__AGENT", "true"),
            ("ONESTACK_NETWORK__HOST", &controller),
            ("ONESTACK_NETWORK__LOCAL_IP", Underlay::CONTROLLER_IP),
            ("ONESTACK_NETWORK__PHYSICAL_INTERFACES", &interfaces),
            ("ONESTACK_COMPUTE__DRIVER", "qemu"),
            ("ONESTACK_COMPUTE__REPORT_INTERVAL", "1"),
            ("ONESTACK_COMPUTE__SERVICE_DOWN_TIME", "4"),
            ("ONESTACK_COMPUTE__FORCE_CONFIG_DRIVE", "false"),
        ],
    );
    let admin = server.admin_env();
    guest_image_and_tiny_flavor(&admin, &guest);

    // The host joins from its namespace, with QEMU and its network agent.
    let log = std::fs::File::create(dir.path().join("host-2.log")).unwrap();
    let joined = Command::new("ip")
        .args([
            "netns",
            "exec",
            &underlay.host.ns,
            env!("CARGO_BIN_EXE_onestack"),
        ])
        .args(["join", &server.url(), "--name", super::HOST, "--data-dir"])
        .arg(&host_dir)
        .args(["--token", &super::join_token(&controller_dir)])
        .env("ONESTACK_COMPUTE__DRIVER", "qemu")
        .env("ONESTACK_COMPUTE__REPORT_INTERVAL", "1")
        .env("ONESTACK_COMPUTE__SYNC_SECONDS", "2")
        .env("ONESTACK_NETWORK__LOCAL_IP", Underlay::HOST_IP)
        .env_remove("ONESTACK_CONFIG")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("onestack join starts");
    let _joined = KillOnDrop(joined);
    let _guests = (
        StopGuests(host_dir.clone()),
        StopGuests(controller_dir.clone()),
    );
    wait_state(&admin, "up", Duration::from_secs(20));

    // The walkthrough's network, its router and the external network on the controller.
    for args in [
        &[
            "network",
            "create",
            "--external",
            "--provider-network-type",
            "flat",
            "--provider-physical-network",
            "physnet1",
            "public01",
        ][..],
        &[
            "subnet",
            "create",
            "--network",
            "public01",
            "--subnet-range",
            "10.78.0.0/24",
            "--gateway",
            "10.78.0.1",
            "--no-dhcp",
            "--allocation-pool",
            "start=10.78.0.10,end=10.78.0.50",
            "public01-sub",
        ],
        &["network", "create", "l3net"],
        &[
            "subnet",
            "create",
            "--network",
            "l3net",
            "--subnet-range",
            "10.79.0.0/24",
            "l3sub",
        ],
        &["router", "create", "r1"],
        &["router", "set", "--external-gateway", "public01", "r1"],
        &["router", "add", "subnet", "r1", "l3sub"],
        &["security", "group", "create", "web"],
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
    ] {
        ok(&admin, args);
    }

    // Placed on the joined host (it plugs ports once its network agent has made a pass).
    let booted = Instant::now();
    let zone = format!("nova:{}", super::HOST);
    within(30, "a server with a port to go to the joined host", || {
        let created = openstack(
            &admin,
            &[
                "server",
                "create",
                "--flavor",
                "e2e.tiny",
                "--image",
                "guest",
                "--availability-zone",
                &zone,
                "--network",
                "l3net",
                "--security-group",
                "web",
                "--wait",
                "vm-far",
            ],
        );
        if !created.status.success() {
            let _ = openstack(&admin, &["server", "delete", "--wait", "vm-far"]);
        }
        created.status.success()
    });
    let shown = ok_json(&admin, &["server", "show", "vm-far"]);
    assert_eq!(shown["OS-EXT-SRV-ATTR:host"], super::HOST, "{shown}");
    within(180, "vm-far's hostname from the metadata service", || {
        console(&admin, "vm-far").contains("ONESTACK-GUEST-UP hostname=vm-far ip=10.79.0.")
    });
    println!(
        "server create on the joined host -> guest up with DHCP and metadata: {:.1}s",
        booted.elapsed().as_secs_f64()
    );

    // Its floating IP is carried by the router on the controller.
    let fip = ok_json(&admin, &["floating", "ip", "create", "public01"]);
    let address = fip["floating_ip_address"].as_str().unwrap().to_owned();
    ok(
        &admin,
        &["server", "add", "floating", "ip", "vm-far", &address],
    );
    within(60, "vm-far to answer on its floating IP", || {
        http_get(outside, &address).as_deref() == Some("vm-far")
    });
    let marker = |text: &str| {
        text.split("hostname=vm-far ip=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    };
    let fixed = marker(&console(&admin, "vm-far")).expect("vm-far's marker names its address");
    let id = shown["id"].as_str().unwrap().to_owned();

    // Live migration to the controller and back: the guest never stops answering for
    // long (a reboot would take many seconds), and keeps its address and floating IP.
    for (to, version, host) in [
        (controller.as_str(), None, None),
        (super::HOST, Some("2.30"), Some(super::HOST)),
    ] {
        let probe = ReplyCounter::start(&outside.ns, &address);
        let started = Instant::now();
        let mut args = Vec::new();
        if let Some(v) = version {
            args.extend(["--os-compute-api-version", v]);
        }
        args.extend(["server", "migrate", "--live-migration"]);
        if let Some(h) = host {
            args.extend(["--host", h]);
        }
        args.push("vm-far");
        ok(&admin, &args);
        let moved_by = Instant::now() + Duration::from_secs(180);
        loop {
            let shown = ok_json(&admin, &["server", "show", "vm-far"]);
            if shown["OS-EXT-SRV-ATTR:host"] == to && shown["OS-EXT-STS:task_state"].is_null() {
                assert_eq!(shown["status"], "ACTIVE", "{shown}");
                break;
            }
            assert!(
                shown["status"] != "ERROR" && Instant::now() < moved_by,
                "vm-far not live-migrated to {to} in 180 s: {shown}\nthe joined host's log: {}",
                std::fs::read_to_string(dir.path().join("host-2.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let moved = started.elapsed();
        within(
            30,
            "vm-far to answer on its floating IP after the live migration",
            || http_get(outside, &address).as_deref() == Some("vm-far"),
        );
        let replies = probe.stop();
        println!(
            "server migrate --live-migration to {to}: placed there in {:.1}s; port 80 asked {} times, {} missed, longest without a reply {} ms",
            moved.as_secs_f64(),
            replies.asked,
            replies.missed,
            replies.longest_gap_ms
        );
        assert!(
            replies.longest_gap_ms < 5000,
            "the guest went without answering for {} ms: it stopped, not moved",
            replies.longest_gap_ms
        );
    }
    let events = ok(&admin, &["server", "event", "list", "vm-far"]);
    assert!(events.contains("live-migration"), "{events}");

    // Cold migration to the controller: the joined host stops the guest and hands its disk
    // over; the guest comes up on the controller with the same address, behind the same
    // floating IP, from the same disk (the joined host keeps its copy until the confirm).
    let migrated = Instant::now();
    ok(&admin, &["server", "migrate", "vm-far"]);
    let moved_by = Instant::now() + Duration::from_secs(180);
    loop {
        let shown = ok_json(&admin, &["server", "show", "vm-far"]);
        if shown["status"] == "VERIFY_RESIZE" {
            break;
        }
        assert!(
            Instant::now() < moved_by,
            "vm-far not moved in 180 s: {shown}\nthe joined host's log: {}",
            std::fs::read_to_string(dir.path().join("host-2.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let shown = ok_json(&admin, &["server", "show", "vm-far"]);
    assert_eq!(
        shown["OS-EXT-SRV-ATTR:host"],
        controller.as_str(),
        "{shown}"
    );
    within(180, "vm-far to come up on the controller", || {
        marker(&console(&admin, "vm-far")).is_some()
    });
    assert_eq!(
        marker(&console(&admin, "vm-far")).as_ref(),
        Some(&fixed),
        "the same address"
    );
    within(
        60,
        "vm-far to answer on its floating IP after the move",
        || http_get(outside, &address).as_deref() == Some("vm-far"),
    );
    println!(
        "server migrate -> guest answering on its floating IP on the other host: {:.1}s",
        migrated.elapsed().as_secs_f64()
    );
    let disk = |data: &std::path::Path| data.join("compute/instances").join(&id).join("disk");
    let compared = Command::new("qemu-img")
        .args(["compare", "-U"])
        .arg(disk(&host_dir))
        .arg(disk(&controller_dir))
        .output()
        .unwrap();
    assert!(
        compared.status.success(),
        "the disk that arrived is the one that left: {}",
        String::from_utf8_lossy(&compared.stdout)
    );
    ok(&admin, &["server", "migration", "confirm", "vm-far"]);
    within(60, "the joined host to remove the copy it kept", || {
        !disk(&host_dir).exists()
    });
    assert_eq!(
        ok_json(&admin, &["server", "show", "vm-far"])["status"],
        "ACTIVE"
    );

    // And back to the joined host by name, for the end of the walkthrough.
    ok(
        &admin,
        &[
            "--os-compute-api-version",
            "2.56",
            "server",
            "migrate",
            "--host",
            super::HOST,
            "vm-far",
        ],
    );
    within(180, "vm-far to be moved back (VERIFY_RESIZE)", || {
        ok_json(&admin, &["server", "show", "vm-far"])["status"] == "VERIFY_RESIZE"
    });
    ok(&admin, &["server", "migration", "confirm", "vm-far"]);
    within(
        120,
        "vm-far to answer on its floating IP from the joined host",
        || http_get(outside, &address).as_deref() == Some("vm-far"),
    );
    let shown = ok_json(&admin, &["server", "show", "vm-far"]);
    assert_eq!(shown["OS-EXT-SRV-ATTR:host"], super::HOST, "{shown}");
    let events = ok(&admin, &["server", "event", "list", "vm-far"]);
    assert!(
        events.contains("migrate") && events.contains("confirmResize"),
        "{events}"
    );

    // The host dies (its agent and its guest with it): once it is down, the guest is
    // rebuilt on the controller, with the same address, behind the same floating IP.
    let pids = Command::new("ip")
        .args(["netns", "pids", &underlay.host.ns])
        .output()
        .unwrap();
    assert!(pids.status.success());
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    wait_state(&admin, "down", Duration::from_secs(20));
    let evacuated = Instant::now();
    // Without --wait: the CLI's wait has no deadline.
    ok(&admin, &["server", "evacuate", "vm-far"]);
    within(180, "vm-far to be rebuilt", || {
        ok_json(&admin, &["server", "show", "vm-far"])["status"] == "ACTIVE"
    });
    let shown = ok_json(&admin, &["server", "show", "vm-far"]);
    assert_eq!(
        shown["OS-EXT-SRV-ATTR:host"],
        controller.as_str(),
        "{shown}"
    );
    within(180, "vm-far to come up again on the controller", || {
        marker(&console(&admin, "vm-far")).is_some()
    });
    assert_eq!(
        marker(&console(&admin, "vm-far")),
        Some(fixed),
        "the same address"
    );
    within(
        60,
        "vm-far to answer on its floating IP from the controller",
        || http_get(outside, &address).as_deref() == Some("vm-far"),
    );
    println!(
        "server evacuate -> guest answering on its floating IP again: {:.1}s",
        evacuated.elapsed().as_secs_f64()
    );
    let events = ok(&admin, &["server", "event", "list", "vm-far"]);
    assert!(events.contains("evacuate"), "{events}");

    ok(&admin, &["server", "delete", "--wait", "vm-far"]);
    ok(&admin, &["floating", "ip", "delete", &address]);
    ok(&admin, &["router", "remove", "subnet", "r1", "l3sub"]);
    ok(&admin, &["router", "delete", "r1"]);
    let bridges: Vec<String> = ["l3net", "public01"]
        .iter()
        .map(|n| {
            ok_json(&admin, &["network", "show", n])["id"]
                .as_str()
                .unwrap()[..10]
                .to_owned()
        })
        .collect();
    ok(&admin, &["network", "delete", "l3net", "public01"]);
    // The controller's agent takes their bridges along before it stops.
    within(30, "the controller's bridges to go", || {
        let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
        let links = String::from_utf8_lossy(&links.stdout).into_owned();
        bridges.iter().all(|id| !links.contains(id.as_str()))
    });
    drop(server);
}

/// Asks a guest's port 80 from a namespace, a new connection every 10 ms (each waiting at
/// most 500 ms), until stopped, and counts the replies that did not come.
struct ReplyCounter(std::process::Child);

/// What a [`ReplyCounter`] saw.
struct Replies {
    asked: u64,
    missed: u64,
    /// The longest time between two replies.
    longest_gap_ms: u64,
}

const PROBE: &str = r#"
import socket, sys, threading, time
address = sys.argv[1]
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
asked = missed = 0
last = time.monotonic()
gap = 0.0
while not stop.is_set():
    began = time.monotonic()
    asked += 1
    try:
        with socket.create_connection((address, 80), timeout=0.5) as s:
            s.settimeout(0.5)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answered = b" 200 " in s.recv(4096)
    except OSError:
        answered = False
    now = time.monotonic()
    if answered:
        gap = max(gap, now - last)
        last = now
    else:
        missed += 1
    time.sleep(max(0.0, 0.01 - (now - began)))
print(asked, missed, int(max(gap, time.monotonic() - last) * 1000))
"#;

impl ReplyCounter {
    fn start(ns: &str, address: &str) -> Self {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", PROBE, address])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the probe");
        Self(child)
    }

    fn stop(mut self) -> Replies {
        drop(self.0.stdin.take());
        let out = self.0.wait_with_output().expect("the probe ends");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let numbers: Vec<u64> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        assert_eq!(numbers.len(), 3, "the probe's counts: {text:?}");
        Replies {
            asked: numbers[0],
            missed: numbers[1],
            longest_gap_ms: numbers[2],
        }
    }
}

/// Kills the joined host's guests, should the test fail before it deletes them.
struct StopGuests(std::path::PathBuf);

impl Drop for StopGuests {
    fn drop(&mut self) {
        stop_guests(&self.0);
    }
}
