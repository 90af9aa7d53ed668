//! The network service's operations, one module per resource. Each takes the caller and the
//! request's fields, checks policy and input, and writes in one transaction.

pub mod agents;
pub mod availability;
pub mod floating_ips;
pub mod group_input;
pub mod groups;
pub mod guests;
pub mod input;
pub mod l3_input;
pub mod network_input;
pub mod networks;
pub mod port_input;
pub mod ports;
pub mod quota;
pub mod routers;
pub mod subnet_input;
pub mod subnets;
pub mod tags;
