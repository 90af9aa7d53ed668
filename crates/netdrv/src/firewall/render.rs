//! Turns a [`Ruleset`] into one nft input that replaces both of our tables atomically.
//! Only validated values reach the text: our device names, normalized MACs, addresses,
//! numbers, and chain/set names we derive from indices plus sanitized id prefixes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::model::{Direction, EtherType, GroupFilter, PortFilter, Remote, Rule, Ruleset};
use crate::error::{Error, Result};
use crate::{mac, names};

/// Ports are numbered 1..=MAX_PORTS: the number lives in 16 bits of the packet mark.
pub const MAX_PORTS: usize = 0xffff;

const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
/// Protocols with ports that `th dport` can match: TCP, UDP, DCCP, SCTP, UDP-Lite.
const PORTED: [u8; 5] = [6, 17, 33, 132, 136];

/// ICMPv6 a port may send whatever its groups say: solicitations, advertisements of its
/// own addresses, multicast listener reports (the bridge table has checked the addresses).
const ND_OUT: &str = "nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, \
                      mld-listener-report, mld2-listener-report, mld-listener-done";
/// ICMPv6 a port may send from the unspecified address `::` (before it has one): router
/// solicitations and multicast listener reports. Its DAD solicitations are checked apart.
const UNSPECIFIED_OUT: &str = "nd-router-solicit, mld-listener-report, mld2-listener-report, \
                               mld-listener-done";
/// The target address of a neighbor solicitation or advertisement: 16 bytes after the
/// 8-byte ICMPv6 header (raw payload, as this nft has no `icmpv6 taddr`).
const ND_TARGET: &str = "@th,64,128";
/// ICMPv6 a port may always receive.
const ND_IN: &str = "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, \
                     mld-listener-query, nd-redirect";

/// A validated port with its number and the chain/set names it uses.
struct Port<'a> {
    idx: usize,
    device: &'a str,
    bridge: &'a str,
    /// Each MAC the port may send from, with the addresses it may use with that MAC only.
    macs: Vec<MacAddresses>,
    groups: Vec<usize>,
}

/// One MAC of a port and its addresses: IPv4 and IPv6 (the MAC's EUI-64 link-local
/// included), aggregated.
struct MacAddresses {
    mac: String,
    v4: Vec<Ipv4Net>,
    v6: Vec<Ipv6Net>,
}

/// A validated bridge and its conntrack zone.
struct ZoneEntry<'a> {
    bridge: &'a str,
    zone: u16,
}

/// A group that some port uses, with its chain/set name stem.
struct Group<'a> {
    stem: String,
    filter: &'a GroupFilter,
}

