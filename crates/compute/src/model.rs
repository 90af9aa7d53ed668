//! The stored documents of the compute service, typed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::states::{PowerState, TaskState, VmState};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    /// MiB.
    pub ram: u64,
    /// GiB of root disk (0: the image's size).
    pub disk: u64,
    /// GiB.
    pub ephemeral: u64,
    /// MiB.
    pub swap: u64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Keypair {
    pub id: i64,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    /// `ssh` or `x509`.
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: i64,
}

/// The flavor a server was built with, copied so later flavor changes do not move it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlavorCopy {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram: u64,
    pub disk: u64,
    pub ephemeral: u64,
    pub swap: u64,
    pub extra_specs: BTreeMap<String, String>,
}

impl From<&Flavor> for FlavorCopy {
    fn from(f: &Flavor) -> Self {
        Self {
            id: f.id.clone(),
            name: f.name.clone(),
            vcpus: f.vcpus,
            ram: f.ram,
            disk: f.disk,
            ephemeral: f.ephemeral,
            swap: f.swap,
            extra_specs: f.extra_specs.clone(),
        }
    }
}

/// A network interface of a server: a Neutron port, with the addresses Nova caches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nic {
    pub port_id: String,
    pub network_id: String,
    pub network_name: String,
    pub mac: String,
    pub ips: Vec<String>,
    /// Made by compute for this server (deleted with it) rather than passed in by the user.
    pub owned: bool,
}

onestack_api::wire_enum! {
    /// Where a volume attachment is: waiting for the host to plug the disk in, plugged
    /// in, or waiting for the host to unplug it.
    VolumeAttachState {
        Attaching = "attaching",
        Attached = "attached",
        Detaching = "detaching",
    }
}

/// A volume attached to a server: Nova's block device mapping of a volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeAttachment {
    pub volume_id: String,
    /// The block storage service's attachment; empty while a volume made for the server
    /// at its create is still being made (the host reserves it when it boots the server).
    pub attachment_id: String,
    /// Nova's `bdm_uuid`.
    pub bdm_id: String,
    /// `/dev/vdb`, ...: the name the disk gets in a Linux guest in attach order.
    pub device: String,
    pub tag: Option<String>,
    pub delete_on_termination: bool,
    /// 0: the server boots from this volume.
    #[serde(default)]
    pub boot_index: Option<i64>,
    pub state: VolumeAttachState,
    /// The size (GiB) the block storage service grew the attached volume to, which the
    /// server's host has yet to give the guest (Cinder 3.42's extend of an in-use volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grow_to_gb: Option<u64>,
    /// The snapshots the server's host has yet to copy the attached volume into
    /// (snapshots of an in-use volume), in the order they were taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<String>,
}

impl VolumeAttachment {
    /// Whether the server's host has work to do on the attached volume for the block
    /// storage service (grow it, copy it).
    pub fn has_host_work(&self) -> bool {
        self.grow_to_gb.is_some() || !self.copies.is_empty()
    }

