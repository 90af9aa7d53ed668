//! Linux networking mechanisms for the per-host agent.
//!
//! The agent computes the desired state from the database and calls this crate to make the
//! host match it: bridges per network ([`link`]), VXLAN remotes ([`fdb`]), namespaces
//! ([`netns`]), routers ([`router`]), security groups ([`firewall`]) and DHCP ([`dhcp`]).
//! Every operation is idempotent, and everything created carries a prefix from [`names`]
//! and its cloud's mark from [`owner`], so leftovers can be listed and removed without
//! touching what another cloud on the same host made.
//!
//! The work is done by the tools (`ip`, `bridge`, `nft`, `dnsmasq`), run with argument
//! vectors and parsed from their JSON output: they are the kernel's stable interface,
//! and an administrator can read the result with the same tools.
//!
//! On this design's kernel requirements (bridge conntrack is not needed, br_netfilter is),
//! see [`firewall`].
#![allow(
    clippy::disallowed_methods,
    reason = "this crate runs ip, nft, dnsmasq and sysctl for the agent"
)]

mod cmd;
pub mod dhcp;
mod error;
pub mod fdb;
pub mod firewall;
pub mod link;
pub mod mac;
pub mod names;
pub mod netns;
pub mod owner;
pub mod router;

pub use error::{Error, Result};
