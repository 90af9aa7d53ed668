//! The agent protocol between a controller and the hosts that joined it (`onestack join`):
//! a small authenticated HTTP API under [`PREFIX`] on the controller's listener. A host
//! trades a single-use join token for a credential of its own ([`api`]'s `join`), then its
//! agent reports the host alive with its capacity every `report_interval` ([`joined`], over
//! [`client`]). The agent presents its credential on every call and may only speak for its
//! own host; it never sees the database.

pub mod api;
pub mod client;
pub mod joined;

use serde::{Deserialize, Serialize};

/// Where the controller serves the agent protocol.
pub const PREFIX: &str = "/agent";

/// `POST /agent/v1/join`: a join token and the name the host wants.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub token: String,
    pub host: String,
}

/// The answer to a join: the host's credential, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinReply {
    pub host: String,
    pub credential: String,
}
