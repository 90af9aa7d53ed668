use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().expect("net")
}

fn rule(
    direction: Direction,
    protocol: Option<u8>,
    ports: (Option<u16>, Option<u16>),
    remote: Remote,
) -> Rule {
    Rule {
        direction,
        ethertype: EtherType::V4,
        protocol,
        port_min: ports.0,
        port_max: ports.1,
        remote,
    }
}

fn sample() -> Ruleset {
    Ruleset {
        ports: vec![
            PortFilter {
                device: "ostp-aaaa".into(),
                macs: vec!["FA:16:3E:00:00:01".into()],
                addresses: vec![net("10.0.0.5/32"), net("10.9.0.0/16"), net("10.9.1.0/24")],
                groups: vec!["1f2e3d4c-aaaa-bbbb".into(), "unknown".into()],
            },
            PortFilter {
                device: "ostp-bbbb".into(),
                macs: vec!["fa:16:3e:00:00:02".into()],
                addresses: vec![net("10.0.0.6/32"), net("fd00::6/128")],
                groups: vec!["1f2e3d4c-aaaa-bbbb".into()],
            },
        ],
        groups: vec![
            GroupFilter {
                id: "unused".into(),
                members: vec![],
                rules: vec![rule(Direction::Ingress, None, (None, None), Remote::Any)],
            },
            GroupFilter {
                id: "1f2e3d4c-aaaa-bbbb".into(),
                members: vec![
                    ip("10.0.0.5"),
                    ip("10.0.0.6"),
                    ip("fd00::6"),
                    ip("10.0.0.6"),
                ],
                rules: vec![
                    rule(Direction::Egress, None, (None, None), Remote::Any),
                    rule(
                        Direction::Ingress,
                        Some(6),
                        (Some(22), Some(22)),
                        Remote::Prefix(net("192.168.1.7/24")),
                    ),
                    rule(
                        Direction::Ingress,
                        Some(17),
                        (Some(1000), Some(2000)),
                        Remote::Any,
                    ),
                    rule(
                        Direction::Ingress,
                        None,
                        (None, None),
                        Remote::Group("1f2e3d4c-aaaa-bbbb".into()),
                    ),
                    rule(Direction::Ingress, Some(1), (Some(8), Some(0)), Remote::Any),
                    // Never matches: prefix of the other family; unknown remote group.
                    rule(
                        Direction::Ingress,
                        None,
                        (None, None),
                        Remote::Prefix(net("fd00::/8")),
                    ),
                    rule(
                        Direction::Ingress,
                        None,
                        (None, None),
                        Remote::Group("nope".into()),
                    ),
                ],
            },
        ],
    }
}

fn render(rs: &Ruleset) -> String {
    Firewall::new("ostest")
        .expect("name")
        .render(rs)
        .expect("render")
}

#[test]
fn replaces_both_tables_atomically() {
    let text = render(&sample());
    assert!(text.starts_with(
        "table bridge ostest {}\ndelete table bridge ostest\ntable inet ostest {}\ndelete table inet ostest\n"
    ));
}

#[test]
fn bridge_table_marks_and_checks_sources() {
    let text = render(&sample());
    assert!(
        text.contains("iifname vmap { \"ostp-aaaa\" : jump from1, \"ostp-bbbb\" : jump from2 }")
    );
    assert!(text.contains("oifname vmap { \"ostp-aaaa\" : jump to1, \"ostp-bbbb\" : jump to2 }"));
    assert!(text.contains("meta mark set 0x00000002"));
    assert!(text.contains("meta mark set meta mark and 0x0000ffff or 0x00020000"));
    assert!(text.contains("ether saddr != { fa:16:3e:00:00:01 } drop"));
    // Overlapping allowed prefixes are merged (nft refuses overlapping set elements).
    assert!(text.contains("ip saddr { 10.0.0.5, 10.9.0.0/16 } accept"));
    assert!(text.contains("arp saddr ip != { 0.0.0.0, 10.0.0.5, 10.9.0.0/16 } drop"));
    // EUI-64 link-local of fa:16:3e:00:00:02 is allowed beside the fixed IPv6 address.
    assert!(text.contains("ip6 saddr { fd00::6, fe80::f816:3eff:fe00:2 } accept"));
    assert!(text.contains("ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept"));
    assert!(text.contains("arp saddr ip != { 0.0.0.0, 10.0.0.5, 10.9.0.0/16 } drop\n    ether type arp accept\n    jump from-common\n"));
}

