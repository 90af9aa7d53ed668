//! Deterministic names for everything we create. Linux interface names hold at most 15
//! bytes (IFNAMSIZ - 1), so ids are cut to their first 10 characters after a 5-byte prefix;
//! every name starts with "os" so leftovers can be found and removed.

/// Longest interface name the kernel accepts.
pub const IFNAME_MAX: usize = 15;

pub const BRIDGE: &str = "osbr-";
pub const VXLAN: &str = "osvx-";
pub const VLAN: &str = "osvl-";
/// A port's device: the tap QEMU opens, or the host side of a veth stand-in.
pub const PORT: &str = "ostp-";
/// The guest side of a veth stand-in (tests).
pub const PORT_PEER: &str = "osvp-";
/// DHCP veth, bridge side.
pub const DHCP_BRIDGE_SIDE: &str = "osdh-";
/// DHCP veth, namespace side.
pub const DHCP_NS_SIDE: &str = "osdi-";
/// DHCP namespace (takes the full network id: namespace names are not length-limited).
pub const DHCP_NS: &str = "osdhcp-";
/// Throw-away devices of the VLAN support probe.
pub const PROBE: &str = "osprobe-";
/// Router namespace (takes the full router id).
pub const ROUTER_NS: &str = "osrtr-";
/// Router port veth, bridge side.
pub const ROUTER_PORT: &str = "osrp-";
/// Router port veth, namespace side (carries the port's MAC and addresses).
pub const ROUTER_PORT_NS: &str = "osrn-";

/// Every prefix we create names with.
pub const PREFIXES: &[&str] = &[
    BRIDGE,
    VXLAN,
    VLAN,
    PORT,
    PORT_PEER,
    DHCP_BRIDGE_SIDE,
    DHCP_NS_SIDE,
    DHCP_NS,
    PROBE,
    ROUTER_NS,
    ROUTER_PORT,
    ROUTER_PORT_NS,
];

const ID_CHARS: usize = 10;

fn short(prefix: &str, id: &str) -> String {
    let mut name = String::with_capacity(IFNAME_MAX);
    name.push_str(prefix);
    name.extend(id.chars().take(ID_CHARS));
    name
}

pub fn bridge(network_id: &str) -> String {
    short(BRIDGE, network_id)
}

pub fn vxlan(network_id: &str) -> String {
    short(VXLAN, network_id)
}

pub fn vlan(network_id: &str) -> String {
    short(VLAN, network_id)
}

pub fn port(port_id: &str) -> String {
    short(PORT, port_id)
}

pub fn port_peer(port_id: &str) -> String {
    short(PORT_PEER, port_id)
}

pub fn dhcp_bridge_side(network_id: &str) -> String {
    short(DHCP_BRIDGE_SIDE, network_id)
}

pub fn dhcp_ns_side(network_id: &str) -> String {
    short(DHCP_NS_SIDE, network_id)
}

pub fn dhcp_namespace(network_id: &str) -> String {
    format!("{DHCP_NS}{network_id}")
}

pub fn router_namespace(router_id: &str) -> String {
    format!("{ROUTER_NS}{router_id}")
}

pub fn router_port(port_id: &str) -> String {
    short(ROUTER_PORT, port_id)
}

pub fn router_port_ns_side(port_id: &str) -> String {
    short(ROUTER_PORT_NS, port_id)
}

/// Whether `name` (a link or a namespace) was made by us.
pub fn is_ours(name: &str) -> bool {
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether `name` is safe to pass to tools and to put in nft input: a valid interface name
/// made only of `[A-Za-z0-9_.-]`.
pub fn is_safe_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `id` is safe as part of a namespace name or file path (ids are UUIDs).
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "3f2a9c1e-7b4d-4e21-9a8b-0c1d2e3f4a5b";

    #[test]
    fn names_fit_ifnamsiz_and_are_deterministic() {
        let all = [
            bridge(NET),
            vxlan(NET),
            vlan(NET),
            port(NET),
            port_peer(NET),
            dhcp_bridge_side(NET),
            dhcp_ns_side(NET),
            router_port(NET),
            router_port_ns_side(NET),
        ];
        for name in &all {
            assert_eq!(name.len(), IFNAME_MAX, "{name}");
            assert!(is_ours(name), "{name}");
            assert!(is_safe_ifname(name), "{name}");
        }
        assert_eq!(bridge(NET), "osbr-3f2a9c1e-7");
        assert_eq!(bridge(NET), bridge(NET));
        assert_eq!(port("ab"), "ostp-ab");
        assert_eq!(dhcp_namespace(NET), format!("osdhcp-{NET}"));
        assert!(is_ours(&dhcp_namespace(NET)));
        assert_eq!(router_namespace(NET), format!("osrtr-{NET}"));
        assert!(is_ours(&router_namespace(NET)));
        assert_eq!(router_port(NET), "osrp-3f2a9c1e-7");
        assert_eq!(router_port_ns_side(NET), "osrn-3f2a9c1e-7");
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in ["eth0", "lo", "docker0", "br-1234", "tap123", "o", "osx"] {
            assert!(!is_ours(name), "{name}");
        }
    }

    #[test]
    fn unsafe_names_are_refused() {
        assert!(!is_safe_ifname(""));
        assert!(!is_safe_ifname("a b"));
        assert!(!is_safe_ifname("a\"b"));
        assert!(!is_safe_ifname("0123456789abcdef"));
        assert!(is_safe_ifname("eth1.100"));
        assert!(is_safe_id(NET));
        assert!(!is_safe_id("../etc"));
    }
}
