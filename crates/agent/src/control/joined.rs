//! What a joined host runs: reports itself alive with its capacity every `report_interval`,
//! riding out a controller restart or a cut link (it keeps trying), and stops only when the
//! controller no longer knows its credential.

use std::path::PathBuf;
use std::time::Duration;

use onestack_compute::config::ComputeConfig;

use super::client::{ControlClient, ControlError};
use crate::compute::inventory::measure_report;

/// A joined host: who it is and what it reports.
pub struct JoinedHost {
    pub client: ControlClient,
    pub host: String,
    pub compute: ComputeConfig,
    /// Where this host keeps its guests (the file system whose size it reports).
    pub instances_dir: PathBuf,
    pub driver: String,
    pub local_ip: String,
}

impl JoinedHost {
    /// Reports until the controller refuses this host's credential (that error is
    /// returned); an unreachable controller is logged and tried again.
    pub async fn run(&self) -> Result<(), ControlError> {
        let interval = Duration::from_secs(self.compute.report_interval.max(1));
        let mut reachable = true;
        loop {
            let measured = measure_report(
                &self.compute,
                self.instances_dir.clone(),
                &self.driver,
                &self.local_ip,
            )
            .await;
            let report = match measured {
                Ok(report) => report,
                Err(error) => {
                    tracing::warn!(%error, "cannot measure this host; trying again");
                    tokio::time::sleep(interval).await;
                    continue;
                }
            };
            match self.client.report(&self.host, &report).await {
                Ok(()) if !reachable => {
                    tracing::info!(url = self.client.url(), "the controller answers again");
                    reachable = true;
                }
                Ok(()) => {}
                Err(error) if error.is_credential_refused() => return Err(error),
                Err(error @ ControlError::Unreachable { .. }) if reachable => {
                    tracing::warn!(%error, "cannot report this host; trying again");
                    reachable = false;
                }
                Err(ControlError::Unreachable { .. }) => {}
                Err(error) => tracing::warn!(%error, "the report was refused; trying again"),
            }
            tokio::time::sleep(interval).await;
        }
    }
}
