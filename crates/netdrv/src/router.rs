//! Neutron-style L3 routers: one network namespace per router (`osrtr-<router id>`).
//!
//! Every router port is a veth pair: the host side (`osrp-…`) is a port of the network's
//! bridge, the namespace side (`osrn-…`) carries the port's MAC, MTU and addresses. The
//! namespace forwards IPv4 (its own `ip_forward`; the host's is left alone) and holds one nft
//! table, `ip onestack-router`, replaced as a whole on every [`ensure`]:
//!
//! * floating IPs: DNAT in prerouting (and output, so the router itself reaches them), SNAT
//!   to the floating IP for traffic of the fixed address leaving by the gateway; each
//!   floating IP is also a /32 on the gateway device so the kernel answers ARP for it;
//! * with `snat`, everything else leaving by the gateway is source-NATed to the gateway's
//!   first IPv4 address, and the outside may only reach inside through DNAT or replies
//!   (fixed addresses stay unreachable from outside, as behind Neutron's SNAT);
//! * without `snat` the router routes plainly.
//!
//! NAT is IPv4 only. With [`RouterSpec::metadata`], 169.254.169.254 is an address on the
//! namespace's `lo` for the metadata service's listener ([`netns::bind_listener`]); the
//! table's input chain drops metadata requests from the gateway side and any whose source
//! address does not route back through the interface it came in on, so the source address
//! the service identifies a guest by cannot be forged from another network.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde_json::Value;

use crate::cmd;
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::{link, mac, names, netns};

/// The nft table (family `ip`) inside each router namespace.
pub const NAT_TABLE: &str = "onestack-router";

/// The metadata address put on the namespace's `lo` when [`RouterSpec::metadata`] is set.
pub const METADATA_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// One router port: a veth whose namespace side sits on the network of `bridge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterPort {
    pub port_id: String,
    pub bridge: String,
    pub mac: String,
    pub mtu: u32,
    pub addresses: Vec<IpNet>,
}

/// The external port, with its NAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    pub port: RouterPort,
    pub default_route: Option<IpAddr>,
    pub snat: bool,
    /// (floating, fixed) pairs
    pub floating: Vec<(Ipv4Addr, Ipv4Addr)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterSpec {
    pub router_id: String,
    pub interfaces: Vec<RouterPort>,
    pub gateway: Option<Gateway>,
    /// static routes (destination, nexthop)
    pub routes: Vec<(IpNet, IpAddr)>,
    /// put 169.254.169.254/32 on lo so a metadata listener can bind it
    pub metadata: bool,
}

impl RouterSpec {
    fn ports(&self) -> impl Iterator<Item = &RouterPort> {
        self.interfaces
            .iter()
            .chain(self.gateway.iter().map(|g| &g.port))
    }
}

fn check_id(what: &'static str, id: &str) -> Result<()> {
    if names::is_safe_id(id) {
        Ok(())
    } else {
        Err(Error::invalid(what, id))
    }
}

/// The host-side link names [`ensure`] creates, so a sweep of `os*` links keeps them.
pub fn host_links(spec: &RouterSpec) -> Vec<String> {
    spec.ports()
        .map(|p| names::router_port(&p.port_id))
        .collect()
}

/// Makes the router's namespace, ports, routes and NAT match `spec`; idempotent.
pub async fn ensure(spec: &RouterSpec, owner: &Owner) -> Result<()> {
    check_id("router id", &spec.router_id)?;
    let mut seen = BTreeSet::new();
    for p in spec.ports() {
        check_id("router port id", &p.port_id)?;
        mac::normalize(&p.mac)?;
        if !names::is_safe_ifname(&p.bridge) {
            return Err(Error::invalid("bridge name", p.bridge.clone()));
        }
        // Two ids sharing their first 10 characters would share a device.
        if !seen.insert(names::router_port_ns_side(&p.port_id)) {
            return Err(Error::invalid("duplicate router port", p.port_id.clone()));
        }
    }
    let ns = names::router_namespace(&spec.router_id);
    netns::ensure(&ns, owner).await?;
    // Per namespace: the host's forwarding setting is untouched.
    netns::exec(&ns, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]).await?;

    remove_stale_ports(&ns, &seen).await?;
    for p in &spec.interfaces {
        ensure_port(&ns, p, &p.addresses, owner).await?;
    }
    let mut announce = Vec::new();
    if let Some(gw) = &spec.gateway {
        let mut addrs = gw.port.addresses.clone();
        addrs.extend(
            gw.floating
                .iter()
                .map(|(fip, _)| IpNet::from(IpAddr::V4(*fip))),
        );
        addrs.sort();
        addrs.dedup();
        let added = ensure_port(&ns, &gw.port, &addrs, owner).await?;
        let dev = names::router_port_ns_side(&gw.port.port_id);
        announce.extend(added.into_iter().filter_map(|a| match a.addr() {
            IpAddr::V4(v4) => Some((dev.clone(), v4)),
            IpAddr::V6(_) => None,
        }));
    }
    netns::ensure_lo_address(&ns, METADATA_ADDR, spec.metadata).await?;
    ensure_routes(&ns, spec).await?;
    cmd::run_with_input(
        "ip",
        &["netns", "exec", &ns, "nft", "-f", "-"],
        Some(&render_nat(spec)),
    )
    .await?;
    // Only now that the NAT is in place: the outside may send at once.
    for (dev, addr) in announce {
        announce_address(&ns, &dev, addr);
    }
    Ok(())
}

