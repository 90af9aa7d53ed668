//! Tenant isolation in the data plane, against the real kernel (root): a guest's forged
//! IPv6 neighbor advertisement never reaches its neighbor, and two networks with the same
//! addresses never share a connection (one conntrack zone each). Stand-in guests are veth
//! peers in namespaces on bridges made here with `ip`; packets are crafted with python3.
//!
//! Root is required: without it these tests fail, unless `ONESTACK_TEST_SKIP=root` says
//! skipping them is meant.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive host tools to check what onestack did"
)]

use std::net::IpAddr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use onestack_netdrv::firewall::{
    Direction, EtherType, Firewall, GroupFilter, PortFilter, Remote, Rule, Ruleset, Zone,
};
use onestack_netdrv::names;

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// nft tables are global and both tests load one: one at a time.
static FIREWALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether to run: root and its tools, or a failure unless the run opts out
/// (`onestack_testkit`).
fn root_or_skip() -> bool {
    onestack_testkit::require_root() && onestack_testkit::require_tools(&["nft", "python3"])
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh UUID-like id whose first 10 characters are unique to this process and call.
fn fresh_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:07}{n:03}-150a-4000-8000-000000000000",
        std::process::id() % 10_000_000
    )
}

/// Removes what a test made, even when it panics.
#[derive(Default)]
struct Cleanup {
    links: Vec<String>,
    namespaces: Vec<String>,
    table: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let pids = run("ip", &["netns", "pids", ns]).stdout;
            for pid in String::from_utf8_lossy(&pids).split_whitespace() {
                let _ = run("kill", &["-KILL", pid]);
            }
            let _ = run("ip", &["netns", "del", ns]);
        }
        for l in &self.links {
            let _ = run("ip", &["link", "del", "dev", l]);
        }
        if let Some(t) = &self.table {
            let _ = run("nft", &["delete", "table", "bridge", t]);
            let _ = run("nft", &["delete", "table", "inet", t]);
        }
    }
}

fn bridge(c: &mut Cleanup) -> String {
    let name = names::bridge(&fresh_id());
    c.links.push(name.clone());
    ok("ip", &["link", "add", "name", &name, "type", "bridge"]);
    ok("ip", &["link", "set", &name, "up"]);
    name
}

/// A stand-in guest: a veth whose host side is a port on a bridge and whose other side
/// sits in a namespace with a chosen MAC and addresses (IPv6 ones without DAD).
struct Guest {
    ns: String,
    dev: String,
    port: String,
    bridge: String,
    mac: String,
}

impl Guest {
    fn new(c: &mut Cleanup, bridge: &str, mac: &str, addresses: &[&str]) -> Guest {
        let id = fresh_id();
        let port = names::port(&id);
        let dev = names::port_peer(&id);
        let ns = format!("ostest-iso-{}", &id[..10]);
        c.links.push(port.clone());
        c.namespaces.push(ns.clone());
        ok(
            "ip",
            &["link", "add", &port, "type", "veth", "peer", "name", &dev],
        );
        ok("ip", &["link", "set", &port, "master", bridge, "up"]);
        ok("ip", &["netns", "add", &ns]);
        ok("ip", &["link", "set", &dev, "netns", &ns]);
        let g = Guest {
            ns,
            dev,
            port,
            bridge: bridge.to_owned(),
            mac: mac.to_owned(),
        };
        g.exec(&["ip", "link", "set", &g.dev, "address", mac]);
        g.exec(&[
            "sysctl",
            "-q",
            &format!("net.ipv6.conf.{}.addr_gen_mode=0", g.dev),
        ]);
        g.exec(&["ip", "link", "set", "lo", "up"]);
        g.exec(&["ip", "link", "set", &g.dev, "up"]);
        for a in addresses {
            let mut args = vec!["ip", "addr", "add", a, "dev", &g.dev];
            if a.contains(':') {
                args.push("nodad");
            }
            g.exec(&args);
        }
        g
    }

