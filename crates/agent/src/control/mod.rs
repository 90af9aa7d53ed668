//! The agent protocol between a controller and the hosts that joined it (`onestack join`):
//! a small authenticated HTTP API under [`PREFIX`] on the controller's listener. A host
//! trades a single-use join token for a credential of its own ([`api`]'s `join`), then its
//! agent reports the host alive with its capacity every `report_interval` ([`joined`], over
//! [`client`]) and builds the guests placed on it: it waits for changes (a long poll),
//! reads its servers, fetches their images and config drives and writes each task's
//! outcome ([`work`] on the controller, [`remote`] on the host). Its network agent reads
//! what its host must build and reports its ports up ([`network`] on the controller,
//! [`remote_network`] on the host). The agent presents its
//! credential on every call and may only speak for its own host and its own servers; it
//! never sees the database.

pub mod api;
pub mod client;
pub mod joined;
mod network;
pub mod remote;
pub mod remote_network;
mod work;

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

/// `GET .../changes?after=N&asks_after=A&wait=S`: the controller's count of changes at the
/// last one to the host's servers, and of console asks, answered once either is not as given
/// any more (or after `wait` seconds), and the servers whose console log is asked for (the
/// host sends each with `PUT .../servers/{id}/console`). Only a change needs a pass over the
/// host's servers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Changes {
    pub generation: u64,
    #[serde(default)]
    pub asks: u64,
    #[serde(default)]
    pub consoles: Vec<String>,
}

/// `PUT .../servers/{id}`'s answer: whether the outcome was written (`false`: the server
/// changed since it was read; the agent reads it again).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Written {
    pub written: bool,
}

/// `GET .../servers/{id}/latest-action`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatestAction {
    pub request_id: Option<String>,
}

/// `POST .../servers/{id}/events`: an event of an instance action and its outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionEvent {
    pub request_id: String,
    pub event: String,
    pub started: i64,
    pub ok: bool,
}

/// `GET .../servers/{id}/config-drive`: each file's path and its content in base64.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigDrive {
    pub files: std::collections::BTreeMap<String, String>,
}

/// `GET .../network/changes?after=N&wait=S`: the controller's count of network changes,
/// answered once it is not `N` any more (or after `wait` seconds), and the cloud's id, which
/// marks what the host's network agent builds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkChanges {
    pub generation: u64,
    pub cloud: String,
}

/// `PUT .../network/heartbeat`: the host's network agent is alive, reachable for VXLAN at
/// `tunnel_ip`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkHeartbeat {
    pub tunnel_ip: Option<std::net::IpAddr>,
}

/// `PUT .../network/status`: a port or floating IP this host carries is up or down.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    pub what: onestack_network::desired::Reported,
    pub id: String,
    pub up: bool,
}
