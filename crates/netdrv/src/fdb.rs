//! The forwarding database of our VXLAN devices: flood entries (all-zero MAC) name the
//! remote hosts that get broadcast/unknown traffic; unicast entries pin remote ports' MACs
//! to their host, so known traffic goes straight there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use crate::cmd;
use crate::error::{Error, Result};
use crate::{mac, names};

const FLOOD_MAC: &str = "00:00:00:00:00:00";

/// `(mac, dst)` of every entry of `dev` that has a remote destination.
async fn remote_entries(dev: &str) -> Result<Vec<(String, IpAddr)>> {
    if !names::is_safe_ifname(dev) {
        return Err(Error::invalid("interface name", dev));
    }
    let out = cmd::run("bridge", &["-j", "fdb", "show", "dev", dev]).await?;
    Ok(parse(&cmd::parse_json("bridge", &out)?))
}

fn parse(v: &Value) -> Vec<(String, IpAddr)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let mac = e.get("mac")?.as_str()?.to_ascii_lowercase();
            let dst = e.get("dst")?.as_str()?.parse().ok()?;
            Some((mac, dst))
        })
        .collect()
}

async fn fdb(op: &str, mac: &str, dev: &str, dst: IpAddr) -> Result<()> {
    let dst = dst.to_string();
    cmd::run("bridge", &["fdb", op, mac, "dev", dev, "dst", &dst])
        .await
        .map(drop)
}

/// The remote hosts that currently receive flooded traffic from `vxlan`.
pub async fn flood_entries(vxlan: &str) -> Result<Vec<IpAddr>> {
    Ok(remote_entries(vxlan)
        .await?
        .into_iter()
        .filter(|(m, _)| m == FLOOD_MAC)
        .map(|(_, ip)| ip)
        .collect())
}

/// Makes the flood list of `vxlan` exactly `remotes`.
pub async fn set_flood(vxlan: &str, remotes: &[IpAddr]) -> Result<()> {
    let current: BTreeSet<IpAddr> = flood_entries(vxlan).await?.into_iter().collect();
    let wanted: BTreeSet<IpAddr> = remotes.iter().copied().collect();
    for ip in wanted.difference(&current) {
        fdb("append", FLOOD_MAC, vxlan, *ip).await?;
    }
    for ip in current.difference(&wanted) {
        fdb("del", FLOOD_MAC, vxlan, *ip).await?;
    }
    Ok(())
}

/// Makes the unicast remote entries of `vxlan` exactly `entries` (`(mac, host)`): replaces
/// what differs and deletes entries with a destination that are no longer wanted. Entries
/// without a destination (local learning on the bridge side) are left alone.
pub async fn set_unicast(vxlan: &str, entries: &[(String, IpAddr)]) -> Result<()> {
    let mut wanted = BTreeMap::new();
    for (m, ip) in entries {
        let m = mac::normalize(m)?;
        if m != FLOOD_MAC {
            wanted.insert(m, *ip);
        }
    }
    let current: Vec<(String, IpAddr)> = remote_entries(vxlan)
        .await?
        .into_iter()
        .filter(|(m, _)| m != FLOOD_MAC)
        .collect();
    // Stale entries go first, so a MAC that moved host ends with exactly one destination.
    for (m, ip) in &current {
        if wanted.get(m) != Some(ip) {
            fdb("del", m, vxlan, *ip).await?;
        }
    }
    for (m, ip) in &wanted {
        if !current.iter().any(|(cm, cip)| cm == m && cip == ip) {
            fdb("replace", m, vxlan, *ip).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bridge_json() {
        let v: Value = serde_json::from_str(
            r#"[{"mac":"76:59:fd:e0:86:08","flags":[],"master":"osbr-y","state":"permanent"},
            {"mac":"fa:16:3e:00:00:09","dst":"10.0.0.5","flags":["self"],"state":"permanent"},
            {"mac":"00:00:00:00:00:00","dst":"10.0.0.6","flags":["self"],"state":"permanent"}]"#,
        )
        .expect("json");
        let got = parse(&v);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            (FLOOD_MAC.to_owned(), "10.0.0.6".parse().expect("ip"))
        );
    }
}