    fn exec(&self, args: &[&str]) -> String {
        ok("ip", &[&["netns", "exec", &self.ns], args].concat())
    }

    fn python(&self, script: &str) -> Output {
        run("ip", &["netns", "exec", &self.ns, "python3", "-c", script])
    }

    fn pings(&self, address: &str) -> bool {
        run(
            "ip",
            &[
                "netns", "exec", &self.ns, "busybox", "ping", "-c", "1", "-W", "1", address,
            ],
        )
        .status
        .success()
    }

    /// The MAC this guest's neighbor table holds for `address`, if any.
    fn neighbor(&self, address: &str) -> Option<String> {
        let text = self.exec(&["ip", "-6", "neigh", "show", address, "dev", &self.dev]);
        let mut words = text.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_owned)
    }

    fn filter(&self, addresses: &[&str], group: &str) -> PortFilter {
        PortFilter {
            device: self.port.clone(),
            bridge: self.bridge.clone(),
            macs: vec![self.mac.clone()],
            addresses: addresses
                .iter()
                .map(|a| IpNet::from(a.parse::<IpAddr>().expect("address")))
                .collect(),
            pairs: vec![],
            groups: vec![group.to_owned()],
        }
    }
}

/// A group that lets everything out and, when `ingress`, everything in.
fn group(id: &str, ingress: bool) -> GroupFilter {
    let any = |direction, ethertype| Rule {
        direction,
        ethertype,
        protocol: None,
        port_min: None,
        port_max: None,
        remote: Remote::Any,
    };
    let mut rules = vec![
        any(Direction::Egress, EtherType::V4),
        any(Direction::Egress, EtherType::V6),
    ];
    if ingress {
        rules.push(any(Direction::Ingress, EtherType::V4));
        rules.push(any(Direction::Ingress, EtherType::V6));
    }
    GroupFilter {
        id: id.to_owned(),
        members: vec![],
        rules,
    }
}

/// Fails when an earlier version's `onestack` table is loaded: its dispatch reads every
/// packet mark whatever the bridge, so firewall assertions would mean nothing. (Today's
/// tables, other test runs' included, keep to their own bridges and may be loaded.)
fn refuse_legacy_firewall() {
    let text = ok("nft", &["list", "tables"]);
    let legacy = format!("table inet {}", Firewall::DEFAULT_TABLE);
    assert!(
        !text.lines().any(|l| l.trim() == legacy),
        "an earlier onestack's `{}` table is loaded and reads every packet mark: \
         remove it (nft delete table inet onestack; nft delete table bridge onestack)",
        Firewall::DEFAULT_TABLE
    );
}

fn test_firewall(c: &mut Cleanup) -> Firewall {
    let table = format!("ostestiso{}", std::process::id());
    c.table = Some(table.clone());
    Firewall::new(&table).expect("table name")
}

/// An unsolicited neighbor advertisement (override flag, target link-layer address
/// option), sent by the namespace's kernel from `source` (on `dev`) to `to`, hop limit
/// 255.
fn advertisement(source: &str, dev: &str, to: &str, target: &str, mac: &str) -> String {
    format!(
        r#"
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
scope = socket.if_nametoindex("{dev}") if "{source}".startswith("fe80") else 0
s.bind(("{source}", 0, 0, scope))
mac = bytes.fromhex("{mac}".replace(":", ""))
na = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + socket.inet_pton(socket.AF_INET6, "{target}")
na += struct.pack("!BB", 2, 1) + mac
for _ in range(3):
    s.sendto(na, ("{to}", 0))
"#
    )
}