pub fn render(table: &str, rs: &Ruleset) -> Result<String> {
    if rs.ports.len() > MAX_PORTS {
        return Err(Error::invalid(
            "ruleset",
            format!("{} ports, at most {MAX_PORTS}", rs.ports.len()),
        ));
    }
    let mut group_index = BTreeMap::new();
    for (i, g) in rs.groups.iter().enumerate() {
        if group_index.insert(g.id.as_str(), i).is_some() {
            return Err(Error::invalid("duplicate security group", g.id.clone()));
        }
    }
    let zones = zones(&rs.zones)?;
    let mut devices = BTreeSet::new();
    let mut ports = Vec::with_capacity(rs.ports.len());
    for (i, p) in rs.ports.iter().enumerate() {
        if !devices.insert(p.device.as_str()) {
            return Err(Error::invalid("duplicate port device", p.device.clone()));
        }
        ports.push(port(i + 1, p, &group_index)?);
    }
    // Only groups some port uses get chains; only groups some rendered rule names as
    // remote get sets.
    let used: BTreeSet<usize> = ports
        .iter()
        .flat_map(|p| p.groups.iter().copied())
        .collect();
    let groups: BTreeMap<usize, Group> = used
        .iter()
        .map(|&i| {
            let filter = &rs.groups[i];
            (
                i,
                Group {
                    stem: stem(i, &filter.id),
                    filter,
                },
            )
        })
        .collect();
    let remotes: BTreeSet<usize> = groups
        .values()
        .flat_map(|g| &g.filter.rules)
        .filter_map(|r| match &r.remote {
            Remote::Group(id) => group_index.get(id.as_str()).copied(),
            _ => None,
        })
        .collect();
    let set_name = |i: usize, fam: &str| format!("{}-{fam}", stem(i, &rs.groups[i].id));

    let mut out = String::with_capacity(256 + rs.ports.len() * 1024);
    for family in ["bridge", "inet"] {
        // Declaring then deleting makes the delete valid whether or not the table exists;
        // the whole input is one transaction, so traffic never sees a half-built table.
        let _ = writeln!(
            out,
            "table {family} {table} {{}}\ndelete table {family} {table}"
        );
    }
    render_bridge(&mut out, table, &ports);
    let _ = writeln!(out, "table inet {table} {{");
    render_zones(&mut out, &zones);
    for &i in &remotes {
        let members = &rs.groups[i].members;
        for (fam, ty, v6) in [("v4", "ipv4_addr", false), ("v6", "ipv6_addr", true)] {
            let elems: BTreeSet<IpAddr> = members
                .iter()
                .copied()
                .filter(|a| a.is_ipv6() == v6)
                .collect();
            let _ = write!(
                out,
                "  set {} {{\n    type {ty}; flags interval;\n",
                set_name(i, fam)
            );
            if !elems.is_empty() {
                let _ = writeln!(out, "    elements = {{ {} }}", join(&elems));
            }
            out.push_str("  }\n");
        }
    }
    dispatch(&mut out, "egress", 0, "0x0000ffff", &ports, |p| {
        (format!("{:#x}", p.idx), format!("port{}-egress", p.idx))
    });
    dispatch(&mut out, "ingress", 10, "0xffff0000", &ports, |p| {
        (
            format!("{:#x}", p.idx << 16),
            format!("port{}-ingress", p.idx),
        )
    });
    render_common_chains(&mut out);
    for p in &ports {
        render_port_chains(&mut out, p, &groups);
    }
    for g in groups.values() {
        for dir in [Direction::Ingress, Direction::Egress] {
            let _ = writeln!(out, "  chain {}-{} {{", g.stem, dir_name(dir));
            for r in g.filter.rules.iter().filter(|r| r.direction == dir) {
                let remote_set =
                    |id: &str, fam: &str| group_index.get(id).map(|&i| set_name(i, fam));
                if let Some(line) = rule_line(r, remote_set) {
                    let _ = writeln!(out, "    {line}");
                }
            }
            out.push_str("  }\n");
        }
    }
    out.push_str("}\n");
    Ok(out)
}

/// Checks the zones: our bridges, each once, zones 1..=65535 each once (two networks in
/// one zone would share their connections).
fn zones(zones: &[super::model::Zone]) -> Result<Vec<ZoneEntry<'_>>> {
    let mut bridges = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    let mut out = Vec::with_capacity(zones.len());
    for z in zones {
        if !names::is_safe_ifname(&z.bridge) || !names::is_ours(&z.bridge) {
            return Err(Error::invalid("zone bridge", z.bridge.clone()));
        }
        if !bridges.insert(z.bridge.as_str()) {
            return Err(Error::invalid("bridge in two zones", z.bridge.clone()));
        }
        if z.zone == 0 || !numbers.insert(z.zone) {
            return Err(Error::invalid(
                "conntrack zone",
                format!("{} for {} (0, or another bridge's)", z.zone, z.bridge),
            ));
        }
        out.push(ZoneEntry {
            bridge: &z.bridge,
            zone: z.zone,
        });
    }
    Ok(out)
}

fn port<'a>(idx: usize, p: &'a PortFilter, groups: &BTreeMap<&str, usize>) -> Result<Port<'a>> {
    if !names::is_safe_ifname(&p.device) || !names::is_ours(&p.device) {
        return Err(Error::invalid("port device", p.device.clone()));
    }
    if !names::is_safe_ifname(&p.bridge) || !names::is_ours(&p.bridge) {
        return Err(Error::invalid("port bridge", p.bridge.clone()));
    }
    // MAC -> the addresses that go with it: the port's MACs with its fixed IPs, each
    // allowed address pair's MAC with that pair's address.
    let mut by_mac: BTreeMap<String, Vec<IpNet>> = BTreeMap::new();
    for m in &p.macs {
        by_mac
            .entry(mac::normalize(m)?)
            .or_default()
            .extend(p.addresses.iter().copied());
    }
    for (m, net) in &p.pairs {
        by_mac.entry(mac::normalize(m)?).or_default().push(*net);
    }
    let macs = by_mac
        .into_iter()
        .map(|(mac, nets)| {
            let mut v4 = Vec::new();
            let mut v6 = Vec::new();
            for net in nets {
                match net.trunc() {
                    IpNet::V4(n) => v4.push(n),
                    IpNet::V6(n) => v6.push(n),
                }
            }
            // The MAC's EUI-64 link-local address goes with it (as Neutron allows).
            v6.extend(link_local(&mac).and_then(|a| Ipv6Net::new(a, 128).ok()));
            MacAddresses {
                mac,
                v4: Ipv4Net::aggregate(&v4),
                v6: Ipv6Net::aggregate(&v6),
            }
        })
        .collect();
    Ok(Port {
        idx,
        device: &p.device,
        bridge: &p.bridge,
        macs,
        // A group missing from the ruleset has no rules: it allows nothing.
        groups: p
            .groups
            .iter()
            .filter_map(|g| groups.get(g.as_str()).copied())
            .collect(),
    })
}

