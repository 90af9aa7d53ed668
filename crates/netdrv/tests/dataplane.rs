//! Root-only tests against the real kernel: network namespaces with veth pairs stand in
//! for guests. Each test uses its own names (pid + counter) and a guard that removes what
//! it made; nft tables are global, so the tests that load rules take one lock.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive host tools to check what onestack did"
)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicU32, Ordering};

use ipnet::IpNet;
use onestack_netdrv::dhcp::{self, DhcpHost, DhcpNetwork, DhcpSubnet};
use onestack_netdrv::firewall::{
    Direction, EtherType, Firewall, GroupFilter, PortFilter, Remote, Rule, Ruleset,
};
use onestack_netdrv::owner::Owner;
use onestack_netdrv::{fdb, link, names, netns};
use tokio::process::Command;

static FIREWALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Root and the tools the mechanisms run; a test fails without them unless the run opts
/// out (`onestack_testkit`).
macro_rules! require_root {
    () => {
        if !(onestack_testkit::require_root()
            && onestack_testkit::require_tools(&["busybox", "nft", "dnsmasq"]))
        {
            return;
        }
    };
}

/// The mark of the test binary's made-up cloud.
fn owner() -> Owner {
    Owner::new("7e570000000000007e57000000000000", "netdrv-test").expect("owner")
}

/// A fresh UUID-like id whose first 10 characters are unique to this process and call.
fn fresh_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:07}{n:03}-7e57-4000-8000-000000000000",
        std::process::id() % 10_000_000
    )
}

/// Removes everything a test made, even when it panics.
#[derive(Default)]
struct Cleanup {
    links: Vec<String>,
    namespaces: Vec<String>,
    tables: Vec<String>,
    dhcp: Vec<(PathBuf, String)>,
    children: Vec<std::process::Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            let _ = StdCommand::new(args[0]).args(&args[1..]).output();
        };
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for (dir, net) in &self.dhcp {
            if let Some(pid) = dhcp::running(dir, net) {
                run(&["kill", "-KILL", &pid.to_string()]);
            }
        }
        for ns in &self.namespaces {
            if let Ok(out) = StdCommand::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    run(&["kill", "-KILL", pid]);
                }
            }
            run(&["ip", "netns", "del", ns]);
        }
        for l in &self.links {
            run(&["ip", "link", "del", "dev", l]);
        }
        for t in &self.tables {
            run(&["nft", "delete", "table", "bridge", t]);
            run(&["nft", "delete", "table", "inet", t]);
        }
    }
}

/// A stand-in guest: a veth whose host side is a port on `bridge` and whose other side
/// sits in its own namespace with one address.
struct Guest {
    ns: String,
    dev: String,
    port: String,
    bridge: String,
    mac: String,
    ip: IpAddr,
}

async fn guest(c: &mut Cleanup, bridge: &str, addr: Option<&str>) -> Guest {
    let id = fresh_id();
    let port = names::port(&id);
    let dev = names::port_peer(&id);
    let ns = dev.clone();
    c.links.push(port.clone());
    c.namespaces.push(ns.clone());
    link::ensure_veth(&port, &dev, 1500, &owner())
        .await
        .expect("veth");
    link::attach(&port, bridge, &owner()).await.expect("attach");
    netns::ensure(&ns, &owner()).await.expect("netns");
    netns::move_link(&dev, &ns).await.expect("move");
    let nets: Vec<IpNet> = addr.iter().map(|a| a.parse().expect("addr")).collect();
    netns::ensure_addresses(&ns, &dev, &nets)
        .await
        .expect("addresses");
    let out = netns::exec(&ns, &["cat", &format!("/sys/class/net/{dev}/address")])
        .await
        .expect("mac");
    Guest {
        ip: nets
            .first()
            .map_or("0.0.0.0".parse().expect("ip"), IpNet::addr),
        mac: out.trim().to_owned(),
        ns,
        dev,
        port,
        bridge: bridge.to_owned(),
    }
}

