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
                bridge: "osbr-1111".into(),
                macs: vec!["FA:16:3E:00:00:01".into()],
                addresses: vec![net("10.0.0.5/32"), net("10.9.0.0/16"), net("10.9.1.0/24")],
                pairs: vec![],
                groups: vec!["1f2e3d4c-aaaa-bbbb".into(), "unknown".into()],
            },
            PortFilter {
                device: "ostp-bbbb".into(),
                bridge: "osbr-2222".into(),
                macs: vec!["fa:16:3e:00:00:02".into()],
                addresses: vec![net("10.0.0.6/32"), net("fd00::6/128")],
                pairs: vec![],
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
        zones: vec![
            Zone {
                bridge: "osbr-net1".into(),
                zone: 1,
            },
            Zone {
                bridge: "osbr-net2".into(),
                zone: 7,
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
    assert!(
        text.contains("ether saddr fa:16:3e:00:00:01 ip saddr { 10.0.0.5, 10.9.0.0/16 } accept")
    );
    assert!(text.contains("ether type arp ether saddr fa:16:3e:00:00:01 arp saddr ether fa:16:3e:00:00:01 arp saddr ip { 0.0.0.0, 10.0.0.5, 10.9.0.0/16 } accept\n    ether type arp drop\n    jump from-common\n"));
    // EUI-64 link-local of fa:16:3e:00:00:02 is allowed beside the fixed IPv6 address.
    assert!(text.contains(
        "ether saddr fa:16:3e:00:00:02 ip6 saddr { fd00::6, fe80::f816:3eff:fe00:2 } accept"
    ));
    assert!(text.contains("ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept"));
}

/// The chain `name` of the bridge table, without its braces.
fn chain<'a>(text: &'a str, name: &str) -> &'a str {
    let body = text
        .split(&format!("chain {name} {{"))
        .nth(1)
        .unwrap_or_else(|| panic!("no chain {name} in\n{text}"));
    &body[..body.find("\n  }").expect("end")]
}

#[test]
fn neighbor_discovery_is_held_to_the_ports_own_addresses() {
    let text = render(&sample());
    let from2 = chain(&text, "from2");
    let own = "fd00::6, fe80::f816:3eff:fe00:2";
    let targets = "0xfd000000000000000000000000000006, 0xfe80000000000000f8163efffe000002";
    // An advertisement comes from one of the port's addresses and is for one of them...
    assert!(
        from2.contains(&format!("ether saddr fa:16:3e:00:00:02 icmpv6 type nd-neighbor-advert ip6 saddr {{ {own} }} @th,64,128 {{ {targets} }} accept")),
        "{from2}"
    );
    // ...a DAD solicitation (from ::) is for one of them...
    assert!(from2.contains(&format!(
        "ether saddr fa:16:3e:00:00:02 ip6 saddr :: icmpv6 type nd-neighbor-solicit @th,64,128 {{ {targets} }} accept"
    )));
    // ...and no other advertisement passes, before the general source check could take it.
    let na_drop = from2
        .find("icmpv6 type nd-neighbor-advert drop")
        .expect("NA drop");
    let general = from2
        .find(&format!(
            "ether saddr fa:16:3e:00:00:02 ip6 saddr {{ {own} }} accept"
        ))
        .expect("source check");
    assert!(na_drop < general, "{from2}");
    // Nothing accepts ND from any link-local or unspecified source any more.
    assert!(!text.contains("fe80::/10"), "{text}");
    let common = chain(&text, "from-common");
    assert!(!common.contains("nd-neighbor-advert"), "{common}");
    assert!(!common.contains("nd-neighbor-solicit"), "{common}");
    assert!(common.contains("icmpv6 type { nd-router-advert, nd-redirect } drop"));
    // A port without IPv6 addresses still has its link-local one.
    let from1 = chain(&text, "from1");
    assert!(from1.contains("ip6 saddr { fe80::f816:3eff:fe00:1 } @th,64,128 { 0xfe80000000000000f8163efffe000001 } accept"), "{from1}");
}

