//! Address arithmetic for subnets: default allocation pools, pool validation, and picking
//! the next free address. Pure functions; the store makes allocation exclusive.
//!
//! Addresses are computed as `u128` with checked arithmetic only: a step past the top of
//! the address space (the last IPv6 address, or 255.255.255.255 for an IPv4 subnet) ends
//! the walk instead of wrapping around to addresses outside the subnet.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::model::AllocationPool;

pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address `value` stands for in `like`'s family; `None` when it does not fit (a value
/// above 2^32 - 1 for IPv4).
fn from_u128(value: u128, like: IpAddr) -> Option<IpAddr> {
    match like {
        IpAddr::V4(_) => u32::try_from(value)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        IpAddr::V6(_) => Some(IpAddr::V6(Ipv6Addr::from(value))),
    }
}

/// The first and last addresses hosts may use: IPv4 leaves out the network and broadcast
/// addresses, IPv6 the subnet-router anycast address. An empty range (a /32, a /128) comes
/// back with `first > last`.
pub fn usable_range(cidr: &IpNet) -> (u128, u128) {
    let network = to_u128(cidr.network());
    let broadcast = to_u128(cidr.broadcast());
    let last = match cidr {
        IpNet::V4(_) => broadcast.checked_sub(1),
        IpNet::V6(_) => Some(broadcast),
    };
    match (network.checked_add(1), last) {
        (Some(first), Some(last)) => (first, last),
        // Nothing usable: the network address is the top of the space, or there is no
        // address below the broadcast one.
        _ => (1, 0),
    }
}

/// The first host address of a subnet, Neutron's default gateway (`None` when the subnet
/// has no host address).
pub fn from_first(cidr: &IpNet) -> Option<IpAddr> {
    let (first, last) = usable_range(cidr);
    if first > last {
        return None;
    }
    from_u128(first, cidr.network())
}

/// Neutron's default pools: the usable range with the gateway cut out.
pub fn default_pools(cidr: &IpNet, gateway: Option<IpAddr>) -> Vec<AllocationPool> {
    let (first, last) = usable_range(cidr);
    let like = cidr.network();
    let mut ranges = vec![(first, last)];
    if let Some(gw) = gateway.map(to_u128) {
        ranges = ranges
            .into_iter()
            .flat_map(|(s, e)| {
                if gw < s || gw > e {
                    vec![(s, e)]
                } else {
                    let mut parts = Vec::new();
                    if let Some(below) = gw.checked_sub(1).filter(|b| *b >= s) {
                        parts.push((s, below));
                    }
                    if let Some(above) = gw.checked_add(1).filter(|a| *a <= e) {
                        parts.push((above, e));
                    }
                    parts
                }
            })
            .collect();
    }
    ranges
        .into_iter()
        .filter(|(s, e)| s <= e)
        .filter_map(|(s, e)| {
            Some(AllocationPool {
                start: from_u128(s, like)?,
                end: from_u128(e, like)?,
            })
        })
        .collect()
}

/// Why a set of pools is not acceptable for a subnet.
#[derive(Debug, PartialEq, Eq)]
pub enum PoolError {
    /// Start after end, or a version that does not match the subnet.
    Invalid(String),
    OutOfBounds(String),
    Overlapping(String),
    GatewayInside(String),
}

pub fn validate_pools(
    cidr: &IpNet,
    gateway: Option<IpAddr>,
    pools: &[AllocationPool],
) -> Result<(), PoolError> {
    let (first, last) = usable_range(cidr);
    let mut ranges = Vec::new();
    for pool in pools {
        let shown = format!("{}-{}", pool.start, pool.end);
        if pool.start.is_ipv4() != cidr.network().is_ipv4()
            || pool.end.is_ipv4() != cidr.network().is_ipv4()
        {
            return Err(PoolError::Invalid(shown));
        }
        let (s, e) = (to_u128(pool.start), to_u128(pool.end));
        if s > e {
            return Err(PoolError::Invalid(shown));
        }
        if s < first || e > last {
            return Err(PoolError::OutOfBounds(shown));
        }
        if let Some(gw) = gateway.map(to_u128)
            && gw >= s
            && gw <= e
        {
            return Err(PoolError::GatewayInside(shown));
        }
        ranges.push((s, e, shown));
    }
    ranges.sort();
    for pair in ranges.windows(2) {
        if pair[1].0 <= pair[0].1 {
            return Err(PoolError::Overlapping(format!(
                "{} and {}",
                pair[0].2, pair[1].2
            )));
        }
    }
    Ok(())
}

/// How many addresses the pools hold (at most `u128::MAX`).
pub fn pool_size(pools: &[AllocationPool]) -> u128 {
    pools
        .iter()
        .map(|p| {
            to_u128(p.end)
                .checked_sub(to_u128(p.start))
                .map_or(0, |d| d.saturating_add(1))
        })
        .fold(0, u128::saturating_add)
}