fn render_bridge(out: &mut String, table: &str, ports: &[Port]) {
    let _ = writeln!(out, "table bridge {table} {{");
    // Frames entering on any onestack device start with a clean mark, so the inet table
    // never mistakes someone else's mark for a port number (others' marks are left alone).
    // Every cloud on the host clears in this chain, before any cloud marks (-200), so one
    // cloud's clearing never wipes the port number another cloud just set.
    out.push_str(
        "  chain clear {\n    type filter hook prerouting priority -300; policy accept;\n",
    );
    out.push_str("    iifname \"os*\" meta mark set 0x0\n  }\n");
    out.push_str(
        "  chain prerouting {\n    type filter hook prerouting priority -200; policy accept;\n",
    );
    if !ports.is_empty() {
        let map = ports
            .iter()
            .map(|p| format!("\"{}\" : jump from{}", p.device, p.idx));
        let _ = writeln!(
            out,
            "    iifname vmap {{ {} }}",
            map.collect::<Vec<_>>().join(", ")
        );
    }
    out.push_str("  }\n");
    out.push_str("  chain forward {\n    type filter hook forward priority -200; policy accept;\n");
    if !ports.is_empty() {
        let map = ports
            .iter()
            .map(|p| format!("\"{}\" : jump to{}", p.device, p.idx));
        let _ = writeln!(
            out,
            "    oifname vmap {{ {} }}",
            map.collect::<Vec<_>>().join(", ")
        );
    }
    out.push_str("  }\n");
    // What any port may send before it has an address (DHCP, router discovery, multicast
    // listener reports from ::), and what no port may send (it is never a router); shared,
    // so each port costs one jump instead of four rules.
    out.push_str("  chain from-common {\n");
    out.push_str("    ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept\n");
    let _ = writeln!(
        out,
        "    ip6 saddr :: icmpv6 type {{ {UNSPECIFIED_OUT} }} accept"
    );
    out.push_str("    icmpv6 type { nd-router-advert, nd-redirect } drop\n  }\n");
    for p in ports {
        render_from_port(out, p);
    }
    for p in ports {
        let _ = writeln!(
            out,
            "  chain to{} {{\n    meta mark set meta mark and 0x0000ffff or {:#010x}\n  }}",
            p.idx,
            p.idx << 16
        );
    }
    out.push_str("}\n");
}

/// A port's anti-spoofing chain. Every address is paired with its MAC: the port's own MAC
/// with its fixed IPs, an allowed address pair's MAC with that pair's addresses, each MAC
/// with its EUI-64 link-local address. Neighbor discovery is held to the port's own
/// addresses: an advertisement must come from one and be for one (so a guest cannot
/// poison its neighbors' caches), a solicitation from `::` (DAD) must be for one.
fn render_from_port(out: &mut String, p: &Port) {
    let _ = writeln!(out, "  chain from{} {{", p.idx);
    let _ = writeln!(out, "    meta mark set {:#010x}", p.idx);
    if p.macs.is_empty() {
        out.push_str("    drop\n  }\n");
        return;
    }
    let all = p.macs.iter().map(|m| m.mac.as_str()).collect::<Vec<_>>();
    let _ = writeln!(out, "    ether saddr != {{ {} }} drop", all.join(", "));
    // ARP: the sender is the frame's MAC with one of that MAC's addresses (0.0.0.0 for
    // probes).
    for m in &p.macs {
        let ips = std::iter::once("0.0.0.0".to_owned()).chain(m.v4.iter().map(net_text));
        let _ = writeln!(
            out,
            "    ether type arp ether saddr {mac} arp saddr ether {mac} arp saddr ip {{ {} }} accept",
            ips.collect::<Vec<_>>().join(", "),
            mac = m.mac,
        );
    }
    out.push_str("    ether type arp drop\n");
    out.push_str("    jump from-common\n");
    for m in p.macs.iter().filter(|m| !m.v6.is_empty()) {
        let own = join_nets(&m.v6);
        let targets = nd_targets(&m.v6);
        let _ = writeln!(
            out,
            "    ether saddr {} icmpv6 type nd-neighbor-advert ip6 saddr {{ {own} }} {ND_TARGET} {{ {targets} }} accept",
            m.mac
        );
        let _ = writeln!(
            out,
            "    ether saddr {} ip6 saddr :: icmpv6 type nd-neighbor-solicit {ND_TARGET} {{ {targets} }} accept",
            m.mac
        );
    }
    out.push_str("    icmpv6 type nd-neighbor-advert drop\n");
    for m in &p.macs {
        if !m.v4.is_empty() {
            let _ = writeln!(
                out,
                "    ether saddr {} ip saddr {{ {} }} accept",
                m.mac,
                join_nets(&m.v4)
            );
        }
        if !m.v6.is_empty() {
            let _ = writeln!(
                out,
                "    ether saddr {} ip6 saddr {{ {} }} accept",
                m.mac,
                join_nets(&m.v6)
            );
        }
    }
    // Anything else (other sources, other ethertypes, VLAN tags) is spoofing.
    out.push_str("    drop\n  }\n");
}

