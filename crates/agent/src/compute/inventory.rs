//! This host's record: capacity (vCPUs, RAM, disk where the guests live), zone and
//! liveness, for `os-services` and `os-hypervisors`.

use std::path::PathBuf;

use onestack_compute::config::ComputeConfig;
use onestack_compute::ops::membership::{HostKind, HostReport};

use onestack_compute::Computes;

use super::{Error, Result};

/// Registers this controller's own host (capacity, zone) and reports it alive.
pub async fn heartbeat(computes: &Computes, driver: &str) -> Result<()> {
    let report = measure_report(
        &computes.config,
        computes.instances_dir.clone(),
        driver,
        &computes.networks.config.local_ip,
        true,
    )
    .await?;
    computes
        .register_host(report.into_host(&computes.host, HostKind::Controller)?)
        .await?;
    Ok(())
}

/// What this host offers: its capacity (or the configured overrides), zone, allocation
/// ratios and hypervisor, measured off the async workers (`statvfs` and /proc block).
pub async fn measure_report(
    c: &ComputeConfig,
    instances_dir: PathBuf,
    driver: &str,
    local_ip: &str,
    plugs_ports: bool,
) -> Result<HostReport> {
    let (vcpus, memory_mb, disk_gb) = tokio::task::spawn_blocking(move || measure(&instances_dir))
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    let or_measured = |configured: u64, measured: u64| {
        if configured > 0 { configured } else { measured }
    };
    Ok(HostReport {
        zone: c.availability_zone.clone(),
        vcpus: or_measured(c.vcpus, vcpus),
        memory_mb: or_measured(c.memory_mb, memory_mb),
        disk_gb: or_measured(c.disk_gb, disk_gb),
        cpu_ratio: c.cpu_allocation_ratio,
        ram_ratio: c.ram_allocation_ratio,
        disk_ratio: c.disk_allocation_ratio,
        reserved_memory_mb: c.reserved_host_memory_mb,
        hypervisor_type: if driver == "fake" { "fake" } else { "QEMU" }.into(),
        hypervisor_version: 7_002_000,
        host_ip: local_ip.to_owned(),
        plugs_ports,
    })
}

/// This host's (vCPUs, RAM MiB, disk GiB where the guests live).
fn measure(dir: &std::path::Path) -> (u64, u64, u64) {
    let vcpus = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(1024);
    // The size of the filesystem the guests' disks are on, as `df` gives it.
    let disk_gb = nix::sys::statvfs::statvfs(&existing_ancestor(dir))
        .map(|fs| fs.blocks().saturating_mul(fs.fragment_size()))
        .map(|bytes| bytes / (1 << 30))
        .unwrap_or(10);
    (vcpus, memory_mb, disk_gb)
}

fn existing_ancestor(dir: &std::path::Path) -> PathBuf {
    let mut d = dir.to_path_buf();
    while !d.exists() {
        if !d.pop() {
            return PathBuf::from("/");
        }
    }
    d
}