/// The lowest address of the pools that is neither allocated nor excluded.
pub fn next_free(pools: &[AllocationPool], taken: &HashSet<IpAddr>) -> Option<IpAddr> {
    let mut sorted: Vec<_> = pools.iter().collect();
    sorted.sort_by_key(|p| to_u128(p.start));
    for pool in sorted {
        let (s, e) = (to_u128(pool.start), to_u128(pool.end));
        // Bounded by the number of taken addresses plus one within a pool; a pool that ends
        // at the top of the address space ends the walk there, never wrapping to zero.
        let mut candidate = Some(s);
        while let Some(value) = candidate.filter(|c| *c <= e) {
            let Some(ip) = from_u128(value, pool.start) else {
                break;
            };
            if !taken.contains(&ip) {
                return Some(ip);
            }
            candidate = value.checked_add(1);
        }
    }
    None
}

/// Whether two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn default_pool_leaves_out_gateway_network_and_broadcast() {
        let pools = default_pools(&net("10.0.0.0/24"), Some(ip("10.0.0.1")));
        assert_eq!(
            pools,
            vec![AllocationPool {
                start: ip("10.0.0.2"),
                end: ip("10.0.0.254")
            }]
        );
        let split = default_pools(&net("10.0.0.0/24"), Some(ip("10.0.0.100")));
        assert_eq!(split.len(), 2);
        assert_eq!(pool_size(&split), 253, ".1-.99 and .101-.254");
        let v6 = default_pools(&net("fd00::/64"), Some(ip("fd00::1")));
        assert_eq!(v6[0].start, ip("fd00::2"));
        assert_eq!(v6[0].end, ip("fd00::ffff:ffff:ffff:ffff"));
    }

    #[test]
    fn pools_are_checked() {
        let cidr = net("10.0.0.0/24");
        let gw = Some(ip("10.0.0.1"));
        let pool = |s: &str, e: &str| AllocationPool {
            start: ip(s),
            end: ip(e),
        };
        assert!(validate_pools(&cidr, gw, &[pool("10.0.0.10", "10.0.0.20")]).is_ok());
        assert!(matches!(
            validate_pools(&cidr, gw, &[pool("10.0.1.10", "10.0.1.20")]),
            Err(PoolError::OutOfBounds(_))
        ));
        assert!(matches!(
            validate_pools(&cidr, gw, &[pool("10.0.0.20", "10.0.0.10")]),
            Err(PoolError::Invalid(_))
        ));
        assert!(matches!(
            validate_pools(&cidr, gw, &[pool("10.0.0.1", "10.0.0.10")]),
            Err(PoolError::GatewayInside(_))
        ));
        assert!(matches!(
            validate_pools(
                &cidr,
                gw,
                &[
                    pool("10.0.0.2", "10.0.0.10"),
                    pool("10.0.0.10", "10.0.0.12")
                ]
            ),
            Err(PoolError::Overlapping(_))
        ));
    }

    #[test]
    fn next_free_skips_taken() {
        let pools = default_pools(&net("10.0.0.0/29"), Some(ip("10.0.0.1")));
        let mut taken = HashSet::new();
        for expected in ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"] {
            let got = next_free(&pools, &taken).unwrap();
            assert_eq!(got, ip(expected));
            taken.insert(got);
        }
        assert_eq!(next_free(&pools, &taken), None);
    }

    #[test]
    fn next_free_never_wraps_past_the_top_of_ipv6() {
        // A /64 at the very top of the space, its pool ending at the last address.
        let cidr = net("ffff:ffff:ffff:ffff::/64");
        let pools = default_pools(&cidr, Some(ip("ffff:ffff:ffff:ffff::1")));
        assert_eq!(pools[0].end, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        let tail = vec![AllocationPool {
            start: ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
            end: ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        }];
        assert!(validate_pools(&cidr, Some(ip("ffff:ffff:ffff:ffff::1")), &tail).is_ok());
        let mut taken = HashSet::new();
        for expected in [
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let got = next_free(&tail, &taken).unwrap();
            assert_eq!(got, ip(expected));
            assert!(cidr.contains(&got));
            taken.insert(got);
        }
        // Full: nothing, and certainly not :: or another address outside the subnet.
        assert_eq!(next_free(&tail, &taken), None);
        assert_eq!(pool_size(&tail), 2);
        let whole = vec![AllocationPool {
            start: ip("::1"),
            end: ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        }];
        assert_eq!(pool_size(&whole), u128::MAX);
        assert_eq!(pool_size(&[whole[0].clone(), whole[0].clone()]), u128::MAX);
    }

    #[test]
    fn ranges_at_the_edges_of_the_address_space() {
        assert_eq!(
            usable_range(&net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")),
            (1, 0),
            "no host address, no overflow"
        );
        assert_eq!(from_first(&net("255.255.255.255/32")), None);
        assert_eq!(
            from_first(&net("255.255.255.252/30")),
            Some(ip("255.255.255.253"))
        );
        let top = default_pools(&net("255.255.255.252/30"), Some(ip("255.255.255.254")));
        assert_eq!(
            top,
            vec![AllocationPool {
                start: ip("255.255.255.253"),
                end: ip("255.255.255.253")
            }]
        );
        let v6 = default_pools(
            &net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126"),
            Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
        );
        assert_eq!(v6[0].end, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
        assert_eq!(v6.len(), 1);
    }

    #[test]
    fn overlap() {
        assert!(overlaps(&net("10.0.0.0/16"), &net("10.0.5.0/24")));
        assert!(!overlaps(&net("10.0.0.0/24"), &net("10.0.1.0/24")));
    }
}
