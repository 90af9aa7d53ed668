//! Reconciles the guests of this host with the servers placed on it: carries out each
//! server's task (spawn, stop, reboot, pause, suspend, rescue, resize, rebuild, snapshot,
//! delete) through the hypervisor driver, one task per server at a time, and keeps
//! `power_state` true (a guest that shut itself down becomes SHUTOFF).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onestack_compute::Computes;
use onestack_compute::metadata;
use onestack_compute::model::{FlavorCopy, Host, Server};
use onestack_compute::states::{PowerState, TaskState, VmState};
use onestack_db::now_micros;
use onestack_netdrv::names;
use onestack_virt::{Driver, GuestSpec, Nic, PowerState as GuestPower, RootDisk};
use tokio::sync::Notify;

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

/// The host cache's name for an image's data: its id and the first 16 hex digits of its
/// sha512 (or md5), so that different bytes never share an entry.
fn cache_key(id: &str, sha512: Option<&str>, md5: Option<&str>) -> Option<String> {
    let digest = sha512
        .or(md5)
        .filter(|d| d.len() >= 16 && d.bytes().all(|b| b.is_ascii_hexdigit()))?;
    Some(format!("{id}-{}", &digest[..16]))
}

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
            updated_at: 0,
        };
        self.computes.register_host(host).await?;
        Ok(())
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

struct Worker {
    computes: Arc<Computes>,
    driver: Arc<Driver>,
    shutdown_timeout: Duration,
}

impl Worker {
    async fn run(&self, server: Server, work: TaskState) -> Result<()> {
        let id = server.id.clone();
        let d = &self.driver;
        let (vm_state, power_state): (VmState, PowerState) = match work {
            TaskState::Spawning => {
                self.spawn(&server).await?;
                (VmState::Active, PowerState::Running)
            }
            TaskState::Deleting => {
                d.delete(&id).await?;
                if let Some(image) = &server.pending_image {
                    // A snapshot that never ran leaves no queued image behind.
                    let _ = self.computes.images.discard(image).await;
                }
                self.computes.purge(&server).await?;
                return Ok(());
            }
            TaskState::PoweringOff => {
                d.shutdown(&id, self.shutdown_timeout).await?;
                (VmState::Stopped, PowerState::Shutdown)
            }
            TaskState::PoweringOn => {
                self.sync_nics(&server).await?;
                self.refresh_config_drive(&server).await?;
                d.start(&id).await?;
                (VmState::Active, PowerState::Running)
            }
            TaskState::Resuming => {
                d.start(&id).await?;
                (VmState::Active, PowerState::Running)
            }
            TaskState::Rebooting => {
                d.shutdown(&id, self.shutdown_timeout).await?;
                d.start(&id).await?;
                (VmState::Active, PowerState::Running)
            }
            TaskState::RebootingHard => {
                d.destroy(&id).await?;
                self.sync_nics(&server).await?;
                self.refresh_config_drive(&server).await?;
                d.start(&id).await?;
                (VmState::Active, PowerState::Running)
            }
            TaskState::Pausing => {
                d.pause(&id).await?;
                (VmState::Paused, PowerState::Paused)
            }
            TaskState::Unpausing => {
                d.unpause(&id).await?;
                (VmState::Active, PowerState::Running)
            }
            TaskState::Suspending => {
                d.suspend(&id).await?;
                (VmState::Suspended, PowerState::Suspended)
            }
            TaskState::Rescuing => {
                let image = server
                    .pending_image
                    .clone()
                    .unwrap_or_else(|| server.image_id.clone());
                let (base, _format, _) =
                    self.cached_image(&image, Some(server.flavor.disk)).await?;
                d.destroy(&id).await?;
                let mut spec = self.saved_spec(&id).await?;
                spec.rescue = Some(base);
                d.update_spec(&spec).await?;
                d.start(&id).await?;
                (VmState::Rescued, PowerState::Running)
            }
            TaskState::Unrescuing => {
                d.destroy(&id).await?;
                let mut spec = self.saved_spec(&id).await?;
                spec.rescue = None;
                d.update_spec(&spec).await?;
                d.start(&id).await?;
                (VmState::Active, PowerState::Running)
            }
            TaskState::ResizePrep => {
                let running =
                    server.previous_vm_state.unwrap_or(VmState::Active) == VmState::Active;
                let power_state = self.refit(&id, &server.flavor, running).await?;
                return self
                    .complete(&id, work, |s| {
                        s.vm_state = VmState::Resized;
                        s.power_state = power_state;
                    })
                    .await;
            }
            TaskState::ResizeReverting => {
                let was = server.previous_vm_state.unwrap_or(VmState::Active);
                let old = server
                    .old_flavor
                    .clone()
                    .unwrap_or_else(|| server.flavor.clone());
                let power_state = self.refit(&id, &old, was == VmState::Active).await?;
                return self
                    .complete(&id, work, move |s| {
                        s.flavor = old.clone();
                        s.old_flavor = None;
                        s.vm_state = was;
                        s.previous_vm_state = None;
                        s.power_state = power_state;
                    })
                    .await;
            }
            TaskState::Rebuilding => {
                let was = server.previous_vm_state.unwrap_or(VmState::Active);
                let image = server
                    .pending_image
                    .clone()
                    .unwrap_or_else(|| server.image_id.clone());
                let (base, format, iso) =
                    self.cached_image(&image, Some(server.flavor.disk)).await?;
                d.destroy(&id).await?;
                let root = if iso {
                    RootDisk::Blank
                } else {
                    RootDisk::Image { base, format }
                };
                d.rebuild_root(&id, root, server.flavor.disk).await?;
                self.refresh_config_drive(&server).await?;
                let running = was != VmState::Stopped;
                if running {
                    d.start(&id).await?;
                }
                return self
                    .complete(&id, work, move |s| {
                        s.vm_state = if running {
                            VmState::Active
                        } else {
                            VmState::Stopped
                        };
                        s.previous_vm_state = None;
                        s.pending_image = None;
                        s.power_state = if running {
                            PowerState::Running
                        } else {
                            PowerState::Shutdown
                        };
                    })
                    .await;
            }
            TaskState::ImageSnapshot => {
                self.snapshot(&server).await?;
                let state = d.power_state(&id).await?;
                return self
                    .complete(&id, work, move |s| {
                        s.pending_image = None;
                        s.power_state = nova_power(state);
                    })
                    .await;
            }
            TaskState::Scheduling => {
                return Err(Error::Other("scheduling is not work for a host".into()));
            }
        };
        let launched = work == TaskState::Spawning;
        self.complete(&id, work, move |s| {
            s.vm_state = vm_state;
            s.power_state = power_state;
            s.fault = None;
            if launched {
                s.launched_at = Some(now_micros());
                s.progress = 100;
            }
        })
        .await
    }

