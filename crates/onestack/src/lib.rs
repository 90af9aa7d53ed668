//! The onestack binary as a library: configuration, start-up wiring and the files it writes
//! for people, so that tests can start the whole cloud in process.

pub mod config;
pub mod files;
pub mod join;
pub mod openapi;
pub mod server;

pub use config::Config;
/// The mark of a cloud's host resources (tests and tools find its nft tables by it).
pub use onestack_agent::Owner;
pub use server::{RUNTIME_DIR, Running, start};
