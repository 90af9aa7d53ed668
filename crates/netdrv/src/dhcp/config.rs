//! What dnsmasq is given: its command line, the hosts file (which MAC gets which address)
//! and the options file (per-subnet router, DNS servers, routes, MTU). Pure functions, so
//! the exact text is unit-tested.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use super::{DhcpNetwork, DhcpSubnet};
use crate::error::Result;
use crate::mac;

/// dnsmasq's default lease limit (1000) would refuse ports beyond it on big subnets.
const MAX_LEASES: u64 = 1 << 24;

#[derive(Debug, PartialEq, Eq)]
pub struct Config {
    pub args: Vec<String>,
    pub hosts: String,
    pub opts: String,
}

/// IPv6 subnets are skipped: only DHCPv4 is served for now.
fn v4_subnets(net: &DhcpNetwork) -> impl Iterator<Item = (usize, &DhcpSubnet)> {
    net.subnets
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.cidr, IpNet::V4(_)))
}

fn tag(index: usize) -> String {
    format!("subnet{index}")
}

pub fn render(dir: &Path, interface: &str, net: &DhcpNetwork) -> Result<Config> {
    let path = |name: &str| dir.join(name).display().to_string();
    let mut args: Vec<String> = [
        "--conf-file=/dev/null",
        "--no-hosts",
        "--no-resolv",
        "--port=0",
        "--bind-interfaces",
        "--except-interface=lo",
        "--leasefile-ro",
        "--dhcp-authoritative",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.push(format!("--interface={interface}"));
    args.push(format!("--pid-file={}", path("pid")));
    args.push(format!("--dhcp-hostsfile={}", path("hosts")));
    args.push(format!("--dhcp-optsfile={}", path("opts")));
    let mut leases: u64 = 0;
    for (i, s) in v4_subnets(net) {
        let lease = match s.lease_secs {
            0 => "infinite".to_owned(),
            // dnsmasq refuses leases under two minutes.
            n => n.max(120).to_string(),
        };
        args.push(format!(
            "--dhcp-range=set:{},{},static,{},{lease}",
            tag(i),
            s.cidr.network(),
            s.cidr.netmask()
        ));
        leases += 1u64 << (32 - u32::from(s.cidr.prefix_len()).min(32));
    }
    args.push(format!(
        "--dhcp-lease-max={}",
        leases.clamp(1000, MAX_LEASES)
    ));

    let mut hosts = String::new();
    for h in &net.hosts {
        if !h.ip.is_ipv4() {
            continue;
        }
        let m = mac::normalize(&h.mac)?;
        let _ = if valid_hostname(&h.hostname) {
            writeln!(hosts, "{m},{},{}", h.ip, h.hostname)
        } else {
            writeln!(hosts, "{m},{}", h.ip)
        };
    }

    let mut opts = String::new();
    for (i, s) in v4_subnets(net) {
        let t = tag(i);
        // An empty value stops dnsmasq from offering its own address as router / DNS server.
        let gw = s.gateway.filter(IpAddr::is_ipv4);
        let _ = writeln!(opts, "tag:{t},option:router{}", opt(gw.iter()));
        let dns: Vec<&IpAddr> = s.dns.iter().filter(|a| a.is_ipv4()).collect();
        let _ = writeln!(opts, "tag:{t},option:dns-server{}", opt(dns.iter()));
        let mut routes: Vec<String> = s
            .routes
            .iter()
            .filter(|(dst, via)| matches!(dst, IpNet::V4(_)) && via.is_ipv4())
            .map(|(dst, via)| format!("{},{via}", dst.trunc()))
            .collect();
        // The metadata address is this namespace's: reached through the DHCP port's address.
        if net.metadata
            && let Some(own) = net.addresses.iter().find(|a| s.cidr.contains(&a.addr()))
        {
            routes.push(format!(
                "{}/32,{}",
                crate::router::METADATA_ADDR,
                own.addr()
            ));
        }
        if !routes.is_empty() {
            // Clients that take classless routes ignore option router (RFC 3442).
            if let Some(gw) = gw {
                routes.push(format!("0.0.0.0/0,{gw}"));
            }
            let routes = routes.join(",");
            let _ = writeln!(opts, "tag:{t},option:classless-static-route,{routes}");
            // Windows asks for the same thing under Microsoft's option number.
            let _ = writeln!(opts, "tag:{t},249,{routes}");
        }
        if net.mtu != 0 {
            let _ = writeln!(opts, "tag:{t},option:mtu,{}", net.mtu);
        }
    }
    Ok(Config { args, hosts, opts })
}

/// `,a,b,c` or the empty string.
fn opt<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| format!(",{i}")).collect()
}

