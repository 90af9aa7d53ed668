//! The compute service: Nova's Compute v2.1 API (flavors, keypairs, servers and their
//! actions, server groups, quotas, hosts), the scheduler that places servers on hosts, and
//! what a host needs to run a server (its config drive). The API only records intent —
//! `vm_state`/`task_state` on the server — and the host agent carries it out.

pub mod api;
pub mod config;
pub mod error;
pub mod keys;
pub mod metadata;
pub mod microversion;
pub mod model;
pub mod ops;
pub mod policy;
pub mod scheduler;
pub mod service;
pub mod states;
pub(crate) mod store;
pub mod views;

pub use api::router;
pub use config::ComputeConfig;
pub use service::Computes;
pub use store::Versioned;