    /// Records a finished task: clears it and applies `change`, unless the server moved
    /// on meanwhile (deleted, or another task) — then the next pass sees the new intent.
    async fn complete(
        &self,
        id: &str,
        work: TaskState,
        change: impl Fn(&mut Server),
    ) -> Result<()> {
        for _ in 0..5 {
            let Some(record) = self.computes.server_record(id).await? else {
                return Ok(());
            };
            let mut server = record.doc;
            let still_ours = match work {
                TaskState::Spawning => {
                    server.vm_state == VmState::Building
                        && server.task_state != Some(TaskState::Deleting)
                }
                _ => server.task_state == Some(work),
            };
            if !still_ours {
                return Ok(());
            }
            change(&mut server);
            server.task_state = None;
            if self.computes.finish(server, record.revision).await? {
                return Ok(());
            }
        }
        Err(Error::Other(format!(
            "server {id} kept changing; will retry"
        )))
    }

    /// Puts a failed server into ERROR with the reason as its fault (a failed non-build
    /// task leaves the server as it was, with the task cleared).
    async fn fail(&self, id: &str, work: TaskState, message: &str) {
        let building = work == TaskState::Spawning;
        let details = message.to_owned();
        let outcome = self
            .complete(id, work, move |s| {
                if building || work == TaskState::Rebuilding {
                    s.vm_state = VmState::Error;
                }
                if work == TaskState::ResizePrep
                    && let Some(old) = s.old_flavor.take()
                {
                    // The guest kept its size: so does the record.
                    s.flavor = old;
                    s.previous_vm_state = None;
                }
                // Only admins see the details (host paths, QEMU's words).
                s.fault = Some(onestack_compute::model::Fault {
                    code: 500,
                    message: format!("Task {work} failed on the host; see the fault details (admin) or the host log."),
                    details: details.clone(),
                    created: now_micros(),
                });
            })
            .await;
        if let Err(error) = outcome {
            tracing::warn!(server = %id, %error, "cannot record a failed task");
        }
    }

