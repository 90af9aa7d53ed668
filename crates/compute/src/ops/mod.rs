//! The compute operations, one module per resource; handlers in `api/` read request bodies
//! into the typed inputs of `*_input` and call these.

pub mod action_input;
pub mod actions;
pub mod aggregates;
pub mod attached_volumes;
pub mod boot_volumes;
pub mod consoles;
pub mod create;
pub mod evacuate;
pub mod flavors;
pub mod groups;
pub mod hosts;
pub mod keypairs;
pub mod lifecycle;
pub mod live_migrate;
pub mod membership;
pub mod migrate;
pub mod ports;
pub mod resource_input;
pub mod server_input;
pub mod servers;
pub mod volume_attachments;
pub mod volume_backed;
pub mod volume_input;