#[test]
fn allowed_address_pairs_pair_an_address_with_its_mac() {
    let mut rs = sample();
    rs.ports[1].pairs = vec![
        // The default: the port's own MAC.
        ("fa:16:3e:00:00:02".into(), net("10.0.0.100/32")),
        // Another MAC (a VRRP address): its address only with it.
        ("00:00:5e:00:01:01".into(), net("10.0.0.200/32")),
        ("00:00:5e:00:01:01".into(), net("2001:db8::/64")),
    ];
    let text = render(&rs);
    let from2 = chain(&text, "from2");
    assert!(from2.contains("ether saddr != { 00:00:5e:00:01:01, fa:16:3e:00:00:02 } drop"));
    assert!(
        from2.contains("ether saddr fa:16:3e:00:00:02 ip saddr { 10.0.0.6, 10.0.0.100 } accept"),
        "{from2}"
    );
    assert!(
        from2.contains("ether saddr 00:00:5e:00:01:01 ip saddr { 10.0.0.200 } accept"),
        "{from2}"
    );
    assert!(from2.contains("ether type arp ether saddr 00:00:5e:00:01:01 arp saddr ether 00:00:5e:00:01:01 arp saddr ip { 0.0.0.0, 10.0.0.200 } accept"));
    assert!(from2.contains("ether type arp ether saddr fa:16:3e:00:00:02 arp saddr ether fa:16:3e:00:00:02 arp saddr ip { 0.0.0.0, 10.0.0.6, 10.0.0.100 } accept"));
    // The pair's prefix and its MAC's link-local address, as sources and as ND targets.
    assert!(from2.contains("ether saddr 00:00:5e:00:01:01 ip6 saddr { 2001:db8::/64, fe80::200:5eff:fe00:101 } accept"), "{from2}");
    assert!(from2.contains("@th,64,128 { 0x20010db8000000000000000000000000-0x20010db800000000ffffffffffffffff, 0xfe8000000000000002005efffe000101 } accept"), "{from2}");
    // No rule lets the pair's MAC use the port's fixed address or the other way round.
    assert!(!from2.contains("ether saddr 00:00:5e:00:01:01 ip saddr { 10.0.0.6"));
    assert!(!from2.contains("10.0.0.200, "));
}

#[test]
fn each_network_gets_its_own_conntrack_zone() {
    let text = render(&sample());
    let zones = text.split("chain zones {").nth(1).expect("zones chain");
    let zones = &zones[..zones.find("\n  }").expect("end")];
    // Before conntrack (priority raw), keyed by the bridge the traffic comes in on.
    assert!(zones.contains("type filter hook prerouting priority raw; policy accept;"));
    assert!(zones.contains("ct zone set iifname map { \"osbr-net1\" : 1, \"osbr-net2\" : 7 }"));
    assert!(
        text.find("table inet ostest {\n  chain zones").is_some(),
        "in the inet table, where conntrack is:\n{text}"
    );
    // No networks, no chain.
    let mut rs = sample();
    rs.zones.clear();
    assert!(!render(&rs).contains("ct zone"));
    // Two networks never share a zone, zone 0 is the host's, the bridges are ours.
    let fw = Firewall::new("ostest").expect("name");
    for bad in [
        ("osbr-net2", 1u16),
        ("osbr-net1", 9),
        ("osbr-net3", 0),
        ("eth0", 9),
        ("osbr-\" : 1 }", 9),
    ] {
        let mut rs = sample();
        rs.zones.push(Zone {
            bridge: bad.0.into(),
            zone: bad.1,
        });
        assert!(fw.render(&rs).is_err(), "{bad:?}");
    }
}

#[test]
fn inet_table_dispatches_on_mark_halves() {
    let text = render(&sample());
    assert!(text.contains(
        "iifname { \"osbr-1111\", \"osbr-2222\" } meta mark and 0x0000ffff vmap { 0x1 : jump port1-egress, 0x2 : jump port2-egress }"
    ));
    assert!(text.contains(
        "iifname { \"osbr-1111\", \"osbr-2222\" } meta mark and 0xffff0000 vmap { 0x10000 : jump port1-ingress, 0x20000 : jump port2-ingress }"
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