    /// (cached base path, format, is ISO) for an image, copying it into the host cache
    /// once. The stored data is inspected again first (its header, as at upload, so that
    /// qemu-img never sees a file naming other files), then the driver checks the source and
    /// the cached file with `qemu-img info` pinned to their formats. A root disk's image
    /// must fit `disk_gb` (the flavor's disk; 0 is the image's own size). The cache key is
    /// the image id and the start of its sha512 (md5 for old images), so an image with
    /// other bytes never boots on a cached file that is not its own.
    async fn cached_image(
        &self,
        image_id: &str,
        disk_gb: Option<u64>,
    ) -> Result<(PathBuf, String, bool)> {
        let refused = |message: String| Error::Image {
            id: image_id.to_owned(),
            message,
        };
        let (image, path, virtual_size) = self
            .computes
            .images
            .open_checked(image_id)
            .await
            .map_err(|e| refused(e.to_string()))?;
        let format = image
            .disk_format
            .clone()
            .ok_or_else(|| refused("the image has no disk_format".into()))?;
        let key = cache_key(
            image_id,
            image.os_hash_value.as_deref(),
            image.checksum.as_deref(),
        )
        .ok_or_else(|| refused("the image has no checksum".into()))?;
        let max_virtual = disk_gb
            .filter(|gb| *gb > 0 && format != "iso")
            .map(|gb| gb.saturating_mul(1 << 30));
        if let Some(max) = max_virtual
            && u64::try_from(virtual_size).map_or(true, |size| size > max)
        {
            return Err(refused(format!(
                "its virtual size of {virtual_size} bytes is larger than the flavor's disk ({max} bytes)"
            )));
        }
        let (base, format_out) = self
            .driver
            .cache_image(&key, &path, &format, max_virtual)
            .await?;
        Ok((base, format_out, format == "iso"))
    }

    async fn saved_spec(&self, id: &str) -> Result<GuestSpec> {
        self.driver
            .spec(id)
            .await?
            .ok_or_else(|| Error::Other(format!("guest {id} has no saved spec on this host")))
    }

    async fn spawn(&self, server: &Server) -> Result<()> {
        let (base, format, iso) = self
            .cached_image(&server.image_id, Some(server.flavor.disk))
            .await?;
        // OpenStack's AKI/ARI convention: a kernel and a ramdisk image booted directly.
        let (kernel, ramdisk) = self.kernel_and_ramdisk(&server.image_id).await?;
        let nics = self.plugged_nics(server).await?;
        let root = if iso {
            RootDisk::Blank
        } else {
            RootDisk::Image {
                base: base.clone(),
                format,
            }
        };
        let spec = GuestSpec {
            uuid: server.id.clone(),
            name: server.instance_name.clone(),
            vcpus: server.flavor.vcpus,
            memory_mb: server.flavor.ram,
            root,
            root_gb: server.flavor.disk,
            ephemeral_gb: server.flavor.ephemeral,
            swap_mb: server.flavor.swap,
            cdrom: iso.then_some(base),
            cmdline: kernel
                .as_ref()
                .map(|_| "console=ttyS0 root=/dev/vda".to_owned()),
            kernel,
            ramdisk,
            nics,
            config_drive: server.config_drive,
            rescue: None,
        };
        self.driver.create(&spec).await?;
        self.refresh_config_drive(server).await?;
        self.driver.start(&server.id).await?;
        Ok(())
    }

