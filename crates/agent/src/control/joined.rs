//! What a joined host runs: reports itself alive with its capacity every `report_interval`,
//! builds the guests placed on it (woken by the controller's changes through a long poll,
//! and every `sync_seconds` to sync power states) and, as root, builds their ports: bridges,
//! VXLAN to the other hosts, taps and security groups. All ride out a controller restart or
//! a cut link (guests keep running; the agent keeps trying and catches up), and stop only
//! when the controller no longer knows the host's credential.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use onestack_compute::config::ComputeConfig;
use onestack_network::NetworkConfig;
use onestack_virt::Driver;

use super::client::{ControlClient, ControlError};
use super::remote::RemoteController;
use super::remote_network::RemoteNetwork;
use crate::compute::inventory::measure_report;
use crate::compute::{AgentPaths, ComputeAgent, Error};
use crate::network::{self, Reconciler};

/// A joined host: who it is, what it reports and where it keeps its guests.
pub struct JoinedHost {
    pub client: ControlClient,
    pub host: String,
    pub compute: ComputeConfig,
    /// Where this host keeps its guests (the file system whose size it reports).
    pub instances_dir: PathBuf,
    /// Where images are downloaded to and snapshots written before they are sent.
    pub work_dir: PathBuf,
    pub local_ip: String,
    /// The network agent's settings; `None` when it does not run here (not root, or
    /// `[network] agent = false`): the host then takes only servers without ports.
    pub network: Option<NetworkSetup>,
    /// Set once the network agent has made a pass: the host plugs ports from then on (and
    /// says so in a report at once).
    pub plugs_ports: tokio::sync::watch::Sender<bool>,
}

/// What the host's network agent needs besides the controller.
pub struct NetworkSetup {
    pub config: NetworkConfig,
    /// Where its state goes, per cloud and host (`/run/onestack`).
    pub runtime_dir: PathBuf,
}

