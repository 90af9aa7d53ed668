//! The block storage operations, one module per resource; handlers in `api/` call these
//! with typed inputs (`*_input`).

pub mod agent;
pub mod attachments;
pub mod backup_input;
pub mod backups;
pub mod metadata;
pub mod quotas;
pub mod server_attach;
pub mod services;
pub mod snapshot_input;
pub mod snapshots;
pub mod transfers;
pub mod type_access;
pub mod type_input;
pub mod types;
pub mod uploads;
pub mod volume_input;
pub mod volumes;