fn wait_for(what: &str, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 16: a guest could send neighbor advertisements for any address, from its own
/// address or any link-local one, and so take over its neighbors' traffic to a third
/// guest. Now an advertisement must be from and for the sender's own addresses.
#[tokio::test]
async fn a_forged_neighbor_advertisement_never_reaches_the_neighbor() {
    if !root_or_skip() {
        return;
    }
    let _lock = FIREWALL.lock().await;
    let mut c = Cleanup::default();
    let fw = test_firewall(&mut c);
    refuse_legacy_firewall();
    let br = bridge(&mut c);
    let (a_mac, v_mac, w_mac) = (
        "02:15:0a:00:00:0a",
        "02:15:0a:00:00:0b",
        "02:15:0a:00:00:0c",
    );
    let attacker = Guest::new(&mut c, &br, a_mac, &["fd15::a/64"]);
    let victim = Guest::new(&mut c, &br, v_mac, &["fd15::b/64"]);
    let third = Guest::new(&mut c, &br, w_mac, &["fd15::c/64"]);
    let ruleset = Ruleset {
        ports: vec![
            attacker.filter(&["fd15::a"], "all"),
            victim.filter(&["fd15::b"], "all"),
            third.filter(&["fd15::c"], "all"),
        ],
        groups: vec![group("all", true)],
        zones: vec![Zone {
            bridge: br.clone(),
            zone: 1,
        }],
    };
    fw.apply(&ruleset).await.expect("apply");

    // Neighbor discovery between honest guests works: by global and link-local address.
    wait_for("the victim to reach the third guest", || {
        victim.pings("fd15::c")
    });
    assert_eq!(victim.neighbor("fd15::c").as_deref(), Some(w_mac));
    let third_ll = "fe80::15:aff:fe00:c";
    // (Link-local addresses are usable once their DAD is done.)
    wait_for("link-local (EUI-64) neighbor discovery", || {
        victim.pings(&format!("{third_ll}%{}", victim.dev))
    });
    assert_eq!(victim.neighbor(third_ll).as_deref(), Some(w_mac));
    assert!(attacker.pings("fd15::b"));

    // The attacker advertises the third guest's addresses as its own: from its own global
    // address, from its own link-local one, and from a link-local one it does not have.
    let attacker_ll = "fe80::15:aff:fe00:a";
    // Its own link-local address must have finished DAD to be a source (EADDRNOTAVAIL).
    wait_for("the attacker's link-local address to finish DAD", || {
        !attacker
            .exec(&[
                "ip",
                "-6",
                "addr",
                "show",
                "dev",
                &attacker.dev,
                "tentative",
            ])
            .contains("fe80")
    });
    for (source, target) in [
        ("fd15::a", "fd15::c"),
        (attacker_ll, "fd15::c"),
        (attacker_ll, third_ll),
    ] {
        let out = attacker.python(&advertisement(
            source,
            &attacker.dev,
            "fd15::b",
            target,
            a_mac,
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    attacker.exec(&[
        "ip",
        "addr",
        "add",
        "fe80::bad/64",
        "dev",
        &attacker.dev,
        "nodad",
    ]);
    let out = attacker.python(&advertisement(
        "fe80::bad",
        &attacker.dev,
        "fd15::b",
        "fd15::c",
        a_mac,
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        victim.neighbor("fd15::c").as_deref(),
        Some(w_mac),
        "the victim still reaches the third guest at its own MAC"
    );
    assert_ne!(victim.neighbor(third_ll).as_deref(), Some(a_mac));

    // An advertisement of the attacker's own address still passes (the check is not
    // simply "no advertisements").
    victim.exec(&[
        "ip",
        "-6",
        "neigh",
        "replace",
        "fd15::a",
        "lladdr",
        "02:15:0a:00:00:ff",
        "dev",
        &victim.dev,
        "nud",
        "stale",
    ]);
    let out = attacker.python(&advertisement(
        "fd15::a",
        &attacker.dev,
        "fd15::b",
        "fd15::a",
        a_mac,
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the attacker's own advertisement to be taken", || {
        victim.neighbor("fd15::a").as_deref() == Some(a_mac)
    });
    let _ = fw.remove().await;
}

/// Sends one UDP datagram with fixed ports, from `src` to `dst`.
fn udp_send(g: &Guest, src: &str, sport: u16, dst: &str, dport: u16, text: &str) {
    let out = g.python(&format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{src}", {sport}))
s.sendto(b"{text}", ("{dst}", {dport}))
"#
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits up to `secs` for one UDP datagram on `port`; what came.
fn udp_receive(g: &Guest, port: u16, secs: u32) -> std::process::Child {
    Command::new("ip")
        .args(["netns", "exec", &g.ns, "python3", "-c"])
        .arg(format!(
            r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port}))
s.settimeout({secs})
try:
    print(s.recv(100).decode())
except socket.timeout:
    print("nothing")
"#
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("receiver")
}

/// Issue 16: with one conntrack zone for the host, a connection opened on one network made
/// the same addresses' "replies" on another network `established`, past the receiver's
/// ingress rules. Each network has its own zone now.
#[tokio::test]
async fn the_same_addresses_on_two_networks_never_share_a_connection() {
    if !root_or_skip() {
        return;
    }
    let _lock = FIREWALL.lock().await;
    let mut c = Cleanup::default();
    let fw = test_firewall(&mut c);
    refuse_legacy_firewall();
    // Two networks, the same subnet on each: a client and a server on each.
    let (br1, br2) = (bridge(&mut c), bridge(&mut c));
    let client1 = Guest::new(&mut c, &br1, "02:15:0b:00:00:01", &["10.15.0.1/24"]);
    let server1 = Guest::new(&mut c, &br1, "02:15:0b:00:00:02", &["10.15.0.2/24"]);
    let client2 = Guest::new(&mut c, &br2, "02:15:0b:00:00:03", &["10.15.0.1/24"]);
    let server2 = Guest::new(&mut c, &br2, "02:15:0b:00:00:04", &["10.15.0.2/24"]);
    // Clients take nothing in but replies; servers take everything.
    let ruleset = Ruleset {
        ports: vec![
            client1.filter(&["10.15.0.1"], "clients"),
            server1.filter(&["10.15.0.2"], "servers"),
            client2.filter(&["10.15.0.1"], "clients"),
            server2.filter(&["10.15.0.2"], "servers"),
        ],
        groups: vec![group("clients", false), group("servers", true)],
        zones: vec![
            Zone {
                bridge: br1.clone(),
                zone: 101,
            },
            Zone {
                bridge: br2.clone(),
                zone: 102,
            },
        ],
    };
    fw.apply(&ruleset).await.expect("apply");
    // Neighbors first, so the datagrams below are not lost to ARP.
    for client in [&client1, &client2] {
        assert!(client.pings("10.15.0.2"), "each client reaches its server");
    }

    // On network 1 the client opens a "connection" (UDP 5015 -> 6015): its reply comes in.
    let listener = udp_receive(&client1, 5015, 3);
    std::thread::sleep(Duration::from_millis(300));
    udp_send(&client1, "10.15.0.1", 5015, "10.15.0.2", 6015, "hello");
    udp_send(&server1, "10.15.0.2", 6015, "10.15.0.1", 5015, "reply");
    let got = listener.wait_with_output().expect("receiver");
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "reply");

    // On network 2 the server sends what looks like that reply: it is a new connection
    // there, and client 2 takes no new connections.
    let listener = udp_receive(&client2, 5015, 2);
    std::thread::sleep(Duration::from_millis(300));
    udp_send(&client1, "10.15.0.1", 5015, "10.15.0.2", 6015, "again");
    udp_send(&server2, "10.15.0.2", 6015, "10.15.0.1", 5015, "intruder");
    let got = listener.wait_with_output().expect("receiver");
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "nothing",
        "network 2 must not see network 1's connection"
    );
    let _ = fw.remove().await;
}
