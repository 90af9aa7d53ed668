//! This host's record: capacity (vCPUs, RAM, disk where the guests live), zone and
//! liveness, for `os-services` and `os-hypervisors`.

use std::path::PathBuf;

use onestack_compute::model::Host;

use super::{ComputeAgent, Error, Result};

impl ComputeAgent {
    /// Registers this host (capacity, zone) and reports it alive.
    pub async fn heartbeat(&self) -> Result<()> {
        let c = &self.computes.config;
        // `df` and /proc reads block: keep them off the async workers.
        let dir = self.computes.instances_dir.clone();
        let (vcpus, memory_mb, disk_gb) = tokio::task::spawn_blocking(move || measure(&dir))
            .await
            .map_err(|e| Error::Other(e.to_string()))?;
        let host = Host {
            host: self.computes.host.clone(),
            service_id: uuid_like(&self.computes.host, "service"),
            hypervisor_id: uuid_like(&self.computes.host, "hypervisor"),
            zone: c.availability_zone.clone(),
            disabled: false,
            disabled_reason: None,
            forced_down: false,
            vcpus: if c.vcpus > 0 { c.vcpus } else { vcpus },
            memory_mb: if c.memory_mb > 0 {
                c.memory_mb
            } else {
                memory_mb
            },
            disk_gb: if c.disk_gb > 0 { c.disk_gb } else { disk_gb },
            cpu_ratio: c.cpu_allocation_ratio,
            ram_ratio: c.ram_allocation_ratio,
            disk_ratio: c.disk_allocation_ratio,
            reserved_memory_mb: c.reserved_host_memory_mb,
            hypervisor_type: if self.driver.name() == "fake" {
                "fake".into()
            } else {
                "QEMU".into()
            },
            hypervisor_version: 7_002_000,
            host_ip: self.computes.networks.config.local_ip.clone(),
            runs_guests: true,
            updated_at: 0,
        };
        self.computes.register_host(host).await?;
        Ok(())
    }
}

/// A stable uuid-shaped id for a host's service or hypervisor record.
fn uuid_like(host: &str, what: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut a = std::collections::hash_map::DefaultHasher::new();
    (host, what, 1u8).hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (what, host, 2u8).hash(&mut b);
    let hex = format!("{:016x}{:016x}", a.finish(), b.finish());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
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
