//! Reconciles the guests of this host with the servers placed on it: carries out each
//! server's task (spawn, stop, reboot, pause, suspend, rescue, resize, rebuild, snapshot,
//! delete) through the hypervisor driver, one task per server at a time, and keeps
//! `power_state` true (a guest that shut itself down becomes SHUTOFF).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onestack_compute::Computes;
use onestack_compute::model::Server;
use onestack_compute::states::{PowerState, TaskState, VmState};
use onestack_db::now_micros;
use onestack_virt::{Driver, PowerState as GuestPower};
use tokio::sync::Notify;

mod images;
mod inventory;
mod worker;

use worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Virt(#[from] onestack_virt::Error),
    #[error("{0}")]
    Compute(#[from] onestack_compute::error::Error),
    #[error("image {id}: {message}")]
    Image { id: String, message: String },
    #[error("{0}")]
    Other(String),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a spawn waits for the network agent to make a port's tap device.
const TAP_WAIT: Duration = Duration::from_secs(30);

pub struct ComputeAgent {
    computes: Arc<Computes>,
    driver: Arc<Driver>,
    /// Servers with a task being carried out right now.
    busy: Arc<Mutex<HashSet<String>>>,
    /// Signalled when a task ends, so the next pass runs at once.
    done: Arc<Notify>,
    shutdown_timeout: Duration,
}

impl ComputeAgent {
    pub fn new(computes: Arc<Computes>, driver: Driver) -> Self {
        let shutdown_timeout = Duration::from_secs(computes.config.shutdown_timeout_seconds);
        Self {
            computes,
            driver: Arc::new(driver),
            busy: Arc::new(Mutex::new(HashSet::new())),
            done: Arc::new(Notify::new()),
            shutdown_timeout,
        }
    }

    pub fn done(&self) -> Arc<Notify> {
        self.done.clone()
    }

    /// One pass: starts the work each server on this host needs and syncs power states.
    pub async fn pass(&self) -> Result<()> {
        let servers = self.computes.servers_on_host(&self.computes.host).await?;
        let mut known = HashSet::new();
        for record in servers {
            let server = record.doc;
            known.insert(server.id.clone());
            if self.is_busy(&server.id) {
                continue;
            }
            match work_for(&server) {
                Some(work) => self.start_work(server, work),
                None => self.sync_power(server, record.revision).await,
            }
        }
        // Guests nobody asked for (their server was removed while we were away) go.
        for uuid in self.driver.list().await.unwrap_or_default() {
            if !known.contains(&uuid) && !self.is_busy(&uuid) {
                tracing::info!(%uuid, "removing a guest whose server no longer exists");
                if let Err(error) = self.driver.delete(&uuid).await {
                    tracing::warn!(%uuid, %error, "cannot remove orphaned guest");
                }
            }
        }
        Ok(())
    }

    fn is_busy(&self, id: &str) -> bool {
        self.busy.lock().map(|b| b.contains(id)).unwrap_or(true)
    }

    fn start_work(&self, server: Server, work: TaskState) {
        if let Ok(mut busy) = self.busy.lock() {
            busy.insert(server.id.clone());
        }
        let worker = Worker {
            computes: self.computes.clone(),
            driver: self.driver.clone(),
            shutdown_timeout: self.shutdown_timeout,
        };
        let busy = self.busy.clone();
        let done = self.done.clone();
        tokio::spawn(async move {
            let id = server.id.clone();
            // The pass read its list before earlier tasks ended: only the record as it is
            // now says whether this work is still wanted (never run a task twice).
            let current = match worker.computes.server_record(&id).await {
                Ok(Some(record)) if work_for(&record.doc) == Some(work) => Some(record.doc),
                _ => None,
            };
            let Some(server) = current else {
                if let Ok(mut b) = busy.lock() {
                    b.remove(&id);
                }
                return;
            };
            let started = now_micros();
            let action = worker.computes.latest_action(&id).await;
            tracing::info!(server = %id, %work, "compute task");
            let outcome = worker.run(server, work).await;
            let ok = outcome.is_ok();
            if let Err(error) = outcome {
                tracing::warn!(server = %id, %work, %error, "compute task failed");
                worker.fail(&id, work, &error.to_string()).await;
            }
            if work != TaskState::Deleting
                && let Some(action) = &action
            {
                worker
                    .computes
                    .record_event(&id, action, event_name(work), started, ok)
                    .await;
            }
            if let Ok(mut b) = busy.lock() {
                b.remove(&id);
            }
            done.notify_one();
        });
    }

    /// Brings `power_state` in line with the guest; a guest that shut itself down stops.
    async fn sync_power(&self, mut server: Server, revision: i64) {
        let Ok(state) = self.driver.power_state(&server.id).await else {
            return;
        };
        let code = nova_power(state);
        let mut changed = server.power_state != code;
        server.power_state = code;
        match (server.vm_state, state) {
            // Resized and rescued servers keep their state until the user moves them on.
            (VmState::Active, GuestPower::Shutdown | GuestPower::NoState | GuestPower::Crashed) => {
                tracing::info!(server = %server.id, "guest shut itself down; it is SHUTOFF now");
                server.vm_state = VmState::Stopped;
                server.power_state = PowerState::Shutdown;
                changed = true;
            }
            (VmState::Stopped, GuestPower::Running | GuestPower::Paused) => {
                // The database says stopped: a guest running anyway is stopped.
                let _ = self.driver.destroy(&server.id).await;
                server.power_state = PowerState::Shutdown;
            }
            _ => {}
        }
        if changed && let Err(error) = self.computes.finish(server, revision).await {
            tracing::warn!(%error, "cannot record power state");
        }
    }
}

/// The task a server needs carried out here, if any.
fn work_for(server: &Server) -> Option<TaskState> {
    use TaskState as T;
    match (server.vm_state, server.task_state) {
        (_, Some(T::Deleting)) => Some(T::Deleting),
        (VmState::Building, _) => Some(T::Spawning),
        (_, None) => None,
        (_, Some(task)) => match task {
            // Spawning is the work of a building server; scheduling is the API's.
            T::Scheduling | T::Spawning => None,
            T::Deleting
            | T::PoweringOff
            | T::PoweringOn
            | T::Rebooting
            | T::RebootingHard
            | T::Pausing
            | T::Unpausing
            | T::Suspending
            | T::Resuming
            | T::Rescuing
            | T::Unrescuing
            | T::ResizePrep
            | T::ResizeReverting
            | T::Rebuilding
            | T::ImageSnapshot => Some(task),
        },
    }
}

/// Nova's event names in instance actions.
fn event_name(work: TaskState) -> &'static str {
    use TaskState as T;
    match work {
        T::Spawning => "compute__do_build_and_run_instance",
        T::PoweringOff => "compute_stop_instance",
        T::PoweringOn => "compute_start_instance",
        T::Rebooting | T::RebootingHard => "compute_reboot_instance",
        T::Pausing => "compute_pause_instance",
        T::Unpausing => "compute_unpause_instance",
        T::Suspending => "compute_suspend_instance",
        T::Resuming => "compute_resume_instance",
        T::Rescuing => "compute_rescue_instance",
        T::Unrescuing => "compute_unrescue_instance",
        T::ImageSnapshot => "compute_snapshot_instance",
        T::ResizePrep => "compute_resize_instance",
        T::ResizeReverting => "compute_revert_resize",
        T::Rebuilding => "compute_rebuild_instance",
        T::Scheduling | T::Deleting => "compute_instance_task",
    }
}

/// Nova's power state for what the hypervisor reports.
fn nova_power(guest: GuestPower) -> PowerState {
    match guest {
        GuestPower::NoState => PowerState::NoState,
        GuestPower::Running => PowerState::Running,
        GuestPower::Paused => PowerState::Paused,
        GuestPower::Shutdown => PowerState::Shutdown,
        GuestPower::Crashed => PowerState::Crashed,
        GuestPower::Suspended => PowerState::Suspended,
    }
}
