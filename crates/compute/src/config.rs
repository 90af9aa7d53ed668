//! Compute settings, as the `[compute]` section of the config file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeConfig {
    /// Whether this process runs the compute agent that starts guests on this host.
    pub agent: bool,
    /// `qemu` (real guests) or `fake` (in-memory, for control-plane scale tests only).
    pub driver: String,
    /// `auto` (KVM when the CPU has vmx/svm and /dev/kvm exists, else TCG), `kvm` or `tcg`.
    pub accel: String,
    pub qemu_binary: String,
    /// Availability zone of this host.
    pub availability_zone: String,
    /// Always attach a config drive (sites without DHCP need it); a request can still ask.
    pub force_config_drive: bool,
    /// Seconds a guest gets to shut down on ACPI power-off before it is stopped hard.
    pub shutdown_timeout_seconds: u64,
    /// Overcommit: schedulable vCPUs, RAM and disk are the host's times these.
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// RAM (MiB) kept for the host itself.
    pub reserved_host_memory_mb: u64,
    /// Host capacity overrides (0 = measure the host).
    pub vcpus: u64,
    pub memory_mb: u64,
    pub disk_gb: u64,
    /// Seconds between power-state syncs (a guest that shut itself down becomes SHUTOFF).
    pub sync_seconds: u64,
    /// Seconds between a host's reports that it is alive (Nova's `report_interval`).
    pub report_interval: u64,
    /// Seconds without a report after which a host is `down` and gets no new servers
    /// (Nova's `service_down_time`).
    pub service_down_time: u64,
    /// Create DevStack's m1.* flavors on first start.
    pub default_flavors: bool,
    /// Default per-project quotas (-1 is unlimited).
    pub quota_instances: i64,
    pub quota_cores: i64,
    pub quota_ram: i64,
    pub quota_key_pairs: i64,
    pub quota_metadata_items: i64,
    pub quota_server_groups: i64,
    pub quota_server_group_members: i64,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self {
            agent: true,
            driver: "qemu".into(),
            accel: "auto".into(),
            qemu_binary: "qemu-system-x86_64".into(),
            availability_zone: "nova".into(),
            force_config_drive: true,
            shutdown_timeout_seconds: 60,
            cpu_allocation_ratio: 4.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            reserved_host_memory_mb: 512,
            vcpus: 0,
            memory_mb: 0,
            disk_gb: 0,
            sync_seconds: 10,
            report_interval: 10,
            service_down_time: 25,
            default_flavors: true,
            quota_instances: 10,
            quota_cores: 20,
            quota_ram: 51200,
            quota_key_pairs: 100,
            quota_metadata_items: 128,
            quota_server_groups: 10,
            quota_server_group_members: 10,
        }
    }
}

impl ComputeConfig {
    /// Which hosts count as up at `now`.
    pub fn liveness(&self, now: i64) -> crate::scheduler::Liveness {
        crate::scheduler::Liveness {
            now,
            down_after_seconds: self.service_down_time.max(1),
        }
    }

    pub fn default_quota(&self, resource: &str) -> Option<i64> {
        Some(match resource {
            "instances" => self.quota_instances,
            "cores" => self.quota_cores,
            "ram" => self.quota_ram,
            "key_pairs" => self.quota_key_pairs,
            "metadata_items" => self.quota_metadata_items,
            "server_groups" => self.quota_server_groups,
            "server_group_members" => self.quota_server_group_members,
            _ => return None,
        })
    }
}

/// The resources with quotas, in Nova's order.
pub const QUOTA_RESOURCES: &[&str] = &[
    "cores",
    "instances",
    "key_pairs",
    "metadata_items",
    "ram",
    "server_groups",
    "server_group_members",
];
