//! Carries out one server's task through the hypervisor driver and records the outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use onestack_compute::model::{FlavorCopy, Server, VolumeAttachState, VolumeAttachment};
use onestack_compute::states::{PowerState, TaskState, VmState};
use onestack_db::now_micros;
use onestack_netdrv::names;
use onestack_virt::{Driver, GuestSpec, Nic, PowerState as GuestPower, RootDisk, VolumeFiles};

use super::controller::Controller;
use super::{Error, Result, TAP_WAIT, nova_power};

mod live;

pub(super) struct Worker<C> {
    pub(super) controller: Arc<C>,
    pub(super) driver: Arc<Driver>,
    pub(super) volume_files: Option<VolumeFiles>,
    pub(super) snapshots_dir: PathBuf,
    pub(super) shutdown_timeout: Duration,
}

impl<C: Controller> Worker<C> {
    pub(super) async fn run(&self, server: Server, work: TaskState) -> Result<()> {
        let id = server.id.clone();
        let d = &self.driver;
        let (vm_state, power_state): (VmState, PowerState) = match work {
            TaskState::Spawning => {
                let attached = self.spawn(&server).await?;
                return self
                    .complete(&id, work, move |s| {
                        s.vm_state = VmState::Active;
                        s.power_state = PowerState::Running;
                        s.fault = None;
                        s.launched_at = Some(now_micros());
                        s.progress = 100;
                        for v in &mut s.volumes {
                            if let Some(a) = attached.iter().find(|a| a.volume_id == v.volume_id) {
                                v.attachment_id.clone_from(&a.attachment_id);
                                v.state = VolumeAttachState::Attached;
                            }
                        }
                    })
                    .await;
            }
            TaskState::Deleting => {
                d.delete(&id).await?;
                if let Some(image) = &server.pending_image {
                    // A snapshot that never ran leaves no queued image behind.
                    self.controller.discard_image(image).await;
                }
                self.controller.purge(&server).await?;
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
                self.rescue(&server, true).await?;
                (VmState::Rescued, PowerState::Running)
            }
            TaskState::Unrescuing => {
                self.rescue(&server, false).await?;
                (VmState::Active, PowerState::Running)
            }
            TaskState::ResizePrep => return self.resize(&server, false).await,
            TaskState::ResizeMigrating => return self.migrate_out(&server).await,
            TaskState::ResizeFinish => return self.migrate_in(&server).await,
            TaskState::ResizeReverting => return self.resize(&server, true).await,
            TaskState::Migrating => return self.live_migrate(&server).await,
            TaskState::Rebuilding => return self.rebuild(&server).await,
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
        self.complete(&id, work, move |s| {
            s.vm_state = vm_state;
            s.power_state = power_state;
            s.fault = None;
        })
        .await
    }

    /// Restarts the guest from the rescue image (`on`), or from its own disk again.
    async fn rescue(&self, server: &Server, on: bool) -> Result<()> {
        let id = &server.id;
        let d = &self.driver;
        let (rescue, stable) = if on {
            let image = server
                .pending_image
                .clone()
                .unwrap_or_else(|| server.image_id.clone());
            let (base, _format, _) = self.cached_image(&image, Some(server.flavor.disk)).await?;
            let stable = match self.controller.image(&image).await {
                Ok(facts) => facts.stable_rescue,
                Err(_) => false,
            };
            (Some(base), stable)
        } else {
            (None, false)
        };
        d.destroy(id).await?;
        let mut spec = self.saved_spec(id).await?;
        spec.rescue = rescue;
        spec.stable_rescue = stable;
        d.update_spec(&spec).await?;
        d.start(id).await?;
        Ok(())
    }

    /// Refits the guest to its new flavor (`ResizePrep`), or back to its old one (`revert`),
    /// and records the outcome.
    async fn resize(&self, server: &Server, revert: bool) -> Result<()> {
        let id = &server.id;
        let was = server.previous_vm_state.unwrap_or(VmState::Active);
        if !revert {
            let power_state = self
                .refit(id, &server.flavor, was == VmState::Active)
                .await?;
            return self
                .complete(id, TaskState::ResizePrep, |s| {
                    s.vm_state = VmState::Resized;
                    s.power_state = power_state;
                })
                .await;
        }
        let old = server
            .old_flavor
            .clone()
            .unwrap_or_else(|| server.flavor.clone());
        if server.migration.is_some() {
            // Its ports come back from the host it had moved to: their taps are made again.
            self.sync_nics(server).await?;
        }
        let power_state = self.refit(id, &old, was == VmState::Active).await?;
        self.complete(id, TaskState::ResizeReverting, move |s| {
            s.flavor = old.clone();
            s.old_flavor = None;
            s.vm_state = was;
            s.previous_vm_state = None;
            s.power_state = power_state;
            // A reverted migration ends here, on the host it had left.
            s.migration = None;
        })
        .await
    }

    /// A cold migration's first half, on the host the server leaves: stops the guest
    /// (kept, for a revert), copies its root disk into one standalone qcow2 and hands it to
    /// the controller, which places the server on its new host.
    async fn migrate_out(&self, server: &Server) -> Result<()> {
        let id = &server.id;
        // From the record, not the guest: a retry after a restart finds it stopped already.
        let was_running = server.previous_vm_state.unwrap_or(VmState::Active) == VmState::Active;
        self.driver.shutdown(id, self.shutdown_timeout).await?;
        let dir = &self.snapshots_dir;
        let disk = dir.join(format!("{id}.migrating.qcow2"));
        let outcome = async {
            self.scratch_dir().await?;
            self.driver.snapshot(id, &disk).await?;
            self.controller.hand_over(id, &disk).await
        }
        .await;
        let _ = tokio::fs::remove_file(&disk).await;
        if outcome.is_err() && was_running {
            // The server stays here, as it was, unless the controller placed it on the new
            // host all the same (its answer lost on the way): that host runs it now.
            let still_here = matches!(
                self.controller.server(id).await,
                Ok(Some(record)) if record.server.task_state == Some(TaskState::ResizeMigrating)
            );
            if still_here && let Err(error) = self.driver.start(id).await {
                tracing::warn!(server = %id, %error, "cannot restart a guest whose migration failed");
            }
        }
        outcome
    }

    /// A cold migration's second half, on the new host: builds the guest as a boot does,
    /// but from the disk the old host handed over, and leaves it running or stopped as it
    /// was, awaiting the confirm or revert.
    async fn migrate_in(&self, server: &Server) -> Result<()> {
        let id = &server.id;
        let was = server.previous_vm_state.unwrap_or(VmState::Active);
        if self.driver.spec(id).await?.is_some() {
            // A restart cut the last attempt short: start afresh from the disk.
            self.driver.delete(id).await?;
        }
        let disk = self
            .scratch_dir()
            .await?
            .join(format!("{id}.migrated.qcow2"));
        let outcome = async {
            let (cdrom, kernel, ramdisk) = self.boot_extras(server).await?;
            self.controller.migration_disk(id, &disk).await?;
            let root = RootDisk::Migrated { disk: disk.clone() };
            let spec = self
                .build_spec(server, root, cdrom, kernel, ramdisk)
                .await?;
            self.create_and_start(server, &spec).await
        }
        .await;
        let _ = tokio::fs::remove_file(&disk).await;
        outcome?;
        let running = was != VmState::Stopped;
        if !running {
            self.driver.shutdown(id, self.shutdown_timeout).await?;
        }
        self.complete(id, TaskState::ResizeFinish, move |s| {
            s.vm_state = VmState::Resized;
            s.power_state = if running {
                PowerState::Running
            } else {
                PowerState::Shutdown
            };
            s.fault = None;
        })
        .await
    }

    /// Replaces the root disk with a fresh one from the (new) image, and records the outcome.
    /// A root volume is left as it is (Nova before 2.93): the guest restarts on it.
    async fn rebuild(&self, server: &Server) -> Result<()> {
        let id = &server.id;
        let d = &self.driver;
        let was = server.previous_vm_state.unwrap_or(VmState::Active);
        // No guest here: the server was evacuated to this host (never one with volumes).
        if !server.volume_backed() && d.spec(id).await?.is_none() {
            return self.evacuated(server, was).await;
        }
        if server.volume_backed() {
            d.destroy(id).await?;
        } else {
            let image = server
                .pending_image
                .clone()
                .unwrap_or_else(|| server.image_id.clone());
            let (base, format, iso) = self.cached_image(&image, Some(server.flavor.disk)).await?;
            d.destroy(id).await?;
            let root = if iso {
                RootDisk::Blank
            } else {
                RootDisk::Image { base, format }
            };
            d.rebuild_root(id, root, server.flavor.disk).await?;
        }
        self.refresh_config_drive(server).await?;
        let running = was != VmState::Stopped;
        if running {
            d.start(id).await?;
        }
        self.complete(id, TaskState::Rebuilding, move |s| {
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
        .await
    }

    /// A rebuild of a guest this host never had: the server was evacuated here from a host
    /// that is down (servers with volumes are not: those stay with their host). It is built
    /// afresh from its image, and left running or stopped as it was.
    async fn evacuated(&self, server: &Server, was: VmState) -> Result<()> {
        let id = &server.id;
        self.spawn(server).await?;
        let running = was != VmState::Stopped;
        if !running {
            self.driver.shutdown(id, self.shutdown_timeout).await?;
        }
        self.complete(id, TaskState::Rebuilding, move |s| {
            (s.vm_state, s.power_state) = if running {
                (VmState::Active, PowerState::Running)
            } else {
                (VmState::Stopped, PowerState::Shutdown)
            };
            s.previous_vm_state = None;
            s.pending_image = None;
            s.fault = None;
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
            let Some(record) = self.controller.server(id).await? else {
                return Ok(());
            };
            let mut server = record.server;
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
            if self.controller.finish(server, record.revision).await? {
                return Ok(());
            }
        }
        Err(Error::Other(format!(
            "server {id} kept changing; will retry"
        )))
    }

    /// Puts a failed server into ERROR with the reason as its fault (a failed non-build
    /// task leaves the server as it was, with the task cleared).
    pub(super) async fn fail(&self, id: &str, work: TaskState, message: &str) {
        if work == TaskState::Migrating {
            // The live migration's own steps said so (`live_migrate`), naming their migration.
            return;
        }
        let building = work == TaskState::Spawning;
        let details = message.to_owned();
        let outcome = self
            .complete(id, work, move |s| {
                if building || matches!(work, TaskState::Rebuilding | TaskState::ResizeFinish) {
                    s.vm_state = VmState::Error;
                }
                if work == TaskState::ResizeMigrating {
                    // The server stays where it was.
                    s.migration = None;
                    s.old_flavor = None;
                    s.previous_vm_state = None;
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

    /// Where disks are written on their way to or from the controller (snapshots and
    /// migrating disks), made if missing.
    async fn scratch_dir(&self) -> Result<&std::path::Path> {
        let dir = &self.snapshots_dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::Other(format!("cannot create {}: {e}", dir.display())))?;
        Ok(dir)
    }

    async fn saved_spec(&self, id: &str) -> Result<GuestSpec> {
        self.driver
            .spec(id)
            .await?
            .ok_or_else(|| Error::Other(format!("guest {id} has no saved spec on this host")))
    }

    /// Makes and starts the guest; returns the volumes it was made with (reserved and
    /// plugged in).
    async fn spawn(&self, server: &Server) -> Result<Vec<VolumeAttachment>> {
        let mut volumes = self.boot_volumes(server).await?;
        let root_volume = volumes
            .iter()
            .position(|(a, _)| a.is_root())
            .map(|i| volumes.remove(i));
        let (root, cdrom, kernel, ramdisk) = match &root_volume {
            Some((_, disk)) => (RootDisk::Volume(disk.clone()), None, None, None),
            None => self.image_boot(server).await?,
        };
        let mut spec = self
            .build_spec(server, root, cdrom, kernel, ramdisk)
            .await?;
        spec.volumes = volumes.iter().map(|(_, disk)| disk.clone()).collect();
        self.create_and_start(server, &spec).await?;
        let attached: Vec<VolumeAttachment> = root_volume
            .into_iter()
            .chain(volumes)
            .map(|(attachment, _)| attachment)
            .collect();
        if let Some(computes) = self.controller.in_process() {
            for a in &attached {
                computes
                    .volumes
                    .attached(&a.volume_id, &a.attachment_id, &computes.host)
                    .await?;
            }
        }
        Ok(attached)
    }

    /// What a guest of an image boots from: its root disk made on the cached image (blank
    /// for an ISO, which becomes its CD-ROM), and the kernel and ramdisk the image names
    /// (OpenStack's AKI/ARI convention: booted directly).
    async fn image_boot(
        &self,
        server: &Server,
    ) -> Result<(RootDisk, Option<PathBuf>, Option<PathBuf>, Option<PathBuf>)> {
        let (base, format, iso) = self
            .cached_image(&server.image_id, Some(server.flavor.disk))
            .await?;
        let (kernel, ramdisk) = self.kernel_and_ramdisk(&server.image_id).await?;
        let root = if iso {
            RootDisk::Blank
        } else {
            RootDisk::Image {
                base: base.clone(),
                format,
            }
        };
        Ok((root, iso.then_some(base), kernel, ramdisk))
    }

    /// What a guest moved here boots from besides its disk: the ISO it was installed from,
    /// or the kernel and ramdisk its image names (an image deleted since names nothing).
    async fn boot_extras(
        &self,
        server: &Server,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>, Option<PathBuf>)> {
        if server.image_id.is_empty() {
            return Ok((None, None, None));
        }
        let Ok(facts) = self.controller.image(&server.image_id).await else {
            return Ok((None, None, None));
        };
        let cdrom = if facts.disk_format.as_deref() == Some("iso") {
            let (base, _, _) = self
                .cached_image(&server.image_id, Some(server.flavor.disk))
                .await?;
            Some(base)
        } else {
            None
        };
        let (kernel, ramdisk) = self.kernel_and_ramdisk(&server.image_id).await?;
        Ok((cdrom, kernel, ramdisk))
    }

    async fn create_and_start(&self, server: &Server, spec: &GuestSpec) -> Result<()> {
        self.driver.create(spec).await?;
        self.refresh_config_drive(server).await?;
        self.driver.start(&server.id).await?;
        Ok(())
    }

    /// The guest's spec: the server's flavor and ports (their taps waited for) on `root`.
    async fn build_spec(
        &self,
        server: &Server,
        root: RootDisk,
        cdrom: Option<PathBuf>,
        kernel: Option<PathBuf>,
        ramdisk: Option<PathBuf>,
    ) -> Result<GuestSpec> {
        let nics = self.plugged_nics(server).await?;
        Ok(GuestSpec {
            uuid: server.id.clone(),
            name: server.instance_name.clone(),
            vcpus: server.flavor.vcpus,
            memory_mb: server.flavor.ram,
            root,
            root_gb: server.flavor.disk,
            ephemeral_gb: server.flavor.ephemeral,
            swap_mb: server.flavor.swap,
            cdrom,
            cmdline: kernel
                .as_ref()
                .map(|_| "console=ttyS0 root=/dev/vda".to_owned()),
            kernel,
            ramdisk,
            nics,
            config_drive: server.config_drive,
            rescue: None,
            stable_rescue: false,
            volumes: Vec::new(),
        })
    }

    async fn kernel_and_ramdisk(
        &self,
        image_id: &str,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
        let image = self.controller.image(image_id).await?;
        let mut out = (None, None);
        if let Some(k) = &image.kernel_id {
            self.check_usable(k, &image.owner).await?;
            out.0 = Some(self.cached_image(k, None).await?.0);
        }
        if let Some(r) = &image.ramdisk_id {
            self.check_usable(r, &image.owner).await?;
            out.1 = Some(self.cached_image(r, None).await?.0);
        }
        Ok(out)
    }

    /// A kernel or ramdisk an image names must be public or its owner's: the property is the
    /// image owner's to set, and must not pull another project's private image into a guest.
    async fn check_usable(&self, id: &str, owner: &str) -> Result<()> {
        let image = self.controller.image(id).await?;
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
        let files = self.controller.config_drive(server).await?;
        self.driver.write_config_drive(&server.id, &files).await?;
        Ok(())
    }

    async fn snapshot(&self, server: &Server) -> Result<()> {
        let image_id = server
            .pending_image
            .clone()
            .ok_or_else(|| Error::Other("snapshot without an image to fill".into()))?;
        let dir = &self.snapshots_dir;
        let temp = dir.join(format!("{image_id}.qcow2"));
        let outcome = async {
            self.scratch_dir().await?;
            let running = self.driver.power_state(&server.id).await? == GuestPower::Running;
            if running {
                self.driver.pause(&server.id).await?;
            }
            let copied = self.driver.snapshot(&server.id, &temp).await;
            if running {
                self.driver.unpause(&server.id).await?;
            }
            copied?;
            self.controller.upload_snapshot(&image_id, &temp).await
        }
        .await;
        let _ = tokio::fs::remove_file(&temp).await;
        if outcome.is_err() {
            // Nova deletes the image of a failed snapshot rather than leave it queued.
            self.controller.discard_image(&image_id).await;
        }
        outcome
    }
}

fn apply_flavor(spec: &mut GuestSpec, flavor: &FlavorCopy) {
    spec.vcpus = flavor.vcpus;
    spec.memory_mb = flavor.ram;
    spec.root_gb = spec.root_gb.max(flavor.disk);
    spec.ephemeral_gb = flavor.ephemeral;
    spec.swap_mb = flavor.swap;
}
