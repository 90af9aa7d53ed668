//! Cinder-compatible Block Storage v3: volumes (blank, from an image, a snapshot or a volume,
//! on this host's file backend), snapshots,
//! volume types with extra specs, quotas and limits. The API records intent; this host's
//! volume agent (`agent::volume`) makes, grows and removes the files.
//!
//! | module | job |
//! |---|---|
//! | `api/` | routes, `Ctx`, the project segment in URLs, version discovery, handlers that read bodies into `ops::*_input` |
//! | `ops/` | volumes, types, quotas, and what the agent reads and writes (`ops::agent`) |
//! | `store` | SQL: JSON documents next to their columns, volumes compare-and-set |
//! | `model`, `views` | the domain types (`VolumeStatus` with its wire strings), Cinder's JSON per microversion |
//! | `config`, `policy`, `error`, `service` | settings, Cinder's default roles, its fault envelope, the shared state |

pub mod api;
pub mod config;
pub mod error;
pub mod model;
pub mod ops;
pub mod policy;
pub mod service;
pub(crate) mod store;
pub mod views;
pub mod volume_view;

pub use api::{router, take_url_project};
pub use config::VolumeConfig;
pub use service::Volumes;
