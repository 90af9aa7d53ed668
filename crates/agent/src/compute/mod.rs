//! Reconciles the guests of this host with the servers placed on it: carries out each
//! server's task (spawn, stop, reboot, pause, suspend, rescue, resize, rebuild, snapshot,
//! delete) and plugs its volumes in and out through the hypervisor driver, one piece of
//! work per server at a time, and keeps `power_state` true (a guest that shut itself down
//! becomes SHUTOFF).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onestack_compute::model::{Server, VolumeAttachState};
use onestack_compute::states::{PowerState, TaskState, VmState};
use onestack_db::now_micros;
use onestack_virt::{Driver, PowerState as GuestPower, VolumeFiles};
use tokio::sync::Notify;

pub mod controller;
pub(crate) mod images;
pub mod inventory;
mod volumes;
mod worker;

use controller::Controller;
use worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Virt(#[from] onestack_virt::Error),
    #[error("{0}")]
    Compute(#[from] onestack_compute::error::Error),
    #[error("{0}")]
    Volume(#[from] onestack_volume::error::Error),
    #[error("{0}")]
    Control(#[from] crate::control::client::ControlError),
    #[error("image {id}: {message}")]
    Image { id: String, message: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a spawn waits for the network agent to make a port's tap device.
const TAP_WAIT: Duration = Duration::from_secs(30);

/// Where the agent keeps things on this host, and how long a guest gets to shut down.
pub struct AgentPaths {
    /// This host's volume files (plugged into guests by path); `None` on a joined host,
    /// which plugs in no volumes.
    pub volume_files: Option<VolumeFiles>,
    /// Where snapshots are written before they are uploaded.
    pub snapshots_dir: PathBuf,
    pub shutdown_timeout: Duration,
}

/// What a server needs done on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Task(TaskState),
    /// Volumes to plug in or out.
    Volumes,
}

pub struct ComputeAgent<C> {
    controller: Arc<C>,
    driver: Arc<Driver>,
    /// Where this host's volume files are (plugged into guests by path).
    volume_files: Option<VolumeFiles>,
    /// Where snapshots are written before they are uploaded.
    snapshots_dir: PathBuf,
    /// Servers with a task being carried out right now.
    busy: Arc<Mutex<HashSet<String>>>,
    /// Signalled when a task ends, so the next pass runs at once.
    done: Arc<Notify>,
    shutdown_timeout: Duration,
}

impl<C: Controller> ComputeAgent<C> {
    pub fn new(controller: Arc<C>, driver: Driver, paths: AgentPaths) -> Self {
        Self {
            controller,
            driver: Arc::new(driver),
            volume_files: paths.volume_files,
            snapshots_dir: paths.snapshots_dir,
            busy: Arc::new(Mutex::new(HashSet::new())),
            done: Arc::new(Notify::new()),
            shutdown_timeout: paths.shutdown_timeout,
        }
    }

    pub fn driver(&self) -> Arc<Driver> {
        self.driver.clone()
    }

    pub fn done(&self) -> Arc<Notify> {
        self.done.clone()
    }

    /// One pass: starts the work each server on this host needs and syncs power states.
    pub async fn pass(&self) -> Result<()> {
        let servers = self.controller.servers().await?;
        let host = self.controller.host();
        let mut known = HashSet::new();
        for record in servers {
            let server = record.server;
            known.insert(server.id.clone());
            if self.is_busy(&server.id) {
                continue;
            }
            let work = work_for(&server, host);
            // A server migrating to or from here that is not placed here: its guest (the
            // copy a revert restarts) is kept as it is, with no power sync; the only work
            // is a live migration's new host's.
            let placed_here = server.host.as_deref() == Some(host);
            match work {
                Some(work) => self.start_work(server, work),
                None if placed_here && server.task_state != Some(TaskState::Migrating) => {
                    self.sync_power(server, record.revision).await;
                }
                None => {}
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

    fn start_work(&self, server: Server, work: Work) {
        if let Ok(mut busy) = self.busy.lock() {
            busy.insert(server.id.clone());
        }
        let worker = Worker {
            controller: self.controller.clone(),
            driver: self.driver.clone(),
            volume_files: self.volume_files.clone(),
            snapshots_dir: self.snapshots_dir.clone(),
            shutdown_timeout: self.shutdown_timeout,
        };
        let busy = self.busy.clone();
        let done = self.done.clone();
        tokio::spawn(async move {
            let id = server.id.clone();
            // The pass read its list before earlier tasks ended: only the record as it is
            // now says whether this work is still wanted (never run a task twice).
            let host = worker.controller.host();
            let current = match worker.controller.server(&id).await {
                Ok(Some(record)) if work_for(&record.server, host) == Some(work) => {
                    Some(record.server)
                }
                _ => None,
            };
            let Some(server) = current else {
                if let Ok(mut b) = busy.lock() {
                    b.remove(&id);
                }
                return;
            };
            let started = now_micros();
            let action = worker.controller.latest_action(&id).await;
            let event = event_name(&server, work, host);
            let ok = match work {
                Work::Task(task) => {
                    tracing::info!(server = %id, %task, "compute task");
                    let outcome = worker.run(server, task).await;
                    if let Err(error) = &outcome {
                        tracing::warn!(server = %id, %task, %error, "compute task failed");
                        worker.fail(&id, task, &error.to_string()).await;
                    }
                    outcome.is_ok()
                }
                Work::Volumes => match worker.plug_volumes(&server).await {
                    Ok(ok) => ok,
                    Err(error) => {
                        tracing::warn!(server = %id, %error, "cannot settle the server's volumes; retrying");
                        false
                    }
                },
            };
            if work != Work::Task(TaskState::Deleting)
                && let Some(action) = &action
                && let Some(event) = event
            {
                worker
                    .controller
                    .record_event(&id, action, event, started, ok)
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
        if changed && let Err(error) = self.controller.finish(server, revision).await {
            tracing::warn!(%error, "cannot record power state");
        }
    }
}

/// The work a server needs carried out on `host`, if any: its task first, then its volumes.
/// A live migration is work for its new host until that listens, then for its old host.
fn work_for(server: &Server, host: &str) -> Option<Work> {
    if server.task_state == Some(TaskState::Migrating) {
        let migration = server.migration.as_ref()?;
        let listening = migration.live.as_ref()?.ports.is_some();
        let ours = if listening {
            migration.source == host && server.host.as_deref() == Some(host)
        } else {
            migration.dest == host
        };
        return ours.then_some(Work::Task(TaskState::Migrating));
    }
    if server.host.as_deref() != Some(host) {
        return None;
    }
    if let Some(task) = task_for(server) {
        return Some(Work::Task(task));
    }
    let unsettled = server
        .volumes
        .iter()
        .any(|v| v.state != VolumeAttachState::Attached || v.has_host_work());
    // A server that failed to boot keeps its volumes reserved until it is deleted (its
    // delete gives them back, or deletes the ones made for it).
    let settles = !matches!(server.vm_state, VmState::Building | VmState::Error);
    (server.task_state.is_none() && settles && unsettled).then_some(Work::Volumes)
}

/// The task a server needs carried out here, if any.
fn task_for(server: &Server) -> Option<TaskState> {
    use TaskState as T;
    match (server.vm_state, server.task_state) {
        (_, Some(T::Deleting)) => Some(T::Deleting),
        (VmState::Building, _) => Some(T::Spawning),
        (_, None) => None,
        (_, Some(task)) => match task {
            // Spawning is the work of a building server; scheduling is the API's; a live
            // migration's host is chosen by `work_for`.
            T::Scheduling | T::Spawning | T::Migrating => None,
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
            | T::ResizeMigrating
            | T::ResizeFinish
            | T::ResizeReverting
            | T::Rebuilding
            | T::ImageSnapshot => Some(task),
        },
    }
}

/// Nova's event names in instance actions (`None`: the work is recorded as none), for work
/// on `host`.
fn event_name(server: &Server, work: Work, host: &str) -> Option<&'static str> {
    use TaskState as T;
    let work = match work {
        Work::Task(task) => task,
        Work::Volumes
            if server
                .volumes
                .iter()
                .any(|v| v.state == VolumeAttachState::Attaching) =>
        {
            return Some("compute_attach_volume");
        }
        Work::Volumes
            if server
                .volumes
                .iter()
                .any(|v| v.state == VolumeAttachState::Detaching) =>
        {
            return Some("compute_detach_volume");
        }
        Work::Volumes if server.volumes.iter().any(|v| v.grow_to_gb.is_some()) => {
            return Some("compute_extend_volume");
        }
        // A copy for the block storage service's snapshot is no action on the server.
        Work::Volumes => return None,
    };
    Some(match work {
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
        T::ResizePrep | T::ResizeMigrating => "compute_resize_instance",
        T::ResizeFinish => "compute_finish_resize",
        T::ResizeReverting => "compute_revert_resize",
        T::Rebuilding => "compute_rebuild_instance",
        T::Migrating if server.host.as_deref() == Some(host) => "compute_live_migration",
        T::Migrating => "compute_pre_live_migration",
        T::Scheduling | T::Deleting => "compute_instance_task",
    })
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
