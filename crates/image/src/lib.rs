//! Glance-compatible Image v2: images with their properties, tags and members; image data
//! streamed to a file store with md5 and sha512 computed on the way and the content checked
//! against its claimed disk format; the interoperable import workflow. Other services use
//! `Images::{create_snapshot, upload_from_file, discard, open_data}` in process.

mod api;
pub mod config;
pub mod error;
pub mod files;
pub mod format;
pub mod model;
mod ops;
pub mod policy;
pub mod quota;
pub mod service;
pub(crate) mod store;
mod views;

pub use api::router;
pub use config::ImageConfig;
pub use ops::in_process::{Announced, Snapshot};
pub use service::Images;