async fn bridge(c: &mut Cleanup) -> String {
    let name = names::bridge(&fresh_id());
    c.links.push(name.clone());
    link::ensure_bridge(&name, 1500, &owner())
        .await
        .expect("bridge");
    name
}

/// Runs a command inside `ns`; success and stdout+stderr.
async fn in_ns(ns: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .await
        .expect("spawn");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

async fn ping(from: &Guest, to: IpAddr) -> bool {
    in_ns(
        &from.ns,
        &["busybox", "ping", "-c", "1", "-W", "1", &to.to_string()],
    )
    .await
    .0
}

async fn ping_from(from: &Guest, src: &str, to: IpAddr) -> bool {
    let to = to.to_string();
    in_ns(
        &from.ns,
        &["busybox", "ping", "-c", "1", "-W", "1", "-I", src, &to],
    )
    .await
    .0
}

/// Starts a TCP server in `g`'s namespace that runs `program` for every connection.
fn serve_tcp(c: &mut Cleanup, g: &Guest, port: u16, program: &[&str]) {
    let port = port.to_string();
    let child = StdCommand::new("ip")
        .args([
            "netns", "exec", &g.ns, "busybox", "nc", "-ll", "-p", &port, "-e",
        ])
        .args(program)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nc server");
    c.children.push(child);
}

async fn tcp_ok(from: &Guest, to: &Guest, port: u16) -> bool {
    let (_, out) = in_ns(
        &from.ns,
        &[
            "busybox",
            "nc",
            "-w",
            "1",
            &to.ip.to_string(),
            &port.to_string(),
        ],
    )
    .await;
    out.contains("hi")
}

/// A long-lived TCP connection to an echo server.
struct EchoSession {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl EchoSession {
    async fn open(from: &Guest, to: &Guest, port: u16) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &from.ns, "busybox", "nc"])
            .args([to.ip.to_string(), port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("nc client");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        Self {
            _child: child,
            stdin,
            lines: tokio::io::BufReader::new(stdout).lines(),
        }
    }

    async fn round_trip(&mut self, text: &str) -> Option<String> {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{text}\n").as_bytes())
            .await
            .ok()?;
        self.stdin.flush().await.ok()?;
        let wait = std::time::Duration::from_secs(3);
        tokio::time::timeout(wait, self.lines.next_line())
            .await
            .ok()?
            .ok()?
    }
}

fn port_filter(g: &Guest, groups: &[&str]) -> PortFilter {
    PortFilter {
        device: g.port.clone(),
        bridge: g.bridge.clone(),
        macs: vec![g.mac.clone()],
        addresses: vec![IpNet::from(g.ip)],
        pairs: vec![],
        groups: groups.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn rule(direction: Direction, protocol: Option<u8>, port: Option<u16>, remote: Remote) -> Rule {
    Rule {
        direction,
        ethertype: EtherType::V4,
        protocol,
        port_min: port,
        port_max: port,
        remote,
    }
}

/// Another loaded onestack firewall (an agent on this host, or another test run) reads the
/// same packet mark as ours, so firewall assertions would be meaningless while it is there.
async fn foreign_firewall() -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .await
        .ok()?;
    let ours = test_table();
    let mut foreign = None;
    for table in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table inet "))
    {
        // A table an earlier run of these tests left behind (its process is gone) is ours
        // to remove.
        if let Some(pid) = table.strip_prefix("ostest")
            && table != ours
            && !std::path::Path::new("/proc").join(pid).exists()
        {
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", table])
                .status()
                .await;
            continue;
        }
        if table == Firewall::DEFAULT_TABLE || (table.starts_with("ostest") && table != ours) {
            foreign = Some(table.to_owned());
        }
    }
    foreign
}

/// Whether this test may load rules: no other table sets the packet mark its rules use.
async fn firewall_to_ourselves() -> bool {
    let foreign = foreign_firewall().await;
    onestack_testkit::require(
        onestack_testkit::Need::Firewall,
        foreign.is_none(),
        &format!(
            "another firewall table ({}) sets the packet mark these rules use; if nothing runs it, delete it with nft delete table inet <name>",
            foreign.as_deref().unwrap_or_default()
        ),
    )
}

/// Two clouds on one host: one cloud's devices and namespaces are invisible to the other's
/// listing, and are neither adopted, changed nor enslaved by it.
#[tokio::test]
async fn another_clouds_devices_are_left_alone() {
    require_root!();
    let other = Owner::new("0be70000000000000be7000000000000", "netdrv-test").expect("owner");
    let mut c = Cleanup::default();
    let br = bridge(&mut c).await;
    let g = guest(&mut c, &br, Some("10.251.9.1/24")).await;

    let theirs = link::list_ours(&other).await.expect("list");
    assert!(theirs.iter().all(|l| l.name != br && l.name != g.port));
    assert!(link::ensure_bridge(&br, 1400, &other).await.is_err());
    let tap = names::port(&fresh_id());
    c.links.push(tap.clone());
    link::ensure_tap(&tap, 1500, &owner()).await.expect("tap");
    assert!(link::ensure_tap(&tap, 1500, &other).await.is_err());
    let other_br = names::bridge(&fresh_id());
    c.links.push(other_br.clone());
    link::ensure_bridge(&other_br, 1500, &other)
        .await
        .expect("their bridge");
    assert!(link::attach(&g.port, &other_br, &other).await.is_err());
    assert!(netns::ensure(&g.ns, &other).await.is_err());
    assert!(!netns::owned_by(&g.ns, &other).await.expect("mark"));

    let info = link::get(&br).await.expect("get").expect("still there");
    assert_eq!(
        (info.mtu, info.alias.as_deref()),
        (1500, Some(owner().mark()))
    );
    let port = link::get(&g.port).await.expect("get").expect("still there");
    assert_eq!(port.master.as_deref(), Some(br.as_str()));
}

fn test_table() -> String {
    format!("ostest{}", std::process::id())
}

#[tokio::test]
async fn bridges_connect_their_ports_and_nothing_else() {
    require_root!();
    let mut c = Cleanup::default();
    let br1 = bridge(&mut c).await;
    let br2 = bridge(&mut c).await;
    // Idempotent: a second ensure changes nothing.
    link::ensure_bridge(&br1, 1500, &owner())
        .await
        .expect("again");
    let a = guest(&mut c, &br1, Some("10.251.1.1/24")).await;
    let b = guest(&mut c, &br1, Some("10.251.1.2/24")).await;
    let x = guest(&mut c, &br2, Some("10.251.1.3/24")).await;
    link::attach(&a.port, &br1, &owner())
        .await
        .expect("attach again");

    let ours = link::list_ours(&owner()).await.expect("list");
    let info = ours.iter().find(|l| l.name == br1).expect("bridge listed");
    assert_eq!(
        (info.kind.as_deref(), info.up, info.mtu),
        (Some("bridge"), true, 1500)
    );
    let port = ours.iter().find(|l| l.name == a.port).expect("port listed");
    assert_eq!(
        (port.kind.as_deref(), port.master.as_deref()),
        (Some("veth"), Some(br1.as_str()))
    );
    assert!(netns::list_prefixed().expect("ns").contains(&a.ns));
    assert!(netns::owned_by(&a.ns, &owner()).await.expect("mark"));

    assert!(ping(&a, b.ip).await, "same bridge");
    assert!(!ping(&a, x.ip).await, "other bridge");
    let _ = (&b.dev, &x.dev);
}

#[tokio::test]
async fn vxlan_fdb_and_devices_converge() {
    require_root!();
    let mut c = Cleanup::default();
    let id = fresh_id();
    let br = bridge(&mut c).await;
    let vx = names::vxlan(&id);
    let tap = names::port(&fresh_id());
    c.links.extend([vx.clone(), tap.clone()]);

    link::ensure_vxlan(&vx, 4242, None, 1450, &owner())
        .await
        .expect("vxlan");
    link::attach(&vx, &br, &owner()).await.expect("attach");
    link::ensure_vxlan(&vx, 4242, None, 1450, &owner())
        .await
        .expect("again");
    let info = link::get(&vx).await.expect("get").expect("exists");
    assert_eq!(
        (info.vni, info.mtu, info.master.as_deref()),
        (Some(4242), 1450, Some(br.as_str()))
    );
    // A changed VNI recreates the device (and it must be attached again).
    link::ensure_vxlan(&vx, 4243, None, 1450, &owner())
        .await
        .expect("new vni");
    assert_eq!(
        link::get(&vx).await.expect("get").expect("exists").vni,
        Some(4243)
    );

    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    fdb::set_flood(&vx, &[ip("10.251.9.1"), ip("10.251.9.2")])
        .await
        .expect("flood");
    fdb::set_flood(&vx, &[ip("10.251.9.2"), ip("10.251.9.3")])
        .await
        .expect("flood");
    let mut flood = fdb::flood_entries(&vx).await.expect("entries");
    flood.sort();
    assert_eq!(flood, [ip("10.251.9.2"), ip("10.251.9.3")]);
    let m1 = "fa:16:3e:00:09:01".to_owned();
    let m2 = "fa:16:3e:00:09:02".to_owned();
    fdb::set_unicast(
        &vx,
        &[
            (m1.clone(), ip("10.251.9.2")),
            (m2.clone(), ip("10.251.9.3")),
        ],
    )
    .await
    .expect("unicast");
    // m1 moves host, m2 goes away.
    fdb::set_unicast(&vx, &[(m1.clone(), ip("10.251.9.3"))])
        .await
        .expect("unicast");
    let out = Command::new("bridge")
        .args(["fdb", "show", "dev", &vx])
        .output()
        .await
        .expect("bridge");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{m1} dst 10.251.9.3")), "{text}");
    assert!(!text.contains(&format!("{m1} dst 10.251.9.2")), "{text}");
    assert!(!text.contains(&m2), "{text}");
    assert_eq!(fdb::flood_entries(&vx).await.expect("entries").len(), 2);

    link::ensure_tap(&tap, 1400, &owner()).await.expect("tap");
    link::ensure_tap(&tap, 1450, &owner())
        .await
        .expect("tap again");
    let info = link::get(&tap).await.expect("get").expect("exists");
    assert_eq!(
        (info.kind.as_deref(), info.mtu, info.up),
        (Some("tun"), 1450, true)
    );

    if link::vlan_supported().await {
        let vl = names::vlan(&id);
        c.links.push(vl.clone());
        link::ensure_vlan(&vl, &br, 100, 1400, &owner())
            .await
            .expect("vlan");
        assert_eq!(
            link::get(&vl).await.expect("get").expect("exists").vlan_id,
            Some(100)
        );
    } else {
        println!("vlan not supported by this kernel: ensure_vlan not exercised");
    }
    link::delete(&tap).await.expect("delete");
    link::delete(&tap).await.expect("delete is idempotent");
    assert!(link::get(&tap).await.expect("get").is_none());
}

#[tokio::test]
async fn security_groups_filter_and_follow_rule_changes() {
    require_root!();
    let _lock = FIREWALL.lock().await;
    if !firewall_to_ourselves().await {
        return;
    }
    let mut c = Cleanup::default();
    let table = test_table();
    c.tables.push(table.clone());
    let fw = Firewall::new(&table).expect("table name");
    let br = bridge(&mut c).await;
    let a = guest(&mut c, &br, Some("10.251.2.1/24")).await;
    let b = guest(&mut c, &br, Some("10.251.2.2/24")).await;
    serve_tcp(&mut c, &b, 5555, &["/bin/echo", "hi"]);
    serve_tcp(&mut c, &b, 5556, &["/bin/cat"]);
    // The server needs a moment to listen; refused connections fail fast.
    let mut up = false;
    for _ in 0..30 {
        up = tcp_ok(&a, &b, 5555).await;
        if up {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "unfiltered");

    let g = "5ec9a0a1-0000-4000-8000-000000000001";
    let ruleset = |rules: Vec<Rule>, members: Vec<IpAddr>| Ruleset {
        ports: vec![port_filter(&a, &[g]), port_filter(&b, &[g])],
        groups: vec![GroupFilter {
            id: g.into(),
            members,
            rules,
        }],
        zones: vec![],
    };
    let egress_any = rule(Direction::Egress, None, None, Remote::Any);

    // Egress only: nothing may come in.
    fw.apply(&ruleset(vec![egress_any.clone()], vec![]))
        .await
        .expect("apply");
    assert!(!tcp_ok(&a, &b, 5555).await, "no ingress rule");
    assert!(!ping(&a, b.ip).await, "no ingress rule (icmp)");

    // An ingress TCP rule opens exactly that port.
    let tcp_in = rule(Direction::Ingress, Some(6), Some(5555), Remote::Any);
    let echo_in = rule(Direction::Ingress, Some(6), Some(5556), Remote::Any);
    fw.apply(&ruleset(vec![egress_any.clone(), tcp_in, echo_in], vec![]))
        .await
        .expect("apply");
    assert!(tcp_ok(&a, &b, 5555).await, "ingress tcp rule");
    assert!(!ping(&a, b.ip).await, "icmp still closed");
    assert!(fw.rule_count().await.expect("count") > 10);
    let mut session = EchoSession::open(&a, &b, 5556).await;
    assert_eq!(session.round_trip("one").await.as_deref(), Some("one"));

    fw.apply(&ruleset(vec![egress_any.clone()], vec![]))
        .await
        .expect("apply");
    assert!(!tcp_ok(&a, &b, 5555).await, "rule removed");
    // Replacing the tables leaves conntrack alone: the open connection keeps flowing
    // (Neutron's iptables semantics), new ones are refused.
    assert_eq!(session.round_trip("two").await.as_deref(), Some("two"));
    drop(session);

    // Default-group style: members may reach each other on anything.
    let from_group = rule(Direction::Ingress, None, None, Remote::Group(g.into()));
    let both = vec![a.ip, b.ip];
    fw.apply(&ruleset(vec![egress_any.clone(), from_group.clone()], both))
        .await
        .expect("apply");
    assert!(tcp_ok(&a, &b, 5555).await, "remote group");
    assert!(ping(&a, b.ip).await, "remote group (icmp)");
    fw.apply(&ruleset(vec![egress_any.clone(), from_group], vec![b.ip]))
        .await
        .expect("apply");
    assert!(!ping(&a, b.ip).await, "not a member any more");

    // With everything allowed in, a source address the port does not own is still dropped.
    let any_in = rule(Direction::Ingress, None, None, Remote::Any);
    fw.apply(&ruleset(vec![egress_any, any_in], vec![]))
        .await
        .expect("apply");
    assert!(ping(&a, b.ip).await, "allowed");
    netns::ensure_addresses(
        &a.ns,
        &a.dev,
        &[
            "10.251.2.1/24".parse().expect("net"),
            "10.251.2.99/24".parse().expect("net"),
        ],
    )
    .await
    .expect("spoof address");
    assert!(ping_from(&a, "10.251.2.1", b.ip).await, "own address");
    assert!(!ping_from(&a, "10.251.2.99", b.ip).await, "spoofed source");

    fw.remove().await.expect("remove");
    fw.remove().await.expect("remove is idempotent");
    assert_eq!(fw.rule_count().await.expect("count"), 0);
    assert!(ping_from(&a, "10.251.2.99", b.ip).await, "unfiltered again");
}

#[tokio::test]
async fn dhcp_answers_listed_macs_only() {
    require_root!();
    let _lock = FIREWALL.lock().await;
    let mut c = Cleanup::default();
    let state = tempfile::tempdir().expect("tempdir");
    let net_id = fresh_id();
    c.dhcp.push((state.path().to_owned(), net_id.clone()));
    c.namespaces.push(names::dhcp_namespace(&net_id));
    c.links.push(names::dhcp_bridge_side(&net_id));
    let table = test_table();
    c.tables.push(table.clone());
    let br = bridge(&mut c).await;
    let listed = guest(&mut c, &br, None).await;
    let unlisted = guest(&mut c, &br, None).await;

    let mut net = DhcpNetwork {
        network_id: net_id.clone(),
        mtu: 1500,
        addresses: vec!["10.251.3.2/24".parse().expect("net")],
        mac: "fa:16:3e:25:10:02".into(),
        subnets: vec![DhcpSubnet {
            id: "sub".into(),
            cidr: "10.251.3.0/24".parse().expect("net"),
            gateway: Some("10.251.3.1".parse().expect("ip")),
            dns: vec![],
            routes: vec![],
            lease_secs: 600,
        }],
        hosts: vec![DhcpHost {
            mac: listed.mac.clone(),
            ip: "10.251.3.50".parse().expect("ip"),
            hostname: "vm-listed".into(),
        }],
        metadata: true,
    };
    dhcp::ensure(state.path(), &br, &net, &owner())
        .await
        .expect("dhcp");
    let pid = dhcp::running(state.path(), &net_id).expect("running");
    let dhcp_ns = names::dhcp_namespace(&net_id);
    let (_, lo) = in_ns(&dhcp_ns, &["ip", "-4", "addr", "show", "dev", "lo"]).await;
    assert!(
        lo.contains("169.254.169.254/32"),
        "metadata address on lo: {lo}"
    );
    dhcp::ensure(state.path(), &br, &net, &owner())
        .await
        .expect("again");
    assert_eq!(
        dhcp::running(state.path(), &net_id),
        Some(pid),
        "not restarted"
    );

    // Both clients sit behind security groups that allow nothing: DHCP must still work.
    let fw = Firewall::new(&table).expect("table name");
    let filtered = firewall_to_ourselves().await;
    if filtered {
        let ports = vec![port_filter(&listed, &[]), port_filter(&unlisted, &[])];
        fw.apply(&Ruleset {
            ports,
            groups: vec![],
            zones: vec![],
        })
        .await
        .expect("apply");
    }
    // Generous retries where a lease is expected (a loaded host may be slow), few where not.
    let udhcpc = |g: &Guest, tries: u8| {
        let dev = g.dev.clone();
        let ns = g.ns.clone();
        let tries = tries.to_string();
        async move {
            in_ns(
                &ns,
                &[
                    "busybox",
                    "udhcpc",
                    "-i",
                    &dev,
                    "-n",
                    "-q",
                    "-f",
                    "-t",
                    &tries,
                    "-T",
                    "1",
                    "-s",
                    "/bin/true",
                ],
            )
            .await
        }
    };
    let (ok, out) = udhcpc(&listed, 5).await;
    assert!(ok && out.contains("lease of 10.251.3.50 obtained"), "{out}");
    let (ok, out) = udhcpc(&unlisted, 2).await;
    assert!(!ok && !out.contains("obtained"), "{out}");

    // A new host is served after a reload, without a restart.
    net.hosts.push(DhcpHost {
        mac: unlisted.mac.clone(),
        ip: "10.251.3.51".parse().expect("ip"),
        hostname: "vm-two".into(),
    });
    dhcp::ensure(state.path(), &br, &net, &owner())
        .await
        .expect("reload");
    assert_eq!(
        dhcp::running(state.path(), &net_id),
        Some(pid),
        "reloaded, not restarted"
    );
    let (ok, out) = udhcpc(&unlisted, 5).await;
    assert!(ok && out.contains("lease of 10.251.3.51 obtained"), "{out}");
    if filtered {
        fw.remove().await.expect("remove");
    }

    // A new subnet changes the command line: restart.
    net.subnets.push(DhcpSubnet {
        id: "sub2".into(),
        cidr: "10.251.4.0/24".parse().expect("net"),
        gateway: None,
        dns: vec![],
        routes: vec![],
        lease_secs: 600,
    });
    net.addresses.push("10.251.4.2/24".parse().expect("net"));
    dhcp::ensure(state.path(), &br, &net, &owner())
        .await
        .expect("restart");
    let new_pid = dhcp::running(state.path(), &net_id).expect("running");
    assert_ne!(new_pid, pid);

    dhcp::remove(state.path(), &net_id).await.expect("remove");
    assert!(dhcp::running(state.path(), &net_id).is_none());
    assert!(!netns::exists(&names::dhcp_namespace(&net_id)));
    assert!(
        link::get(&names::dhcp_bridge_side(&net_id))
            .await
            .expect("get")
            .is_none()
    );
    dhcp::remove(state.path(), &net_id)
        .await
        .expect("remove is idempotent");
}

/// Accepts one connection on `listener` (within 5 s), answers `reply` and returns the peer.
async fn accept_one(listener: std::net::TcpListener, reply: &'static str) -> Option<IpAddr> {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let wait = std::time::Duration::from_secs(5);
    let (mut sock, peer) = tokio::time::timeout(wait, listener.accept())
        .await
        .ok()?
        .ok()?;
    let _ = sock.write_all(reply.as_bytes()).await;
    Some(peer.ip())
}

#[tokio::test]
async fn router_namespace_routes_nats_and_cleans_up() {
    use onestack_netdrv::router::{self, Gateway, RouterPort, RouterSpec};
    require_root!();
    let mut c = Cleanup::default();
    let tenant = bridge(&mut c).await;
    let external = bridge(&mut c).await;
    let g = guest(&mut c, &tenant, Some("10.91.1.10/24")).await;
    let out = guest(&mut c, &external, Some("198.51.100.50/24")).await;
    let (ok, text) = in_ns(
        &g.ns,
        &["ip", "route", "add", "default", "via", "10.91.1.1"],
    )
    .await;
    assert!(ok, "{text}");
    let (ok, text) = in_ns(
        &out.ns,
        &["ip", "route", "add", "10.91.1.0/24", "via", "198.51.100.2"],
    )
    .await;
    assert!(ok, "{text}");

    let router_id = fresh_id();
    let ns = names::router_namespace(&router_id);
    let (pi, pg) = (fresh_id(), fresh_id());
    c.namespaces.push(ns.clone());
    c.links
        .extend([names::router_port(&pi), names::router_port(&pg)]);
    let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().expect("ip");
    let mut spec = RouterSpec {
        router_id: router_id.clone(),
        interfaces: vec![RouterPort {
            port_id: pi.clone(),
            bridge: tenant.clone(),
            mac: "fa:16:3e:91:01:01".into(),
            mtu: 1500,
            addresses: vec!["10.91.1.1/24".parse().expect("net")],
        }],
        gateway: Some(Gateway {
            port: RouterPort {
                port_id: pg.clone(),
                bridge: external.clone(),
                mac: "fa:16:3e:91:02:02".into(),
                mtu: 1500,
                addresses: vec!["198.51.100.2/24".parse().expect("net")],
            },
            default_route: None,
            snat: true,
            floating: vec![(ip("198.51.100.20"), ip("10.91.1.10"))],
        }),
        routes: vec![],
        metadata: true,
    };
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("fwd");
    router::ensure(&spec, &owner()).await.expect("ensure");
    router::ensure(&spec, &owner())
        .await
        .expect("ensure is idempotent");
    assert_eq!(
        router::host_links(&spec),
        [names::router_port(&pi), names::router_port(&pg)]
    );
    let identity = netns::namespace_identity(&ns).expect("identity");
    let (_, fwd) = in_ns(&ns, &["cat", "/proc/sys/net/ipv4/ip_forward"]).await;
    assert_eq!(fwd.trim(), "1");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("fwd"),
        host_forward,
        "host forwarding untouched"
    );
    let info = link::get(&names::router_port(&pg))
        .await
        .expect("get")
        .expect("link");
    assert_eq!(info.master.as_deref(), Some(external.as_str()));

    // The guest reaches outside, seen as its floating IP.
    let fip20: IpAddr = "198.51.100.20".parse().expect("ip");
    let fip21: IpAddr = "198.51.100.21".parse().expect("ip");
    let seen_source = |spec_fip: IpAddr| {
        let g_ns = g.ns.clone();
        let out_ns = out.ns.clone();
        async move {
            let l = netns::bind_listener(&out_ns, "198.51.100.50:7777".parse().expect("sa"))
                .expect("bind outside");
            let server = tokio::spawn(accept_one(l, "hi\n"));
            let (_, text) = in_ns(
                &g_ns,
                &["busybox", "nc", "-w", "2", "198.51.100.50", "7777"],
            )
            .await;
            let peer = server.await.expect("join");
            assert!(text.contains("hi"), "{text}");
            assert_eq!(peer, Some(spec_fip));
        }
    };
    assert!(ping(&g, out.ip).await, "guest to outside");
    seen_source(fip20).await;
    assert!(ping(&out, fip20).await, "outside to floating IP");
    assert!(!ping(&out, g.ip).await, "outside to fixed IP is dropped");

    // Changed floating pairs take effect.
    if let Some(gw) = spec.gateway.as_mut() {
        gw.floating = vec![(ip("198.51.100.21"), ip("10.91.1.10"))];
    }
    // The outside host takes in gratuitous ARP (Linux only updates existing entries by
    // default): the new address is announced without the outside asking.
    let (ok, text) = in_ns(
        &out.ns,
        &["sysctl", "-q", "-w", "net.ipv4.conf.all.arp_accept=1"],
    )
    .await;
    assert!(ok, "{text}");
    router::ensure(&spec, &owner())
        .await
        .expect("ensure new floating");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let (_, neigh) = in_ns(&out.ns, &["ip", "neigh", "show", "198.51.100.21"]).await;
        if neigh.contains("fa:16:3e:91:02:02") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new floating address was not announced: {neigh}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ping(&out, fip21).await, "new floating IP");
    assert!(!ping(&out, fip20).await, "old floating IP gone");
    seen_source(fip21).await;
    assert_eq!(netns::namespace_identity(&ns), Some(identity));

    // Metadata: a listener of this process inside the router namespace.
    let l = netns::bind_listener(&ns, "169.254.169.254:80".parse().expect("sa"))
        .expect("bind metadata");
    let server = tokio::spawn(accept_one(
        l,
        "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nmeta\n",
    ));
    // busybox nc rather than wget: enough for a TCP round trip, no HTTP client quirks.
    let (_, text) = in_ns(
        &g.ns,
        &["busybox", "nc", "-w", "2", "169.254.169.254", "80"],
    )
    .await;
    assert_eq!(server.await.expect("join"), Some(g.ip), "{text}");
    assert!(text.contains("meta"), "{text}");
    // From the outside, even claiming a tenant address, the metadata address is dropped.
    let (ok, text) = in_ns(
        &out.ns,
        &["ip", "addr", "add", "10.91.1.77/32", "dev", &out.dev],
    )
    .await;
    assert!(ok, "{text}");
    let l = netns::bind_listener(&ns, "169.254.169.254:80".parse().expect("sa"))
        .expect("bind metadata again");
    let server = tokio::spawn(accept_one(l, "meta\n"));
    for src in ["198.51.100.50", "10.91.1.77"] {
        let (_, text) = in_ns(
            &out.ns,
            &[
                "ip",
                "route",
                "replace",
                "169.254.169.254/32",
                "via",
                "198.51.100.2",
                "src",
                src,
            ],
        )
        .await;
        let (_, reply) = in_ns(
            &out.ns,
            &["busybox", "nc", "-w", "1", "169.254.169.254", "80"],
        )
        .await;
        assert!(
            !reply.contains("meta"),
            "outside with source {src}: {reply} {text}"
        );
    }
    assert_eq!(
        server.await.expect("join"),
        None,
        "no connection from outside"
    );

    router::remove(&router_id).await.expect("remove");
    router::remove(&router_id)
        .await
        .expect("remove is idempotent");
    assert!(!netns::exists(&ns));
    assert!(netns::namespace_identity(&ns).is_none());
    let left: Vec<String> = link::list_ours(&owner())
        .await
        .expect("list")
        .into_iter()
        .map(|l| l.name)
        .filter(|n| *n == names::router_port(&pi) || *n == names::router_port(&pg))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