    pub fn is_root(&self) -> bool {
        self.boot_index == Some(0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    pub code: u16,
    pub message: String,
    pub details: String,
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Server {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    pub description: Option<String>,
    pub hostname: String,
    /// `instance-0000002a`: the hypervisor's name for it.
    pub instance_name: String,
    pub reservation_id: String,
    pub launch_index: u32,
    /// Empty for a server booted without an image.
    pub image_id: String,
    pub flavor: FlavorCopy,
    /// The flavor before a resize, until it is confirmed or reverted.
    pub old_flavor: Option<FlavorCopy>,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    /// Base64, as given.
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub security_groups: Vec<String>,
    pub availability_zone: String,
    /// The zone the user asked for, if any.
    pub requested_zone: Option<String>,
    pub host: Option<String>,
    pub nics: Vec<Nic>,
    #[serde(default)]
    pub volumes: Vec<VolumeAttachment>,
    pub vm_state: VmState,
    pub task_state: Option<TaskState>,
    pub power_state: PowerState,
    pub config_drive: bool,
    pub locked: bool,
    pub locked_reason: Option<String>,
    /// `admin` or `owner`: who may lift the lock.
    #[serde(default)]
    pub locked_by: Option<String>,
    pub access_ipv4: String,
    pub access_ipv6: String,
    pub server_group: Option<String>,
    pub fault: Option<Fault>,
    pub progress: u8,
    /// Work the agent carries out with the current task: the image a rebuild or snapshot
    /// uses, the admin password of a rescue.
    pub pending_image: Option<String>,
    /// The vm_state to return to when a resize is confirmed or reverted.
    #[serde(default)]
    pub previous_vm_state: Option<VmState>,
    /// A cold migration under way or awaiting its confirmation.
    #[serde(default)]
    pub migration: Option<Migration>,
    pub launched_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A server's move to another host. Cold: the host it leaves keeps its guest (stopped)
/// until the move is confirmed, so that a revert restarts it there. Live: `live` says
/// where the guest's QEMUs meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// Nova's migration id, as instance actions and `os-migrations` name it.
    pub id: String,
    pub source: String,
    pub dest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveChannel>,
}

/// Where a live migration's new host listens, and the key only the two hosts hold: the
/// controller makes the key and reads the address from the new host's network agent; the
/// new host adds its ports once its QEMU listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveChannel {
    /// The TLS pre-shared key of both QEMUs (64 hex digits).
    pub key: String,
    /// The new host's underlay address.
    pub address: std::net::IpAddr,
    /// `(migration stream, NBD)` once the new host listens.
    #[serde(default)]
    pub ports: Option<(u16, u16)>,
}

impl Server {
    /// Whether the server boots from a volume (the block storage service's disk).
    pub fn volume_backed(&self) -> bool {
        self.volumes.iter().any(VolumeAttachment::is_root)
    }

    /// GiB of its host's disk the server takes with `flavor`: the ephemeral disk, and the
    /// root disk unless it boots from a volume.
    pub fn local_disk_gb(&self, flavor: &FlavorCopy) -> u64 {
        let root = if self.volume_backed() { 0 } else { flavor.disk };
        root.saturating_add(flavor.ephemeral)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerGroup {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    /// `affinity`, `anti-affinity`, `soft-affinity` or `soft-anti-affinity`.
    pub policy: String,
    /// `max_server_per_host` for anti-affinity.
    pub rules: BTreeMap<String, i64>,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionEvent {
    pub event: String,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    pub result: Option<String>,
    pub host: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceAction {
    pub request_id: String,
    pub server_id: String,
    pub action: String,
    pub user_id: String,
    pub project_id: String,
    pub start_time: i64,
    pub updated_at: i64,
    pub message: Option<String>,
    pub events: Vec<ActionEvent>,
}

/// A compute host as its agent registered it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub host: String,
    /// Stable ids for `os-services` and `os-hypervisors`.
    pub service_id: String,
    pub hypervisor_id: String,
    pub zone: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub vcpus: u64,
    pub memory_mb: u64,
    pub disk_gb: u64,
    pub cpu_ratio: f64,
    pub ram_ratio: f64,
    pub disk_ratio: f64,
    pub reserved_memory_mb: u64,
    pub hypervisor_type: String,
    pub hypervisor_version: u64,
    pub host_ip: String,
    /// Whether the host plugs guests into networks (its network agent makes their taps): a
    /// joined host does once its network agent runs. Servers with ports go only there.
    #[serde(default = "plugs_by_default")]
    pub plugs_ports: bool,
    /// Whether the host plugs volumes into guests: the host keeping the volume files (a
    /// controller). Servers with volumes go only there.
    #[serde(default = "plugs_by_default")]
    pub plugs_volumes: bool,
    /// The availability zone of the aggregate the host is in, which overrides its own.
    #[serde(default)]
    pub aggregate_zone: Option<String>,
    pub updated_at: i64,
}

fn plugs_by_default() -> bool {
    true
}

/// A host aggregate (`os-aggregates`): hosts grouped by an admin, with metadata; the
/// `availability_zone` key makes it its hosts' availability zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aggregate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub hosts: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

/// The metadata key that names an aggregate's availability zone.
pub const ZONE_KEY: &str = "availability_zone";

impl Aggregate {
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get(ZONE_KEY).map(String::as_str)
    }
}

impl Host {
    /// The zone the host is in: its aggregate's, else its own.
    pub fn availability_zone(&self) -> &str {
        self.aggregate_zone.as_deref().unwrap_or(&self.zone)
    }

    /// The stable id of a host's service or hypervisor record.
    pub fn stable_id(host: &str, what: &str) -> String {
        onestack_db::ids::stable_uuid(&[host, what])
    }
}