/// Tells the external network that `addr` now lives here, with gratuitous ARP (in the
/// background: the pass does not wait). Neighbours that had the address from another router
/// or an unanswered request update their caches at once instead of after their own timeout.
fn announce_address(ns: &str, dev: &str, addr: Ipv4Addr) {
    let args: Vec<String> = ["netns", "exec", ns, "arping", "-U", "-c", "2", "-I", dev]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([addr.to_string()])
        .collect();
    tokio::spawn(async move {
        if let Err(error) = cmd::run("ip", &args).await {
            tracing::warn!(
                %addr, %error,
                "cannot announce a floating address (install iputils-arping); neighbours learn it when their ARP entries expire"
            );
        }
    });
}

/// Deletes the router's namespace and its ports; a missing router is fine.
///
/// The ports are deleted explicitly first: a socket made by [`netns::bind_listener`] keeps the
/// namespace (and so the veth pairs) alive after `ip netns del`.
pub async fn remove(router_id: &str) -> Result<()> {
    check_id("router id", router_id)?;
    let ns = names::router_namespace(router_id);
    if !netns::exists(&ns) {
        return Ok(());
    }
    remove_stale_ports(&ns, &BTreeSet::new()).await?;
    netns::delete(&ns).await
}

/// Deletes our `osrn-` devices in `ns` that are not in `keep` (their host sides go with them).
async fn remove_stale_ports(ns: &str, keep: &BTreeSet<String>) -> Result<()> {
    let out = cmd::run("ip", &["-n", ns, "-j", "link", "show"]).await?;
    let v = cmd::parse_json("ip", &out)?;
    let stale: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("ifname")?.as_str())
        .filter(|n| n.starts_with(names::ROUTER_PORT_NS) && !keep.contains(*n))
        .filter(|n| names::is_safe_ifname(n))
        .collect();
    for dev in stale {
        match cmd::run("ip", &["-n", ns, "link", "del", "dev", dev]).await {
            Err(e) if e.stderr_contains("Cannot find device") => {}
            other => other.map(drop)?,
        }
    }
    Ok(())
}

/// Builds one router port; returns the addresses it added inside the namespace.
async fn ensure_port(
    ns: &str,
    p: &RouterPort,
    addrs: &[IpNet],
    owner: &Owner,
) -> Result<Vec<IpNet>> {
    let host = names::router_port(&p.port_id);
    let inner = names::router_port_ns_side(&p.port_id);
    let port_mac = mac::normalize(&p.mac)?;
    // Once the inner side is in the namespace, the host side alone stands for the pair.
    link::ensure_veth(&host, &inner, p.mtu, owner).await?;
    link::attach(&host, &p.bridge, owner).await?;
    netns::move_link(&inner, ns).await?;

    let out = cmd::run("ip", &["-n", ns, "-j", "link", "show", "dev", &inner]).await?;
    let v = cmd::parse_json("ip", &out)?;
    let field = |k: &str| v.get(0).and_then(|l| l.get(k));
    if field("address").and_then(Value::as_str) != Some(port_mac.as_str()) {
        cmd::run(
            "ip",
            &["-n", ns, "link", "set", "dev", &inner, "address", &port_mac],
        )
        .await?;
    }
    if p.mtu != 0 && field("mtu").and_then(Value::as_u64) != Some(u64::from(p.mtu)) {
        let mtu = p.mtu.to_string();
        cmd::run("ip", &["-n", ns, "link", "set", "dev", &inner, "mtu", &mtu]).await?;
    }
    netns::ensure_addresses(ns, &inner, addrs).await
}

