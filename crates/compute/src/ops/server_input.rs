//! What the server operations are asked to do, typed: read from request bodies by
//! `api::server_body` (at the request's microversion). Every value has its wire format
//! checked there; the operations check them against each other, the database and the
//! configuration (flavor, image, networks, keypair, quotas, zones).

use std::collections::BTreeMap;
use std::net::IpAddr;

/// One network a server asks to be on: a port to take over, or a network to make a port on.
#[derive(Debug, Clone)]
pub enum NetworkRequest {
    Network {
        id: String,
        fixed_ip: Option<IpAddr>,
    },
    Port(String),
}

/// `networks` of a create request.
#[derive(Debug, Clone)]
pub enum NetworkChoice {
    /// `none`: no network at all.
    None,
    /// `auto`: the one network the project can use (an error when there is none or several).
    Auto,
    /// Not given (before 2.37) or `null`: the one network the project can use, if just one.
    Unspecified,
    /// The ports and networks listed, in order.
    Listed(Vec<NetworkRequest>),
}

/// Where a volume of a create comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// An existing volume, attached.
    Existing(String),
    /// A new volume made from the image.
    Image(String),
    /// A new volume made from the snapshot.
    Snapshot(String),
    /// A new blank volume.
    Blank,
}

/// A volume of a create: an entry of `block_device_mapping_v2` with destination `volume`.
#[derive(Debug, Clone)]
pub struct VolumeRequest {
    pub source: VolumeSource,
    /// GiB of a new volume (a snapshot's size when not given).
    pub size: Option<u64>,
    /// 0: the disk the server boots from.
    pub boot_index: Option<i64>,
    pub delete_on_termination: bool,
    /// 2.42+.
    pub tag: Option<String>,
    /// 2.67+: the type of a new volume.
    pub volume_type: Option<String>,
}

impl VolumeRequest {
    pub fn boots(&self) -> bool {
        self.boot_index == Some(0)
    }
}

/// A server to create (`POST /servers`), `min_count` to `max_count` of them.
#[derive(Debug)]
pub struct NewServer {
    /// Checked: 1–255 characters without surrounding whitespace.
    pub name: String,
    /// 2.19+: at most 255 characters.
    pub description: Option<String>,
    /// 2.90+: a valid hostname; `None` derives it from the name.
    pub hostname: Option<String>,
    /// `flavorRef` as given: an id, a name or a link.
    pub flavor_ref: String,
    /// `imageRef`, or the image of the boot entry of `block_device_mapping_v2`, as given;
    /// `None` for a server that boots from a volume.
    pub image_ref: Option<String>,
    /// The volumes of `block_device_mapping_v2`, in order (boot index 0: the root disk).
    pub volumes: Vec<VolumeRequest>,
    /// The sizes (GiB) of the blank local disks of `block_device_mapping_v2`, in order;
    /// `None`: the flavor's ephemeral size.
    pub blank_disks: Vec<Option<u64>>,
    pub networks: NetworkChoice,
    pub key_name: Option<String>,
    /// Base64, checked to decode to at most 64 KiB; trimmed.
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Names or ids; `None`: the project's `default` group.
    pub security_groups: Option<Vec<String>>,
    /// From `availability_zone` (`zone`, `zone:host` or `:host`).
    pub zone: Option<String>,
    /// The host named after the `:` of `availability_zone` (admins only).
    pub forced_host: Option<String>,
    /// Asked for; the configuration may force it.
    pub config_drive: bool,
    /// `None`: 1.
    pub min_count: Option<u64>,
    /// `None`: `min_count`.
    pub max_count: Option<u64>,
    /// The server group of the `group` scheduler hint.
    pub group: Option<String>,
    /// 2.52+.
    pub tags: Vec<String>,
    pub access_ipv4: String,
    pub access_ipv6: String,
    /// Answer with the reservation id instead of the first server.
    pub return_reservation_id: bool,
}

/// The changes to a server (`PUT /servers/{id}`); `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct ServerUpdate {
    /// Checked like a create's.
    pub name: Option<String>,
    /// 2.19+; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// 2.90+; checked.
    pub hostname: Option<String>,
    pub access_ipv4: Option<String>,
    pub access_ipv6: Option<String>,
}