#[test]
fn inet_table_dispatches_on_mark_halves() {
    let text = render(&sample());
    assert!(text.contains(
        "meta mark and 0x0000ffff vmap { 0x1 : jump port1-egress, 0x2 : jump port2-egress }"
    ));
    assert!(text.contains(
        "meta mark and 0xffff0000 vmap { 0x10000 : jump port1-ingress, 0x20000 : jump port2-ingress }"
    ));
    assert!(text.contains("type filter hook forward priority 0; policy accept;"));
    assert!(text.contains("type filter hook forward priority 10; policy accept;"));
}

#[test]
fn group_rules_render_and_unused_groups_do_not() {
    let text = render(&sample());
    assert!(text.contains("jump sg1-1f2e3d4c-ingress"));
    assert!(!text.contains("sg0-"), "unused group rendered:\n{text}");
    for line in [
        "meta nfproto ipv4 accept",
        "meta nfproto ipv4 ip saddr 192.168.1.0/24 meta l4proto 6 th dport 22 accept",
        "meta nfproto ipv4 meta l4proto 17 th dport 1000-2000 accept",
        "meta nfproto ipv4 ip saddr @sg1-1f2e3d4c-v4 accept",
        "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 accept",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("fd00::/8"));
    assert!(text.contains("elements = { 10.0.0.5, 10.0.0.6 }"));
    assert!(text.contains("elements = { fd00::6 }"));
    // Each port chain: the shared allowances (stateful), its groups, the final drop.
    let chain = text.split("chain port1-ingress {").nth(1).expect("chain");
    let chain = &chain[..chain.find("\n  }").expect("end")];
    assert_eq!(
        chain.trim(),
        "jump common-ingress\n    jump sg1-1f2e3d4c-ingress\n    drop"
    );
    let common = text.split("chain common-ingress {").nth(1).expect("common");
    assert!(common.contains("ct state established,related accept\n    ct state invalid drop"));
}

#[test]
fn icmp_in_ipv6_rules_means_icmpv6() {
    let mut rs = sample();
    rs.groups[1].rules = vec![Rule {
        ethertype: EtherType::V6,
        ..rule(Direction::Egress, Some(1), (Some(128), None), Remote::Any)
    }];
    let text = render(&rs);
    assert!(text.contains("meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 accept"));
}

#[test]
fn empty_ruleset_renders_empty_tables() {
    let text = render(&Ruleset::default());
    assert!(!text.contains("vmap"));
    assert!(text.contains("table inet ostest {"));
}

#[test]
fn refuses_unsafe_input() {
    let fw = Firewall::new("ostest").expect("name");
    let mut rs = sample();
    rs.ports[0].device = "eth0".into();
    assert!(fw.render(&rs).is_err());
    let mut rs = sample();
    rs.ports[0].device = "ostp-\" drop".into();
    assert!(fw.render(&rs).is_err());
    let mut rs = sample();
    rs.ports[0].macs = vec!["fa:16:3e:00:00:01 } accept".into()];
    assert!(fw.render(&rs).is_err());
    let mut rs = sample();
    rs.ports[1].device = rs.ports[0].device.clone();
    assert!(fw.render(&rs).is_err());
    for bad in ["", "On", "a b", "1abc", "a-b"] {
        assert!(Firewall::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn counts_rules_in_nft_json() {
    let v: serde_json::Value = serde_json::from_str(
        r#"{"nftables":[{"metainfo":{}},{"table":{}},{"chain":{}},{"rule":{}},{"set":{}},{"rule":{}}]}"#,
    )
    .expect("json");
    assert_eq!(count_rules(&v), 2);
}
