//! Security groups with nftables, applied atomically.
//!
//! Conntrack does not exist in the `bridge` family on kernels without
//! `CONFIG_NF_CONNTRACK_BRIDGE`, so filtering is split in two tables of the same name:
//!
//! * `table bridge T` sees which port a frame comes from or goes to. Its prerouting chain
//!   does anti-spoofing and writes the source port's number into the low 16 bits of the
//!   packet mark: each source address only with its own MAC (fixed IPs with the port's MAC,
//!   an allowed address pair's address with the pair's MAC, each MAC's EUI-64 link-local
//!   address with it), the same pairing for ARP senders, neighbor advertisements only from
//!   and for the port's own addresses, DAD solicitations only for them, no router
//!   advertisements or redirects, and DHCP/router discovery from unspecified sources. Its
//!   forward chain writes the destination port's number into the high 16 bits (each
//!   flooded copy passes that hook once per output port, so each copy gets its own number).
//! * `table inet T` is reached by bridged IP traffic through br_netfilter
//!   (`bridge-nf-call-ip(6)tables = 1`, which [`Firewall::apply`] sets), where conntrack
//!   works but the interfaces seen are the bridge's. Two forward base chains dispatch on the
//!   two halves of the mark to per-port chains: stateful, then the port's groups' rules,
//!   then drop. Two base chains, because an accept only ends the chain it is in: a packet
//!   between two of our ports must pass the sender's egress and the receiver's ingress.
//!
//! Frames entering on any `os*` device get their mark cleared first, so a mark someone
//! else set is never read as a port number (`meta ibrname` would scope this to our bridges,
//! but nft_meta_bridge is missing on the kernels we target). Marks of other traffic are not
//! touched. Rules shared by every port (DHCP, neighbor discovery, conntrack state) sit in
//! common chains the port chains jump to, about 20 rules per port in all (a few more per
//! allowed address pair MAC).
//!
//! Remote-group rules match one named set per group and family, so the rule count grows
//! with ports and rules, not with group members. [`Firewall::apply`] replaces both tables in
//! one `nft -f -` transaction and leaves conntrack alone, so connections that are still
//! allowed keep flowing across rule changes.
//!
//! Each network has its own conntrack zone: a `prerouting` chain at priority `raw` in the
//! inet table sets it from the bridge the traffic comes in on (br_netfilter hands bridged
//! traffic to the inet hooks with the bridge as input interface), so a connection tracked
//! on one network is never `established` on another, however the tenants' addresses
//! overlap.
//!
//! Limits: br_netfilter's sysctls are host-wide, so other bridges' IP traffic also
//! passes the inet hooks (our chains only act on marks our bridge table wrote); only one
//! table may be in use at a time, since both would read the same mark.

mod model;
mod render;

use std::path::Path;

use serde_json::Value;

pub use model::{Direction, EtherType, GroupFilter, PortFilter, Remote, Rule, Ruleset, Zone};
pub use render::MAX_PORTS;

use crate::cmd;
use crate::error::{Error, Result};

const BRIDGE_SYSCTLS: [&str; 2] = [
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
];

/// Our pair of nft tables (`bridge` and `inet`, same name).
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
}

impl Default for Firewall {
    /// The production table, `onestack`.
    fn default() -> Self {
        Self {
            table: Self::DEFAULT_TABLE.to_owned(),
        }
    }
}

impl Firewall {
    /// The table name production uses.
    pub const DEFAULT_TABLE: &str = "onestack";

    /// `table`: 1 to 32 characters of `[a-z0-9_]`, starting with a letter.
    pub fn new(table: &str) -> Result<Self> {
        let ok = (1..=32).contains(&table.len())
            && table.starts_with(|c: char| c.is_ascii_lowercase())
            && table
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self {
                table: table.to_owned(),
            })
        } else {
            Err(Error::invalid("nft table name", table))
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The complete nft input [`apply`](Self::apply) would load.
    pub fn render(&self, rs: &Ruleset) -> Result<String> {
        render::render(&self.table, rs)
    }

    /// Makes the host filter exactly as `rs` says, in one transaction.
    pub async fn apply(&self, rs: &Ruleset) -> Result<()> {
        let text = self.render(rs)?;
        enable_br_netfilter().await?;
        cmd::run_with_input("nft", &["-f", "-"], Some(&text))
            .await
            .map(drop)
    }

    /// Deletes both tables (fine if absent): no port is filtered any more.
    pub async fn remove(&self) -> Result<()> {
        let t = &self.table;
        let text = format!(
            "table bridge {t} {{}}\ndelete table bridge {t}\ntable inet {t} {{}}\ndelete table inet {t}\n"
        );
        cmd::run_with_input("nft", &["-f", "-"], Some(&text))
            .await
            .map(drop)
    }

    /// How many rules both tables hold (0 when absent).
    pub async fn rule_count(&self) -> Result<usize> {
        let mut n = 0;
        for family in ["bridge", "inet"] {
            match cmd::run("nft", &["-j", "list", "table", family, &self.table]).await {
                Ok(out) => n += count_rules(&cmd::parse_json("nft", &out)?),
                Err(e) if e.stderr_contains("No such file") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

fn count_rules(v: &Value) -> usize {
    v.get("nftables")
        .and_then(Value::as_array)
        .map_or(0, |items| {
            items.iter().filter(|i| i.get("rule").is_some()).count()
        })
}

/// Sends bridged IPv4/IPv6 through the inet hooks (where conntrack is). Loads
/// br_netfilter if its sysctls are missing, and fails clearly if that does not help.
pub async fn enable_br_netfilter() -> Result<()> {
    if !Path::new(BRIDGE_SYSCTLS[0]).exists() {
        if let Err(e) = cmd::run("modprobe", &["br_netfilter"]).await {
            tracing::debug!(error = %e, "modprobe br_netfilter");
        }
        if !Path::new(BRIDGE_SYSCTLS[0]).exists() {
            return Err(Error::NoBrNetfilter);
        }
    }
    for path in BRIDGE_SYSCTLS {
        let current = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        if current.trim() != "1" {
            tokio::fs::write(path, "1")
                .await
                .map_err(|e| Error::io(path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
