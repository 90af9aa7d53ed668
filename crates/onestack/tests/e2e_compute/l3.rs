//! The classic walkthrough's L3 part with real guests and the `openstack` CLI: an external
//! flat network on a host interface whose far end is an "outside" host (a namespace), a
//! router, guests booted without a config drive that learn their hostname from the metadata
//! service (through the router, and through the DHCP namespace of a network without one),
//! and a floating IP that lets the outside host reach a guest's port 80.
//!
//! Root is required: without it this test fails, unless `ONESTACK_TEST_SKIP=root` says
//! skipping it is meant.

use std::time::Instant;

use super::{
    HOST_AGENT, Server, console, free_port, guest_image_and_tiny_flavor, ok, ok_json, root_or_skip,
    test_guest, within,
};
use crate::common::{Namespace, Uplink};

/// What `http://address/` answers to the outside host, if anything.
pub(crate) fn http_get(outside: &Namespace, address: &str) -> Option<String> {
    let url = format!("http://{address}/");
    let out = outside.exec(&["timeout", "2", "busybox", "wget", "-q", "-O", "-", &url]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn l3_walkthrough_with_real_guests() {
    if !root_or_skip() {
        return;
    }
    let _agent = HOST_AGENT.lock().unwrap_or_else(|e| e.into_inner());
    let guest = test_guest();
    let up = Uplink::new();
    let outside = &up.outside;
    outside.exec_ok(&["ip", "addr", "add", "10.78.0.1/24", "dev", &outside.dev]);
    let dir = crate::CloudDir::new();
    let host = format!("e2e-l3-{}", std::process::id());
    let interfaces = format!("{{physnet1 = \"{}\"}}", up.uplink);
    let env: Vec<(&str, &str)> = vec![
        ("ONESTACK_NETWORK__AGENT", "true"),
        ("ONESTACK_NETWORK__HOST", &host),
        ("ONESTACK_NETWORK__PHYSICAL_INTERFACES", &interfaces),
        // Guests get no config drive: what they know comes from the metadata service.
        ("ONESTACK_COMPUTE__FORCE_CONFIG_DRIVE", "false"),
        ("ONESTACK_COMPUTE__SYNC_SECONDS", "2"),
        ("ONESTACK_COMPUTE__SHUTDOWN_TIMEOUT_SECONDS", "5"),
    ];
    let server = Server::start_with(dir.path(), free_port(), &env);
    let admin = server.admin_env();

    guest_image_and_tiny_flavor(&admin, &guest);
    // The walkthrough: an external flat network, a tenant network, a router between them.
    ok(
        &admin,
        &[
            "network",
            "create",
            "--external",
            "--provider-network-type",
            "flat",
            "--provider-physical-network",
            "physnet1",
            "public01",
        ],
    );
    ok(
        &admin,
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
    );
    ok(&admin, &["network", "create", "l3net"]);
    ok(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "l3net",
            "--subnet-range",
            "10.79.0.0/24",
            "l3sub",
        ],
    );
    ok(&admin, &["router", "create", "r1"]);
    ok(
        &admin,
        &["router", "set", "--external-gateway", "public01", "r1"],
    );
    ok(&admin, &["router", "add", "subnet", "r1", "l3sub"]);
    // A network no router serves: its DHCP namespace serves the metadata.
    ok(&admin, &["network", "create", "isonet"]);
    ok(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "isonet",
            "--subnet-range",
            "10.80.0.0/24",
            "isosub",
        ],
    );
    ok(&admin, &["security", "group", "create", "web"]);
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

    for (name, network) in [("vm-web", "l3net"), ("vm-iso", "isonet")] {
        let created = ok_json(
            &admin,
            &[
                "server",
                "create",
                "--flavor",
                "e2e.tiny",
                "--image",
                "guest",
                "--network",
                network,
                "--security-group",
                "web",
                "--wait",
                name,
            ],
        );
        assert_ne!(created["config_drive"], "True", "{created}");
    }
    // No config drive, so the hostname in the marker came from the metadata service.
    within(120, "vm-web's hostname from the metadata service", || {
        console(&admin, "vm-web").contains("ONESTACK-GUEST-UP hostname=vm-web ip=10.79.0.")
    });
    within(120, "vm-iso's hostname from its DHCP namespace", || {
        console(&admin, "vm-iso").contains("ONESTACK-GUEST-UP hostname=vm-iso ip=10.80.0.")
    });
    assert!(console(&admin, "vm-web").contains("metadata service answered"));

    // A floating IP brings the outside host to vm-web's port 80, and only by that address.
    let fip = ok_json(&admin, &["floating", "ip", "create", "public01"]);
    let address = fip["floating_ip_address"].as_str().unwrap().to_owned();
    assert_eq!(http_get(outside, &address), None, "not before association");
    let associated = Instant::now();
    ok(
        &admin,
        &["server", "add", "floating", "ip", "vm-web", &address],
    );
    within(30, "vm-web to answer on its floating IP", || {
        http_get(outside, &address).as_deref() == Some("vm-web")
    });
    println!(
        "server add floating ip -> port 80 answering from outside: {:.2}s",
        associated.elapsed().as_secs_f64()
    );
    let shown = ok_json(&admin, &["server", "show", "vm-web"]);
    assert!(
        shown["addresses"].to_string().contains(&address),
        "Nova shows the floating address: {shown}"
    );
    // The address vm-web took by DHCP, from its marker line.
    let fixed = console(&admin, "vm-web")
        .split("hostname=vm-web ip=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("vm-web's marker names its address")
        .to_owned();
    let gateway =
        ok_json(&admin, &["router", "show", "r1"])["external_gateway_info"]["external_fixed_ips"]
            [0]["ip_address"]
            .as_str()
            .unwrap()
            .to_owned();
    outside.exec_ok(&["ip", "route", "add", "10.79.0.0/24", "via", &gateway]);
    assert_eq!(
        http_get(outside, &fixed),
        None,
        "the fixed address stays unreachable from outside"
    );
    ok(
        &admin,
        &["server", "remove", "floating", "ip", "vm-web", &address],
    );
    within(30, "the floating IP to stop answering", || {
        http_get(outside, &address).is_none()
    });

    for vm in ["vm-web", "vm-iso"] {
        ok(&admin, &["server", "delete", "--wait", vm]);
    }
    ok(&admin, &["floating", "ip", "delete", &address]);
    ok(&admin, &["router", "remove", "subnet", "r1", "l3sub"]);
    ok(&admin, &["router", "delete", "r1"]);
    ok(
        &admin,
        &["network", "delete", "l3net", "isonet", "public01"],
    );
    drop(server);
}
