//! Neutron-compatible Network v2.0: networks (VXLAN tenant networks, flat/VLAN provider
//! networks), subnets with IPAM, ports, security groups and rules, quotas, tags and IP
//! availability. The API writes desired state; the host agent (`onestack-agent`) reads it
//! through [`desired`] and builds bridges, taps, nftables rules and DHCP servers.

mod api;
pub mod config;
pub mod desired;
pub mod error;
pub mod ipam;
pub mod model;
pub mod ops;
pub mod policy;
pub mod service;
pub(crate) mod store;
mod views;

pub use api::router;
pub use config::NetworkConfig;
pub use service::Networks;
