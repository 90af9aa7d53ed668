//! Keystone-compatible Identity v3: domains, projects, users, groups, roles and their
//! assignments, Fernet tokens, the service catalog, application credentials and EC2
//! credentials. `router` serves it under a prefix; `Validator` lets every other service
//! authenticate requests against it in process.

mod api;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod fernet;
pub mod model;
pub mod ops;
mod password;
pub mod password_rules;
pub mod policy;
pub mod service;
pub mod store;
pub mod token;
mod views;

pub use api::router;
pub use config::IdentityConfig;
pub use service::{Identity, Validator};