/// IPv6 addresses and prefixes as 128-bit integers and ranges, for a raw payload match.
fn nd_targets(nets: &[Ipv6Net]) -> String {
    nets.iter()
        .map(|n| {
            let (first, last) = (u128::from(n.network()), u128::from(n.broadcast()));
            if first == last {
                format!("{first:#034x}")
            } else {
                format!("{first:#034x}-{last:#034x}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The inet table's first chain: each network's bridge puts its traffic in the network's
/// conntrack zone, before conntrack (priority raw) sees it. With br_netfilter the bridge is
/// the input interface of bridged traffic here.
fn render_zones(out: &mut String, zones: &[ZoneEntry]) {
    if zones.is_empty() {
        return;
    }
    out.push_str("  chain zones {\n    type filter hook prerouting priority raw; policy accept;\n");
    let map = zones
        .iter()
        .map(|z| format!("\"{}\" : {}", z.bridge, z.zone))
        .collect::<Vec<_>>();
    let _ = writeln!(out, "    ct zone set iifname map {{ {} }}", map.join(", "));
    out.push_str("  }\n");
}

/// A base chain in the inet forward hook that jumps to the port chain named by some bits
/// of the mark the bridge table set.
fn dispatch(
    out: &mut String,
    name: &str,
    priority: i32,
    mask: &str,
    ports: &[Port],
    entry: impl Fn(&Port) -> (String, String),
) {
    let _ = writeln!(
        out,
        "  chain {name} {{\n    type filter hook forward priority {priority}; policy accept;"
    );
    if !ports.is_empty() {
        // Only traffic on our own bridges (its input interface here, with br_netfilter):
        // another cloud's frames carry its own port numbers, which mean nothing to us.
        let bridges: BTreeSet<String> = ports.iter().map(|p| format!("\"{}\"", p.bridge)).collect();
        let map = ports.iter().map(|p| {
            let (key, chain) = entry(p);
            format!("{key} : jump {chain}")
        });
        let _ = writeln!(
            out,
            "    iifname {{ {} }} meta mark and {mask} vmap {{ {} }}",
            bridges.into_iter().collect::<Vec<_>>().join(", "),
            map.collect::<Vec<_>>().join(", ")
        );
    }
    out.push_str("  }\n");
}

/// What every port chain starts with: DHCP and neighbor discovery, then conntrack, then
/// (egress) refusing to act as DHCP server or router whatever the groups allow. Accept and
/// drop end the packet's walk; anything else returns to the port chain.
fn render_common_chains(out: &mut String) {
    out.push_str("  chain common-egress {\n");
    out.push_str("    meta nfproto ipv4 udp sport 68 udp dport 67 accept\n");
    out.push_str("    meta nfproto ipv6 udp sport 546 udp dport 547 accept\n");
    let _ = writeln!(out, "    icmpv6 type {{ {ND_OUT} }} accept");
    out.push_str("    ct state established,related accept\n    ct state invalid drop\n");
    out.push_str("    meta nfproto ipv4 udp sport 67 udp dport 68 drop\n");
    out.push_str("    meta nfproto ipv6 udp sport 547 udp dport 546 drop\n");
    out.push_str("    icmpv6 type nd-router-advert drop\n  }\n");
    out.push_str("  chain common-ingress {\n");
    out.push_str("    meta nfproto ipv4 udp sport 67 udp dport 68 accept\n");
    out.push_str("    meta nfproto ipv6 udp sport 547 udp dport 546 accept\n");
    let _ = writeln!(out, "    icmpv6 type {{ {ND_IN} }} accept");
    out.push_str("    ct state established,related accept\n    ct state invalid drop\n  }\n");
}

/// A port's two chains: the common part, its groups' rules, then drop.
fn render_port_chains(out: &mut String, p: &Port, groups: &BTreeMap<usize, Group>) {
    for dir in [Direction::Egress, Direction::Ingress] {
        let d = dir_name(dir);
        let _ = writeln!(out, "  chain port{}-{d} {{\n    jump common-{d}", p.idx);
        for g in p.groups.iter().filter_map(|i| groups.get(i)) {
            let _ = writeln!(out, "    jump {}-{d}", g.stem);
        }
        out.push_str("    drop\n  }\n");
    }
}

/// One group rule as an nft rule ending in `accept`, or `None` when it can never match
/// (a prefix of the other family, a remote group we do not know, nonsense ports).
fn rule_line(r: &Rule, remote_set: impl Fn(&str, &str) -> Option<String>) -> Option<String> {
    let v6 = r.ethertype == EtherType::V6;
    let (ip, fam) = if v6 { ("ip6", "v6") } else { ("ip", "v4") };
    let mut parts = vec![format!("meta nfproto {}", if v6 { "ipv6" } else { "ipv4" })];
    let addr = match r.direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    match &r.remote {
        Remote::Any => {}
        Remote::Prefix(net) => {
            if net.addr().is_ipv6() != v6 {
                return None;
            }
            if net.prefix_len() > 0 {
                parts.push(format!("{ip} {addr} {}", net_text(&net.trunc())));
            }
        }
        Remote::Group(id) => parts.push(format!("{ip} {addr} @{}", remote_set(id, fam)?)),
    }
    // Neutron's "icmp" means ICMPv6 in an IPv6 rule.
    let protocol = match r.protocol {
        Some(ICMP) if v6 => Some(ICMPV6),
        p => p,
    };
    match protocol {
        None => {}
        Some(p) if PORTED.contains(&p) => {
            parts.push(format!("meta l4proto {p}"));
            match (r.port_min, r.port_max) {
                (None, None) => {}
                (Some(a), None) | (None, Some(a)) => parts.push(format!("th dport {a}")),
                (Some(a), Some(b)) if a == b => parts.push(format!("th dport {a}")),
                (Some(a), Some(b)) if a < b => parts.push(format!("th dport {a}-{b}")),
                _ => return None,
            }
        }
        Some(p) if (p == ICMP && !v6) || (p == ICMPV6 && v6) => {
            let kw = if v6 { "icmpv6" } else { "icmp" };
            parts.push(format!("meta l4proto {p}"));
            if let Some(t) = r.port_min {
                parts.push(format!("{kw} type {}", u8::try_from(t).ok()?));
                if let Some(c) = r.port_max {
                    parts.push(format!("{kw} code {}", u8::try_from(c).ok()?));
                }
            }
        }
        Some(p) => parts.push(format!("meta l4proto {p}")),
    }
    parts.push("accept".into());
    Some(parts.join(" "))
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// `sg<index>-<up to 8 alphanumerics of the id>`: unique by index, readable by id.
fn stem(index: usize, id: &str) -> String {
    let short: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("sg{index}-{short}")
}

fn net_text<N: std::fmt::Display + Copy + Into<IpNet>>(n: &N) -> String {
    let net: IpNet = (*n).into();
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

fn join_nets<N: std::fmt::Display + Copy + Into<IpNet>>(nets: &[N]) -> String {
    nets.iter().map(net_text).collect::<Vec<_>>().join(", ")
}

fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The modified EUI-64 link-local address of a MAC (fe80::/64 + flipped U/L bit + ff:fe).
fn link_local(mac: &str) -> Option<Ipv6Addr> {
    let b: Vec<u8> = mac
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect::<Option<_>>()?;
    let [b0, b1, b2, b3, b4, b5] = <[u8; 6]>::try_from(b).ok()?;
    let w = |hi: u8, lo: u8| u16::from(hi) << 8 | u16::from(lo);
    Some(Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        w(b0 ^ 0x02, b1),
        w(b2, 0xff),
        w(0xfe, b3),
        w(b4, b5),
    ))
}