/// The default route via the gateway, and exactly the spec's static routes (`proto static`).
async fn ensure_routes(ns: &str, spec: &RouterSpec) -> Result<()> {
    let default = spec.gateway.as_ref().and_then(|g| {
        Some((
            g.default_route?,
            names::router_port_ns_side(&g.port.port_id),
        ))
    });
    match default {
        Some((via, dev)) => {
            let family = if via.is_ipv4() { "-4" } else { "-6" };
            let via = via.to_string();
            cmd::run(
                "ip",
                &[
                    "-n", ns, family, "route", "replace", "default", "via", &via, "dev", &dev,
                ],
            )
            .await?;
        }
        None => {
            // No gateway route wanted: drop a leftover one (none is fine).
            for family in ["-4", "-6"] {
                if let Err(e) = cmd::run("ip", &["-n", ns, family, "route", "del", "default"]).await
                {
                    tracing::debug!(ns, error = %e, "no default route to delete");
                }
            }
        }
    }

    let wanted: BTreeSet<(IpNet, IpAddr)> = spec
        .routes
        .iter()
        .map(|(dst, via)| (dst.trunc(), *via))
        .collect();
    let mut current = BTreeSet::new();
    for family in ["-4", "-6"] {
        let out = cmd::run(
            "ip",
            &["-n", ns, family, "-j", "route", "show", "proto", "static"],
        )
        .await?;
        current.extend(parse_routes(&cmd::parse_json("ip", &out)?));
    }
    for (dst, via) in current.difference(&wanted) {
        let (dst, via) = (dst.to_string(), via.to_string());
        match cmd::run(
            "ip",
            &[
                "-n", ns, "route", "del", &dst, "via", &via, "proto", "static",
            ],
        )
        .await
        {
            Err(e) if e.stderr_contains("No such process") => {}
            other => other.map(drop)?,
        }
    }
    for (dst, via) in &wanted {
        let (dst, via) = (dst.to_string(), via.to_string());
        cmd::run(
            "ip",
            &[
                "-n", ns, "route", "replace", &dst, "via", &via, "proto", "static",
            ],
        )
        .await?;
    }
    Ok(())
}

/// (destination, nexthop) of `ip -j route show` entries with a gateway.
fn parse_routes(v: &Value) -> BTreeSet<(IpNet, IpAddr)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let via: IpAddr = r.get("gateway")?.as_str()?.parse().ok()?;
            let dst = r.get("dst")?.as_str()?;
            let dst: IpNet = match dst {
                "default" if via.is_ipv4() => "0.0.0.0/0".parse().ok()?,
                "default" => "::/0".parse().ok()?,
                d if d.contains('/') => d.parse().ok()?,
                d => IpNet::from(d.parse::<IpAddr>().ok()?),
            };
            Some((dst, via))
        })
        .collect()
}

