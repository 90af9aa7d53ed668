//! What admins see of the block storage service itself: `os-services` (this host's volume
//! and backup services, up while its volume agent reports), the pools the scheduler
//! places volumes in, with their capacity (`scheduler-stats/get_pools`), and what a
//! backend lets volume types ask for (`capabilities/{host}`).

use onestack_db::now_micros;

use crate::error::{Error, Result};
use crate::model::BackendReport;
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store;

/// A service is down once its agent has not reported for this long (it passes at least
/// every 30 s).
const DOWN_AFTER_MICROS: i64 = 90_000_000;

/// One row of `os-services`.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub binary: &'static str,
    pub host: String,
    pub zone: String,
    pub up: bool,
    /// The agent's last report (µs), if it has made one.
    pub updated_at: Option<i64>,
}

/// One pool of `scheduler-stats/get_pools`.
#[derive(Debug, Clone)]
pub struct PoolView {
    /// `host@backend#pool`.
    pub name: String,
    pub backend: &'static str,
    pub report: BackendReport,
    /// GiB of the volumes it holds, and how many.
    pub allocated_gb: i64,
    pub volumes: i64,
}

impl Volumes {
    fn last_report(&self) -> Option<BackendReport> {
        self.report.lock().ok().and_then(|r| *r)
    }

    pub fn services(&self, caller: &Caller) -> Result<Vec<ServiceView>> {
        caller.require_admin("volume_extension:services:index")?;
        let report = self.last_report();
        let up = report.is_some_and(|r| now_micros() - r.at < DOWN_AFTER_MICROS);
        let service = |binary, host| ServiceView {
            binary,
            host,
            zone: self.config.availability_zone.clone(),
            up,
            updated_at: report.map(|r| r.at),
        };
        // The volume agent makes the volumes and the backups: both are up while it runs.
        Ok(vec![
            service("cinder-volume", self.backend_host()),
            service("cinder-backup", self.host.clone()),
        ])
    }

    pub async fn pools(&self, caller: &Caller) -> Result<Vec<PoolView>> {
        caller.require_admin("scheduler_extension:scheduler_stats:get_pools")?;
        let Some(report) = self.last_report() else {
            return Ok(Vec::new());
        };
        let name = self.volume_host();
        let (volumes, allocated_gb) = store::allocated(&self.pool, &name).await?;
        Ok(vec![PoolView {
            name,
            backend: crate::service::BACKEND,
            report,
            allocated_gb,
            volumes,
        }])
    }
}

impl Volumes {
    /// The backend `host` (`host@backend`) and the extra specs of volume types it honours.
    pub fn capabilities(&self, caller: &Caller, host: &str) -> Result<String> {
        caller.require_admin("volume_extension:capabilities")?;
        let ours = self.backend_host();
        if host == ours {
            Ok(ours)
        } else {
            Err(Error::NotFound(format!(
                "Service {host} could not be found."
            )))
        }
    }
}