    async fn kernel_and_ramdisk(
        &self,
        image_id: &str,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
        let (image, _) = self
            .computes
            .images
            .open_data(image_id)
            .await
            .map_err(|e| Error::Image {
                id: image_id.to_owned(),
                message: e.to_string(),
            })?;
        let prop = |k: &str| {
            image
                .properties
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let mut out = (None, None);
        if let Some(k) = prop("kernel_id") {
            self.check_usable(&k, &image.owner).await?;
            out.0 = Some(self.cached_image(&k, None).await?.0);
        }
        if let Some(r) = prop("ramdisk_id") {
            self.check_usable(&r, &image.owner).await?;
            out.1 = Some(self.cached_image(&r, None).await?.0);
        }
        Ok(out)
    }

    /// A kernel or ramdisk an image names must be public or its owner's: the property is the
    /// image owner's to set, and must not pull another project's private image into a guest.
    async fn check_usable(&self, id: &str, owner: &str) -> Result<()> {
        let (image, _) = self
            .computes
            .images
            .open_data(id)
            .await
            .map_err(|e| Error::Image {
                id: id.to_owned(),
                message: e.to_string(),
            })?;
        if image.owner == owner || matches!(image.visibility.as_str(), "public" | "community") {
            Ok(())
        } else {
            Err(Error::Image {
                id: id.to_owned(),
                message: "the image's kernel_id/ramdisk_id names an image of another project"
                    .into(),
            })
        }
    }

    /// The guest's NICs: the taps the network agent makes for its ports (waited for).
    async fn plugged_nics(&self, server: &Server) -> Result<Vec<Nic>> {
        let mut nics = Vec::new();
        for nic in &server.nics {
            let ifname = names::port(&nic.port_id);
            if matches!(*self.driver, Driver::Qemu(_)) {
                let deadline = tokio::time::Instant::now() + TAP_WAIT;
                while !std::path::Path::new("/sys/class/net")
                    .join(&ifname)
                    .exists()
                {
                    if tokio::time::Instant::now() > deadline {
                        return Err(Error::Other(format!(
                            "port {} has no tap device {ifname} on this host after {}s: is the network agent running (onestack as root)?",
                            nic.port_id,
                            TAP_WAIT.as_secs()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            nics.push(Nic {
                ifname,
                mac: nic.mac.clone(),
            });
        }
        Ok(nics)
    }

    /// Stops the guest, gives it `flavor` (disks only grow: qcow2 cannot shrink safely) and
    /// starts it again if it should run; returns the power state it is left in.
    async fn refit(&self, id: &str, flavor: &FlavorCopy, running: bool) -> Result<PowerState> {
        self.driver.shutdown(id, self.shutdown_timeout).await?;
        let mut spec = self.saved_spec(id).await?;
        apply_flavor(&mut spec, flavor);
        self.driver.update_spec(&spec).await?;
        if running {
            self.driver.start(id).await?;
            Ok(PowerState::Running)
        } else {
            Ok(PowerState::Shutdown)
        }
    }

    /// Brings the saved spec's NICs in line with the server's ports (interfaces attached or
    /// detached since it started); only while the guest is shut down.
    async fn sync_nics(&self, server: &Server) -> Result<()> {
        let mut spec = self.saved_spec(&server.id).await?;
        let nics = self.plugged_nics(server).await?;
        if spec.nics != nics {
            spec.nics = nics;
            self.driver.update_spec(&spec).await?;
        }
        Ok(())
    }

    async fn refresh_config_drive(&self, server: &Server) -> Result<()> {
        if !server.config_drive {
            return Ok(());
        }
        let net = metadata::networking(&self.computes.pool, server).await?;
        let files = metadata::config_drive(server, &net);
        self.driver.write_config_drive(&server.id, &files).await?;
        Ok(())
    }

    async fn snapshot(&self, server: &Server) -> Result<()> {
        let image_id = server
            .pending_image
            .clone()
            .ok_or_else(|| Error::Other("snapshot without an image to fill".into()))?;
        // Beside the instance dirs, not among them (those are all guests).
        let dir = self.computes.instances_dir.with_file_name("snapshots");
        let temp = dir.join(format!("{image_id}.qcow2"));
        let outcome = async {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| Error::Other(format!("cannot create {}: {e}", dir.display())))?;
            let running = self.driver.power_state(&server.id).await? == GuestPower::Running;
            if running {
                self.driver.pause(&server.id).await?;
            }
            let copied = self.driver.snapshot(&server.id, &temp).await;
            if running {
                self.driver.unpause(&server.id).await?;
            }
            copied?;
            self.computes
                .images
                .upload_from_file(&image_id, &temp)
                .await
                .map_err(|e| Error::Image {
                    id: image_id.clone(),
                    message: e.to_string(),
                })
        }
        .await;
        let _ = tokio::fs::remove_file(&temp).await;
        if outcome.is_err() {
            // Nova deletes the image of a failed snapshot rather than leave it queued.
            let _ = self.computes.images.discard(&image_id).await;
        }
        outcome.map(|_| ())
    }
}

fn apply_flavor(spec: &mut GuestSpec, flavor: &FlavorCopy) {
    spec.vcpus = flavor.vcpus;
    spec.memory_mb = flavor.ram;
    spec.root_gb = spec.root_gb.max(flavor.disk);
    spec.ephemeral_gb = flavor.ephemeral;
    spec.swap_mb = flavor.swap;
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
    let disk_gb = std::process::Command::new("df")
        .args(["-Pk"])
        .arg(existing_ancestor(dir))
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines()
                .nth(1)?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb / (1024 * 1024))
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

#[cfg(test)]
mod tests {
    use super::cache_key;

    #[test]
    fn the_image_cache_is_keyed_by_id_and_content() {
        let id = "5e1f0000-0000-4000-8000-000000000001";
        let old = cache_key(id, Some(&"ab".repeat(64)), Some(&"11".repeat(16)));
        let new = cache_key(id, Some(&"cd".repeat(64)), Some(&"11".repeat(16)));
        assert_eq!(old.as_deref(), Some(&*format!("{id}-abababababababab")));
        assert_ne!(old, new, "other bytes, another entry");
        // md5 for images without a sha512; nothing without either, or with a strange one.
        assert_eq!(
            cache_key(id, None, Some(&"12".repeat(16))),
            Some(format!("{id}-1212121212121212"))
        );
        assert_eq!(cache_key(id, None, None), None);
        assert_eq!(cache_key(id, Some("../../etc/passwd"), None), None);
    }
}