/// The whole `ip onestack-router` table for `nft -f -`: created if missing, deleted and
/// written again in one transaction, so stale rules never survive and nothing is half-applied.
fn render_nat(spec: &RouterSpec) -> String {
    let mut s = format!("table ip {NAT_TABLE} {{}}\ndelete table ip {NAT_TABLE}\n");
    let _ = writeln!(s, "table ip {NAT_TABLE} {{");
    if let Some(gw) = &spec.gateway {
        let dev = names::router_port_ns_side(&gw.port.port_id);
        let own: Vec<Ipv4Addr> = gw
            .port
            .addresses
            .iter()
            .filter_map(|a| match a.addr() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect();

        s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat;\n");
        for (fip, fixed) in &gw.floating {
            let _ = writeln!(s, "    ip daddr {fip} dnat to {fixed}");
        }
        s.push_str("  }\n  chain output {\n    type nat hook output priority -100;\n");
        for (fip, fixed) in &gw.floating {
            let _ = writeln!(s, "    ip daddr {fip} dnat to {fixed}");
        }
        s.push_str("  }\n  chain postrouting {\n    type nat hook postrouting priority srcnat;\n");
        for (fip, fixed) in &gw.floating {
            let _ = writeln!(s, "    oifname \"{dev}\" ip saddr {fixed} snat to {fip}");
        }
        if gw.snat
            && let Some(first) = own.first()
        {
            let own: Vec<String> = own.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "    oifname \"{dev}\" ip saddr != {{ {} }} snat to {first}",
                own.join(", ")
            );
        }
        s.push_str(
            "  }\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n",
        );
        if gw.snat {
            // From outside, only replies and floating-IP traffic may pass.
            let _ = writeln!(
                s,
                "    iifname \"{dev}\" ct state established,related accept"
            );
            let _ = writeln!(s, "    iifname \"{dev}\" ct status dnat accept");
            let _ = writeln!(s, "    iifname \"{dev}\" drop");
        }
        s.push_str("  }\n");
    }
    if spec.metadata {
        // The service knows a guest by its source address: only ones that route back
        // through the interface they came in on (fib rpf), never from the outside.
        s.push_str("  chain input {\n    type filter hook input priority 0; policy accept;\n");
        if let Some(gw) = &spec.gateway {
            let dev = names::router_port_ns_side(&gw.port.port_id);
            let _ = writeln!(s, "    iifname \"{dev}\" ip daddr {METADATA_ADDR} drop");
        }
        let _ = writeln!(
            s,
            "    iifname != \"lo\" ip daddr {METADATA_ADDR} fib saddr . iif oif missing drop"
        );
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW_PORT: &str = "9a1b2c3d-0000-4000-8000-000000000001";

    fn port(id: &str, addr: &str) -> RouterPort {
        RouterPort {
            port_id: id.into(),
            bridge: "osbr-x".into(),
            mac: "fa:16:3e:00:00:01".into(),
            mtu: 1500,
            addresses: vec![addr.parse().expect("net")],
        }
    }

    fn spec(snat: bool, floating: Vec<(Ipv4Addr, Ipv4Addr)>) -> RouterSpec {
        RouterSpec {
            router_id: "r1".into(),
            interfaces: vec![port("1111111111-a", "10.0.0.1/24")],
            gateway: Some(Gateway {
                port: port(GW_PORT, "203.0.113.2/24"),
                default_route: Some("203.0.113.1".parse().expect("ip")),
                snat,
                floating,
            }),
            routes: vec![],
            metadata: false,
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn renders_floating_and_snat() {
        let text = render_nat(&spec(true, vec![(ip("203.0.113.20"), ip("10.0.0.10"))]));
        assert!(text.starts_with(
            "table ip onestack-router {}\ndelete table ip onestack-router\ntable ip onestack-router {\n"
        ));
        assert_eq!(
            text.matches("ip daddr 203.0.113.20 dnat to 10.0.0.10")
                .count(),
            2
        );
        let gw = "\"osrn-9a1b2c3d-0\"";
        assert!(text.contains(&format!(
            "oifname {gw} ip saddr 10.0.0.10 snat to 203.0.113.20"
        )));
        assert!(text.contains(&format!(
            "oifname {gw} ip saddr != {{ 203.0.113.2 }} snat to 203.0.113.2"
        )));
        // The floating SNAT comes first, so it wins over the gateway SNAT.
        assert!(text.find("snat to 203.0.113.20") < text.find("snat to 203.0.113.2\n"));
        assert!(text.contains(&format!("iifname {gw} ct status dnat accept")));
        assert!(text.contains(&format!("iifname {gw} drop")));
        assert!(text.contains("type nat hook prerouting priority dstnat;"));
        assert!(text.contains("type filter hook forward priority 0; policy accept;"));
    }

    #[test]
    fn routed_mode_forwards_everything() {
        let text = render_nat(&spec(false, vec![(ip("203.0.113.20"), ip("10.0.0.10"))]));
        assert!(text.contains("snat to 203.0.113.20"));
        assert!(!text.contains("!="), "{text}");
        assert!(!text.contains("drop"), "{text}");
    }

    #[test]
    fn no_gateway_no_nat() {
        let mut s = spec(true, vec![]);
        s.gateway = None;
        let text = render_nat(&s);
        assert!(!text.contains("chain"), "{text}");
        assert!(text.ends_with("table ip onestack-router {\n}\n"), "{text}");
    }

    #[test]
    fn metadata_only_from_inside_and_unforged() {
        let mut s = spec(true, vec![]);
        assert!(!render_nat(&s).contains("chain input"));
        s.metadata = true;
        let text = render_nat(&s);
        assert!(text.contains("chain input {\n    type filter hook input priority 0; policy accept;\n    iifname \"osrn-9a1b2c3d-0\" ip daddr 169.254.169.254 drop\n"), "{text}");
        assert!(
            text.contains(
                "iifname != \"lo\" ip daddr 169.254.169.254 fib saddr . iif oif missing drop"
            ),
            "{text}"
        );
    }

    #[test]
    fn host_links_cover_all_ports() {
        assert_eq!(
            host_links(&spec(true, vec![])),
            ["osrp-1111111111", "osrp-9a1b2c3d-0"]
        );
    }

    #[test]
    fn parses_static_routes() {
        let v: Value = serde_json::from_str(
            r#"[{"dst":"10.9.0.0/16","gateway":"10.0.0.5","dev":"osrn-x","protocol":"static"},
                {"dst":"10.8.0.1","gateway":"10.0.0.6","dev":"osrn-x","protocol":"static"},
                {"dst":"10.0.0.0/24","dev":"osrn-x","protocol":"kernel"}]"#,
        )
        .expect("json");
        let got: Vec<String> = parse_routes(&v)
            .iter()
            .map(|(d, v)| format!("{d} via {v}"))
            .collect();
        assert_eq!(
            got,
            ["10.8.0.1/32 via 10.0.0.6", "10.9.0.0/16 via 10.0.0.5"]
        );
    }
}
