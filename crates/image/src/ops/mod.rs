//! The image service's operations, as methods of [`crate::Images`]: each takes the caller
//! and the request's typed input, checks visibility and policy, and calls `store` for SQL.
//! Input that failed to parse is passed in as an error and refused where it always was: after
//! the caller's rights (and the image, where there is one) are checked.

mod access;
pub mod attributes;
pub mod data;
pub mod images;
pub mod import;
pub mod in_process;
pub mod list;
mod members;
pub mod transfer;
mod web_download;