/// RFC 1123 labels: dnsmasq skips a host line whose name it does not like, and that port
/// would get no address, so a bad name is dropped rather than passed on.
fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::super::DhcpHost;
    use super::*;

    fn sample() -> DhcpNetwork {
        DhcpNetwork {
            network_id: "net1".into(),
            mtu: 1450,
            addresses: vec!["10.251.0.2/24".parse().expect("net")],
            mac: "fa:16:3e:00:00:01".into(),
            subnets: vec![
                DhcpSubnet {
                    id: "s4".into(),
                    cidr: "10.251.0.0/24".parse().expect("net"),
                    gateway: Some("10.251.0.1".parse().expect("ip")),
                    dns: vec![
                        "10.1.1.1".parse().expect("ip"),
                        "10.1.1.2".parse().expect("ip"),
                    ],
                    routes: vec![(
                        "10.99.0.0/16".parse().expect("net"),
                        "10.251.0.254".parse().expect("ip"),
                    )],
                    lease_secs: 86400,
                },
                DhcpSubnet {
                    id: "s6".into(),
                    cidr: "fd00:251::/64".parse().expect("net"),
                    gateway: None,
                    dns: vec![],
                    routes: vec![],
                    lease_secs: 60,
                },
                DhcpSubnet {
                    id: "s4b".into(),
                    cidr: "10.252.0.0/16".parse().expect("net"),
                    gateway: None,
                    dns: vec![],
                    routes: vec![],
                    lease_secs: 60,
                },
            ],
            hosts: vec![
                DhcpHost {
                    mac: "FA:16:3E:00:00:0A".into(),
                    ip: "10.251.0.10".parse().expect("ip"),
                    hostname: "vm-1".into(),
                },
                DhcpHost {
                    mac: "fa:16:3e:00:00:0b".into(),
                    ip: "10.252.0.11".parse().expect("ip"),
                    hostname: "bad name,x".into(),
                },
                DhcpHost {
                    mac: "fa:16:3e:00:00:0c".into(),
                    ip: "fd00:251::c".parse().expect("ip"),
                    hostname: "v6".into(),
                },
            ],
            metadata: false,
        }
    }

    #[test]
    fn metadata_is_routed_through_the_dhcp_port() {
        let mut net = sample();
        net.metadata = true;
        let c = render(Path::new("/st/net1"), "osdi-net1", &net).expect("render");
        assert!(c.opts.contains(
            "tag:subnet0,option:classless-static-route,10.99.0.0/16,10.251.0.254,169.254.169.254/32,10.251.0.2,0.0.0.0/0,10.251.0.1\n"
        ), "{}", c.opts);
        // No DHCP address on that subnet: no way to reach the service, so no route.
        assert!(
            !c.opts.contains("tag:subnet2,option:classless"),
            "{}",
            c.opts
        );
    }

    #[test]
    fn renders_args_hosts_and_options() {
        let c = render(Path::new("/st/net1"), "osdi-net1", &sample()).expect("render");
        for a in [
            "--port=0",
            "--interface=osdi-net1",
            "--pid-file=/st/net1/pid",
            "--dhcp-hostsfile=/st/net1/hosts",
            "--dhcp-range=set:subnet0,10.251.0.0,static,255.255.255.0,86400",
            "--dhcp-range=set:subnet2,10.252.0.0,static,255.255.0.0,120",
            "--dhcp-lease-max=65792",
        ] {
            assert!(c.args.iter().any(|x| x == a), "missing {a} in {:?}", c.args);
        }
        assert!(!c.args.iter().any(|a| a.contains("fd00")));
        assert_eq!(
            c.hosts,
            "fa:16:3e:00:00:0a,10.251.0.10,vm-1\nfa:16:3e:00:00:0b,10.252.0.11\n"
        );
        assert_eq!(
            c.opts,
            "tag:subnet0,option:router,10.251.0.1\n\
             tag:subnet0,option:dns-server,10.1.1.1,10.1.1.2\n\
             tag:subnet0,option:classless-static-route,10.99.0.0/16,10.251.0.254,0.0.0.0/0,10.251.0.1\n\
             tag:subnet0,249,10.99.0.0/16,10.251.0.254,0.0.0.0/0,10.251.0.1\n\
             tag:subnet0,option:mtu,1450\n\
             tag:subnet2,option:router\n\
             tag:subnet2,option:dns-server\n\
             tag:subnet2,option:mtu,1450\n"
        );
    }

    #[test]
    fn refuses_bad_macs() {
        let mut net = sample();
        net.hosts[0].mac = "fa:16:3e:00:00:0a\nx".into();
        assert!(render(Path::new("/st"), "osdi-x", &net).is_err());
    }
}
