//! Checks of single request values that operations make themselves (addresses, CIDRs, tags)
//! and the MACs they make up; reading bodies is `api::input`'s.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{Error, Result};

pub const MAX_NAME: usize = 255;

pub fn ip(value: &str, key: &str) -> Result<IpAddr> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::invalid_input(format!("'{value}' is not a valid IP address for {key}")))
}

pub fn cidr(value: &str, key: &str) -> Result<IpNet> {
    value
        .trim()
        .parse::<IpNet>()
        .or_else(|_| value.trim().parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| Error::invalid_input(format!("'{value}' is not a valid IP subnet for {key}")))
}

/// A random MAC with OpenStack's `fa:16:3e` prefix.
pub fn random_mac() -> String {
    let b: [u8; 3] = rand::random();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

pub fn check_tags(tags: &[String]) -> Result<()> {
    for tag in tags {
        if tag.is_empty() || tag.chars().count() > 255 || tag.contains(',') {
            return Err(Error::invalid_input(format!("'{tag}' is not a valid tag")));
        }
    }
    Ok(())
}