impl JoinedHost {
    /// Reports, builds guests and their ports until the controller refuses this host's
    /// credential (that error is returned); an unreachable controller is logged and tried
    /// again.
    pub async fn run(&self, driver: Driver) -> Result<(), ControlError> {
        let build_ports = async {
            match &self.network {
                Some(setup) => self.build_ports(setup).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = self.report(driver.name()) => ended,
            ended = self.build_guests(driver) => ended,
            ended = build_ports => ended,
        }
    }

    /// Builds the network this host's ports need after each network change on the
    /// controller (and at least every `resync_seconds`).
    async fn build_ports(&self, setup: &NetworkSetup) -> Result<(), ControlError> {
        let remote = RemoteNetwork::new(self.client.clone(), &self.host);
        let wait = Duration::from_secs(setup.config.resync_seconds.clamp(1, 30));
        // The cloud's id marks all the agent builds: asked for first.
        let first = loop {
            match remote.wait_for_change(None, wait).await {
                Ok(changes) => break changes,
                Err(error) if error.is_credential_refused() => return Err(error),
                Err(_) => tokio::time::sleep(wait).await,
            }
        };
        let mut reconciler = match self.reconciler(setup, &first.cloud) {
            Ok(reconciler) => reconciler,
            Err(error) => {
                tracing::error!(%error, "the network agent cannot start: this host takes no servers with ports");
                return std::future::pending().await;
            }
        };
        let mut seen = first.generation;
        loop {
            match reconciler.pass().await {
                Ok(report) => {
                    if report.changed() {
                        tracing::info!(%report, "network reconciled");
                    }
                    self.plugs_ports
                        .send_if_modified(|plugs| !std::mem::replace(plugs, true));
                }
                Err(network::Error::Control(error)) if error.is_credential_refused() => {
                    return Err(error);
                }
                Err(error) => tracing::warn!(%error, "network reconcile pass failed; retrying"),
            }
            match remote.wait_for_change(Some(seen), wait).await {
                Ok(changes) => seen = changes.generation,
                Err(error) if error.is_credential_refused() => return Err(error),
                Err(_) => tokio::time::sleep(wait).await,
            }
        }
    }

    fn reconciler(
        &self,
        setup: &NetworkSetup,
        cloud: &str,
    ) -> Result<Reconciler<RemoteNetwork>, String> {
        let owner = crate::Owner::new(cloud, &self.host).map_err(|e| e.to_string())?;
        // Per host as well as per cloud: hosts that share a machine (namespaces in tests)
        // must never sweep each other's DHCP files.
        let host_dir = format!("host-{}", self.host);
        let state_dir =
            crate::network_state_dir(&setup.runtime_dir, &[cloud, &host_dir, "network"])
                .map_err(|e| format!("cannot make {}: {e}", setup.runtime_dir.display()))?;
        let remote = RemoteNetwork::new(self.client.clone(), &self.host);
        Reconciler::new(remote, setup.config.clone(), state_dir, owner).map_err(|e| e.to_string())
    }

    /// Carries out the work on this host's servers after each change on the controller.
    async fn build_guests(&self, driver: Driver) -> Result<(), ControlError> {
        let remote = Arc::new(RemoteController::new(
            self.client.clone(),
            &self.host,
            self.work_dir.join("downloads"),
        ));
        let paths = AgentPaths {
            // A joined host plugs in no volumes (they are kept on the controller's host).
            volume_files: None,
            snapshots_dir: self.work_dir.join("snapshots"),
            shutdown_timeout: Duration::from_secs(self.compute.shutdown_timeout_seconds),
        };
        let agent = ComputeAgent::new(remote.clone(), driver, paths);
        let done = agent.done();
        let wait = Duration::from_secs(self.compute.sync_seconds.clamp(1, 30));
        // What the controller said last: its change count and its count of console asks.
        let mut seen = (0, 0);
        let mut passed_at = None::<tokio::time::Instant>;
        let mut pass_due = true;
        loop {
            if pass_due || passed_at.is_none_or(|t| t.elapsed() >= wait) {
                match agent.pass().await {
                    Err(Error::Control(error)) if error.is_credential_refused() => {
                        return Err(error);
                    }
                    Err(error) => tracing::warn!(%error, "compute pass failed; retrying"),
                    Ok(()) => {}
                }
                passed_at = Some(tokio::time::Instant::now());
            }
            pass_due = false;
            tokio::select! {
                changed = remote.wait_for_change(seen, wait) => match changed {
                    Ok(changes) => {
                        // A console ask alone needs no pass.
                        pass_due = changes.generation != seen.0;
                        seen = (changes.generation, changes.asks);
                        for server_id in changes.consoles {
                            tokio::spawn(send_console(remote.clone(), agent.driver(), server_id));
                        }
                    }
                    Err(error) if error.is_credential_refused() => return Err(error),
                    // The report loop says when the controller cannot be reached.
                    Err(_) => tokio::time::sleep(wait).await,
                },
                _ = done.notified() => pass_due = true,
            }
        }
    }

    /// Reports this host alive with what it measured, every `report_interval`.
    async fn report(&self, driver: &str) -> Result<(), ControlError> {
        let interval = Duration::from_secs(self.compute.report_interval.max(1));
        let mut reachable = true;
        let mut plugs_ports = self.plugs_ports.subscribe();
        loop {
            let plugs = *plugs_ports.borrow_and_update();
            let measured = measure_report(
                &self.compute,
                self.instances_dir.clone(),
                driver,
                &self.local_ip,
                plugs,
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
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = plugs_ports.changed() => {}
            }
        }
    }
}

/// Sends the end of a guest's serial log to the controller, which asked for it.
async fn send_console(remote: Arc<RemoteController>, driver: Arc<Driver>, server_id: String) {
    let log = driver
        .console_output(&server_id, None)
        .await
        .unwrap_or_default();
    if let Err(error) = remote.send_console(&server_id, log).await {
        tracing::warn!(%error, server = %server_id, "cannot send the console log");
    }
}
