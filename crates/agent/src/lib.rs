//! The per-host agent. The database holds desired state; the agent makes this host match
//! it, level-triggered and idempotent: every pass reads the whole desired state and closes
//! the differences, so a crash at any point is repaired by the next pass. Today it builds
//! the network data plane ([`network`]) with the metadata service in its namespaces
//! ([`metadata`]), runs this host's guests ([`compute`]) and keeps its volume files
//! ([`volume`]).

pub mod compute;
pub mod control;
pub mod metadata;
pub mod network;
pub mod volume;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use onestack_compute::Computes;
use onestack_db::Pool;
pub use onestack_netdrv::owner::Owner;
use onestack_network::NetworkConfig;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// A running agent; dropping the handle leaves it running until the process ends.
pub struct AgentHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AgentHandle {
    /// Stops after the pass in progress. What the agent built stays: guests outlive us.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Whether this process may configure host networking.
pub fn has_privileges() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        // CAP_NET_ADMIN is capability 12.
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

/// Makes `runtime_dir/<below…>` (each level 0755: dnsmasq drops to an unprivileged user
/// and reads its files there) for the network agent's DHCP files and pid files. Under
/// `/run`, they go with the processes at reboot.
pub fn network_state_dir(
    runtime_dir: &std::path::Path,
    below: &[&str],
) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut dir = runtime_dir.to_path_buf();
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    for part in below {
        dir.push(part);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(dir)
}

/// Starts the agent: a pass at once, then one after every change signalled on `changes`
/// and at least every `resync_seconds`.
/// Everything it makes carries `owner`'s mark, and only what carries it is ever removed.
pub fn spawn(
    pool: Pool,
    config: NetworkConfig,
    state_dir: PathBuf,
    owner: Owner,
    changes: Arc<Notify>,
) -> Result<AgentHandle, network::Error> {
    let (stop, mut stopped) = watch::channel(false);
    let resync = Duration::from_secs(config.resync_seconds.max(1));
    let controller = network::controller::InProcess {
        pool,
        host: config.host_name(),
    };
    let mut reconciler = network::Reconciler::new(controller, config, state_dir, owner)?;
    let task = tokio::spawn(async move {
        loop {
            match reconciler.pass().await {
                Ok(report) if report.changed() => tracing::info!(%report, "network reconciled"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "network reconcile pass failed; retrying"),
            }
            tokio::select! {
                _ = changes.notified() => {}
                _ = tokio::time::sleep(resync) => {}
                _ = stopped.changed() => break,
            }
        }
    });
    Ok(AgentHandle { stop, task })
}

/// Stops the DHCP servers an earlier version ran from `<data dir>/network` (the state is
/// under `/run/onestack/<cloud>` now); the agent starts its own on its first pass.
pub async fn retire_legacy_dhcp(old_state_dir: &std::path::Path) {
    if let Err(error) = onestack_netdrv::dhcp::retire(old_state_dir).await {
        tracing::warn!(%error, "cannot stop an earlier version's DHCP servers");
    }
}

/// Starts a controller's compute agent: registers this host, then carries out server tasks
/// after every change signalled on `changes`, syncs power states every `sync_seconds` and
/// reports the host alive every `report_interval`.
pub fn spawn_compute(
    computes: Arc<Computes>,
    driver: onestack_virt::Driver,
    volume_files: onestack_virt::VolumeFiles,
) -> AgentHandle {
    let (stop, mut stopped) = watch::channel(false);
    let sync = Duration::from_secs(computes.config.sync_seconds.max(1));
    let report = Duration::from_secs(computes.config.report_interval.max(1));
    let changes = computes.changes();
    let driver_name = driver.name();
    let paths = compute::AgentPaths {
        volume_files: Some(volume_files),
        // Beside the instance dirs, not among them (those are all guests).
        snapshots_dir: computes.instances_dir.with_file_name("snapshots"),
        shutdown_timeout: Duration::from_secs(computes.config.shutdown_timeout_seconds),
    };
    let controller = Arc::new(compute::controller::InProcess(computes.clone()));
    let agent = compute::ComputeAgent::new(controller, driver, paths);
    let done = agent.done();
    let task = tokio::spawn(async move {
        let mut last_heartbeat = None::<tokio::time::Instant>;
        loop {
            if last_heartbeat.is_none_or(|t| t.elapsed() >= report) {
                match compute::inventory::heartbeat(&computes, driver_name).await {
                    Ok(()) => last_heartbeat = Some(tokio::time::Instant::now()),
                    Err(error) => tracing::warn!(%error, "cannot register this compute host"),
                }
            }
            if let Err(error) = agent.pass().await {
                tracing::warn!(%error, "compute pass failed; retrying");
            }
            tokio::select! {
                _ = changes.notified() => {}
                _ = done.notified() => {}
                _ = tokio::time::sleep(sync.min(report)) => {}
                _ = stopped.changed() => break,
            }
        }
    });
    AgentHandle { stop, task }
}
