//! The onestack binary as a library: configuration, start-up wiring and the files it writes
//! for people, so that tests can start the whole cloud in process.

pub mod config;
pub mod files;
pub mod server;

pub use config::Config;
pub use server::{RUNTIME_DIR, Running, start};
