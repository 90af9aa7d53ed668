//! Over 600 lines on purpose: the whole QEMU driver behind `Driver`; its pure parts (argv,
//! QMP, disks, config drive) are already modules of their own.
//!
//! The QEMU driver: one daemonized QEMU per guest, found again through its pidfile and
//! driven over its QMP socket, so guests outlive the process that started them.
//!
//! Everything about a guest lives in its instance dir (see [`Layout`]): the spec, the disks,
//! the pidfile and sockets, the serial log, QEMU's own log and a suspended guest's state.
//! Operations on one guest are serialized in this process (QEMU serves one QMP client at a
//! time); different guests proceed in parallel.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::OwnedMutexGuard;

mod live;

pub use live::{LiveMigrationStats, MigrationChannel};

use crate::accel::Accel;
use crate::cmdline::{self, Host, Start};
use crate::configdrive;
use crate::disks::{self, GIB, MIB};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::qmp::Qmp;
use crate::spec::{GuestSpec, PowerState, RootDisk, VolumeDisk};
use crate::validate;

/// How long a QMP command may take to answer.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `qemu -daemonize` may take to report that the guest is set up.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long saving or restoring a guest's memory may take.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(600);
/// How long QEMU gets to exit after QMP `quit`, and after SIGKILL.
const QUIT_WAIT: Duration = Duration::from_secs(3);
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);
/// The serial log is moved aside to `console.log.0` at start when larger than this.
const CONSOLE_ROTATE_BYTES: u64 = 4 * MIB;
/// `console_output` reads at most this much of the end of the log.
const CONSOLE_READ_BYTES: u64 = MIB;

/// Where and how the QEMU driver works.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// One directory per guest, named by its uuid.
    pub instances_dir: PathBuf,
    /// The per-host image cache (`<base_dir>/<image id>-<checksum prefix>`).
    pub base_dir: PathBuf,
    pub accel: Accel,
    /// `qemu-system-x86_64`, or a path to it.
    pub qemu_binary: String,
    /// The default for a graceful shutdown before a hard stop (Nova's `shutdown_timeout`).
    pub shutdown_timeout: Duration,
}

impl QemuConfig {
    /// `<data_dir>/instances` and `<data_dir>/base`, `qemu-system-x86_64`, 60 s.
    pub fn under(data_dir: &Path, accel: Accel) -> Self {
        Self {
            instances_dir: data_dir.join("instances"),
            base_dir: data_dir.join("base"),
            accel,
            qemu_binary: "qemu-system-x86_64".into(),
            shutdown_timeout: Duration::from_secs(60),
        }
    }
}

/// The QEMU driver. Cheap to share behind an `Arc`; all state is on disk.
pub struct Qemu {
    config: QemuConfig,
    vhost_net: bool,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Qemu {
    /// Makes the instance and base directories if needed.
    pub fn new(config: QemuConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.instances_dir)?;
        std::fs::create_dir_all(&config.base_dir)?;
        let vhost_net = config.accel == Accel::Kvm && Path::new("/dev/vhost-net").exists();
        Ok(Self {
            config,
            vhost_net,
            locks: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &QemuConfig {
        &self.config
    }

    fn layout(&self, uuid: &str) -> Result<Layout> {
        Layout::new(&self.config.instances_dir, uuid)
    }

    fn host(&self) -> Host {
        Host {
            accel: self.config.accel,
            vhost_net: self.vhost_net,
        }
    }

    /// Serializes operations on one guest.
    async fn lock(&self, uuid: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(uuid.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn forget_lock(&self, uuid: &str) {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid);
    }

    async fn qmp(&self, layout: &Layout) -> Result<Qmp> {
        Qmp::connect(&layout.qmp(), QMP_TIMEOUT).await
    }

    // ---- images and disks ----

    pub async fn cache_image(
        &self,
        key: &str,
        source: &Path,
        disk_format: &str,
        max_virtual: Option<u64>,
    ) -> Result<(PathBuf, String)> {
        disks::cache_image(&self.config.base_dir, key, source, disk_format, max_virtual).await
    }

    pub async fn create(&self, spec: &GuestSpec) -> Result<()> {
        let layout = self.layout(&spec.uuid)?;
        check_spec(spec, &layout, self.host())?;
        let _guard = self.lock(&spec.uuid).await;
        tokio::fs::create_dir_all(&layout.dir)
            .await
            .map_err(|e| Error::io(&layout.dir, e))?;
        if !exists(&layout.root()).await? {
            make_root(&layout, &spec.root, spec.root_gb).await?;
        }
        ensure_extra_disks(&layout, spec).await?;
        if let Some(base) = &spec.rescue
            && !exists(&layout.rescue()).await?
        {
            make_rescue(&layout, base).await?;
        }
        save_spec(&layout, spec).await
    }

    pub async fn write_config_drive(
        &self,
        uuid: &str,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        let layout = self.layout(uuid)?;
        if !exists(&layout.dir).await? {
            return Err(Error::NotFound(uuid.into()));
        }
        configdrive::build(files, &layout.config_drive()).await
    }

    pub async fn spec(&self, uuid: &str) -> Result<Option<GuestSpec>> {
        load_spec(&self.layout(uuid)?).await
    }

    pub async fn update_spec(&self, spec: &GuestSpec) -> Result<()> {
        let layout = self.layout(&spec.uuid)?;
        check_spec(spec, &layout, self.host())?;
        let _guard = self.lock(&spec.uuid).await;
        let old = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(spec.uuid.clone()))?;
        self.require_off(&layout, &spec.uuid, "update_spec").await?;
        if old.root != spec.root {
            return Err(Error::invalid(
                "root",
                "changing the root disk is a rebuild (rebuild_root)",
            ));
        }
        // A root volume's size is the block storage service's (os-extend).
        if spec.root_gb > 0 && spec.root.volume().is_none() {
            disks::grow(&layout.root(), spec.root_gb * GIB).await?;
        }
        ensure_extra_disks(&layout, spec).await?;
        if spec.rescue != old.rescue {
            remove_if_exists(&layout.rescue()).await?;
        }
        if let Some(base) = &spec.rescue
            && !exists(&layout.rescue()).await?
        {
            make_rescue(&layout, base).await?;
        }
        save_spec(&layout, spec).await
    }

    pub async fn rebuild_root(&self, uuid: &str, root: RootDisk, root_gb: u64) -> Result<()> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        let mut spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        self.require_off(&layout, uuid, "rebuild_root").await?;
        if spec.root.volume().is_some() || root.volume().is_some() {
            return Err(Error::invalid(
                "root",
                "a root volume is rebuilt by the block storage service, not in the instance dir",
            ));
        }
        spec.root = root;
        spec.root_gb = root_gb;
        check_spec(&spec, &layout, self.host())?;
        // The new disk is made under a temp name by make_root and renamed over the old one.
        make_root(&layout, &spec.root, spec.root_gb).await?;
        save_spec(&layout, &spec).await
    }

    /// Refuses unless no QEMU runs and no saved state waits (a saved state belongs to the
    /// disks and sizes it was taken with).
    async fn require_off(&self, layout: &Layout, uuid: &str, op: &'static str) -> Result<()> {
        let state = off_state(layout, uuid).await?;
        if state == PowerState::Shutdown {
            Ok(())
        } else {
            Err(Error::WrongState {
                uuid: uuid.into(),
                op,
                state,
                needs: "shut down",
            })
        }
    }

    // ---- volumes ----

    /// Hot-plugs the volume into a running (or paused) guest, or records it for the next
    /// start of a stopped one. Idempotent: a disk already plugged stays as it is.
    pub async fn attach_volume(&self, uuid: &str, volume: &VolumeDisk) -> Result<()> {
        let layout = self.layout(uuid)?;
        let node = cmdline::volume_blockdev(volume)?;
        let device = cmdline::volume_device(volume)?;
        let _guard = self.lock(uuid).await;
        let mut spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        if running_pid(&layout, uuid).is_some() {
            let id = volume.qemu_id();
            let mut qmp = self.qmp(&layout).await?;
            if !qmp.peripherals().await?.contains(&id) {
                // A node left by an earlier attempt that failed half-way goes first.
                let _ = qmp.execute("blockdev-del", Some(node_name(&id))).await;
                qmp.execute("blockdev-add", Some(node)).await?;
                if let Err(error) = qmp.execute("device_add", Some(device)).await {
                    let _ = qmp.execute("blockdev-del", Some(node_name(&id))).await;
                    return Err(error);
                }
            }
        } else {
            // A suspended guest's saved state belongs to the disks it was taken with.
            self.require_off(&layout, uuid, "attach_volume").await?;
        }
        spec.volumes.retain(|v| v.volume_id != volume.volume_id);
        spec.volumes.push(volume.clone());
        save_spec(&layout, &spec).await
    }

    /// Unplugs the volume from a running guest (`device_del`, then waits up to `timeout`
    /// for the guest to let go: `DEVICE_DELETED`), or forgets it for a stopped one.
    /// Idempotent.
    pub async fn detach_volume(
        &self,
        uuid: &str,
        volume_id: &str,
        timeout: Duration,
    ) -> Result<()> {
        let layout = self.layout(uuid)?;
        validate::uuid(volume_id)?;
        let id = VolumeDisk::qemu_id_of(volume_id);
        let _guard = self.lock(uuid).await;
        let mut spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        if running_pid(&layout, uuid).is_some() {
            let mut qmp = self.qmp(&layout).await?;
            if qmp.peripherals().await?.contains(&id) {
                qmp.execute("device_del", Some(serde_json::json!({"id": id})))
                    .await?;
                let gone = |data: &serde_json::Value| {
                    data.get("device").and_then(|d| d.as_str()) == Some(id.as_str())
                };
                qmp.wait_event("DEVICE_DELETED", gone, timeout)
                    .await
                    .map_err(|_| {
                        Error::Timeout(format!(
                            "{}s for the guest to release volume {volume_id}: its OS must be running and handle PCI hot-unplug (ACPI); try again, or stop the server first",
                            timeout.as_secs()
                        ))
                    })?;
            }
            // Nodes added with blockdev-add outlive their device.
            let _ = qmp.execute("blockdev-del", Some(node_name(&id))).await;
        } else {
            self.require_off(&layout, uuid, "detach_volume").await?;
        }
        spec.volumes.retain(|v| v.volume_id != volume_id);
        save_spec(&layout, &spec).await
    }

    /// Grows an attached volume (or a root volume) to `bytes`: a running or paused guest's
    /// QEMU resizes it (QMP `block_resize`, and the guest sees the new capacity), a
    /// stopped guest's file is grown. Idempotent.
    pub async fn resize_volume(&self, uuid: &str, volume_id: &str, bytes: u64) -> Result<()> {
        let layout = self.layout(uuid)?;
        validate::uuid(volume_id)?;
        let _guard = self.lock(uuid).await;
        let spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        let disk = spec.volume(volume_id)?;
        if running_pid(&layout, uuid).is_some() {
            let mut resize = node_name(&disk.qemu_id());
            resize["size"] = bytes.into();
            self.qmp(&layout)
                .await?
                .execute("block_resize", Some(resize))
                .await?;
            Ok(())
        } else {
            // A suspended guest's saved state belongs to the disk sizes it was taken with.
            self.require_off(&layout, uuid, "resize_volume").await?;
            disks::grow(&disk.path, bytes).await.map(drop)
        }
    }

    /// Copies an attached (or root) volume's data, as it is at this moment, into a
    /// standalone qcow2 at `dest`: under a running or paused guest by a QMP `blockdev-backup`
    /// job (copy-before-write keeps the point in time while the guest goes on writing), from
    /// the file of a stopped one. Idempotent: a `dest` that exists is kept.
    pub async fn snapshot_volume(&self, uuid: &str, volume_id: &str, dest: &Path) -> Result<()> {
        let layout = self.layout(uuid)?;
        validate::uuid(volume_id)?;
        validate::path(dest)?;
        let _guard = self.lock(uuid).await;
        if exists(dest).await? {
            return Ok(());
        }
        let spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        let disk = spec.volume(volume_id)?;
        if running_pid(&layout, uuid).is_none() {
            self.require_off(&layout, uuid, "snapshot_volume").await?;
            return disks::convert_to_qcow2(&disk.path, "qcow2", dest).await;
        }
        let size = disks::info(&disk.path, Some("qcow2")).await?.virtual_size;
        let tmp = disks::temp_beside(dest);
        disks::create_blank(&tmp, size).await?;
        let mut qmp = self.qmp(&layout).await?;
        let copied = backup_job(&mut qmp, &disk.qemu_id(), &tmp).await;
        let placed = match copied {
            Ok(()) => tokio::fs::rename(&tmp, dest)
                .await
                .map_err(|e| Error::io(dest, e)),
            Err(e) => Err(e),
        };
        if placed.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        placed
    }

    // ---- power ----

    /// Starts the guest. Starting a guest whose QEMU already runs is a no-op (`Ok`), whatever
    /// its state (running or paused): the reconciler may call it on every pass.
    pub async fn start(&self, uuid: &str) -> Result<()> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        let spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        if spec.uuid != uuid {
            return Err(Error::invalid("spec.json uuid", spec.uuid));
        }
        if running_pid(&layout, uuid).is_some() {
            return Ok(());
        }
        let root = root_path(&spec, &layout);
        if !exists(&root).await? {
            return Err(Error::invalid(
                "root disk (missing; create first)",
                root.to_string_lossy(),
            ));
        }
        if spec.config_drive && !exists(&layout.config_drive()).await? {
            return Err(Error::invalid(
                "config drive (not written yet)",
                layout.config_drive().to_string_lossy(),
            ));
        }
        ensure_extra_disks(&layout, &spec).await?;
        if let Some(base) = &spec.rescue
            && !exists(&layout.rescue()).await?
        {
            make_rescue(&layout, base).await?;
        }
        let state = layout.state();
        let incoming = exists(&state).await?.then_some(state);
        let started = Instant::now();
        let begin = match incoming.as_deref() {
            Some(state) => Start::Restore(state),
            None => Start::Boot,
        };
        let pid = self.launch(&layout, &spec, begin).await?;
        let result = self
            .finish_start(&layout, uuid, pid, incoming.as_deref())
            .await;
        if let Err(e) = &result {
            tracing::warn!(uuid, "start failed after launch, stopping QEMU: {e}");
            let _ = hard_stop(&layout, uuid, pid).await;
        } else {
            tracing::info!(
                uuid,
                pid,
                restored = incoming.is_some(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "guest started"
            );
        }
        result
    }

    /// Runs `qemu -daemonize` and returns the guest's pid once the parent reports success.
    async fn launch(&self, layout: &Layout, spec: &GuestSpec, start: Start<'_>) -> Result<i32> {
        let uuid = spec.uuid.as_str();
        for stale in [layout.pidfile(), layout.qmp(), layout.vnc()] {
            remove_if_exists(&stale).await?;
        }
        rotate_console(layout).await?;
        let argv = cmdline::build(spec, layout, self.host(), start)?;
        let log_path = layout.log();
        let (log, offset) = open_log(&log_path, &self.config.qemu_binary, &argv)?;
        let stderr = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
        let mut child = tokio::process::Command::new(&self.config.qemu_binary)
            .args(&argv)
            .current_dir(&layout.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: self.config.qemu_binary.clone(),
                source,
            })?;
        let status = match tokio::time::timeout(LAUNCH_TIMEOUT, child.wait()).await {
            Ok(status) => status.map_err(|e| Error::io(&log_path, e))?,
            Err(_) => {
                let _ = child.kill().await;
                if let Some(pid) = running_pid(layout, uuid) {
                    let _ = hard_stop(layout, uuid, pid).await;
                }
                return Err(Error::Timeout(format!(
                    "waiting for QEMU of {uuid} to start"
                )));
            }
        };
        if !status.success() {
            return Err(Error::Start {
                uuid: uuid.into(),
                log: log_tail(&log_path, offset).await,
            });
        }
        running_pid(layout, uuid).ok_or_else(|| Error::Start {
            uuid: uuid.into(),
            log: format!(
                "no QEMU process after start; {}",
                log_tail_blocking(&log_path, offset)
            ),
        })
    }

    /// After launch: waits for a restore to finish, resumes, and checks the guest runs.
    async fn finish_start(
        &self,
        layout: &Layout,
        uuid: &str,
        pid: i32,
        incoming: Option<&Path>,
    ) -> Result<()> {
        let mut qmp = self.qmp(layout).await?;
        if let Some(state) = incoming {
            let deadline = Instant::now() + MIGRATION_TIMEOUT;
            loop {
                if !process_is_guest(pid, uuid) {
                    return Err(Error::Start {
                        uuid: uuid.into(),
                        log: format!("QEMU exited while restoring {}", state.display()),
                    });
                }
                let status = qmp.query_status().await?;
                if status.status != "inmigrate" {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Timeout(format!("restoring {}", state.display())));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        let status = qmp.query_status().await?;
        if !status.running {
            qmp.cont().await?;
        }
        if let Some(state) = incoming {
            remove_if_exists(state).await?;
        }
        let status = qmp.query_status().await?;
        if status.running {
            Ok(())
        } else {
            Err(Error::Start {
                uuid: uuid.into(),
                log: format!("guest is {} after start", status.status),
            })
        }
    }

    pub async fn power_state(&self, uuid: &str) -> Result<PowerState> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        if !exists(&layout.dir).await? {
            return Ok(PowerState::NoState);
        }
        if let Some(pid) = running_pid(&layout, uuid) {
            let status = match self.qmp(&layout).await {
                Ok(mut qmp) => qmp.query_status().await,
                Err(e) => Err(e),
            };
            // The sync pass asks every guest's state every few seconds: the place that sees
            // each running guest regularly, so its serial log is kept bounded here.
            if let Err(e) = bound_console(&layout.console()).await {
                tracing::warn!(uuid, "cannot bound the serial log: {e}");
            }
            match status {
                Ok(status) => return Ok(state_from_status(&status.status)),
                Err(e) if process_is_guest(pid, uuid) => {
                    tracing::warn!(uuid, "QEMU runs but QMP does not answer: {e}");
                    return Ok(PowerState::Running);
                }
                Err(_) => {} // it exited meanwhile
            }
        }
        off_state(&layout, uuid).await
    }

    pub async fn shutdown(&self, uuid: &str, timeout: Duration) -> Result<bool> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        if !exists(&layout.dir).await? {
            return Err(Error::NotFound(uuid.into()));
        }
        let Some(pid) = running_pid(&layout, uuid) else {
            return Ok(true);
        };
        // A paused guest cannot see the power button: stop it hard at once.
        let mut pressed = false;
        if let Ok(mut qmp) = self.qmp(&layout).await
            && qmp.query_status().await.is_ok_and(|s| s.running)
        {
            pressed = qmp.system_powerdown().await.is_ok();
        }
        if pressed && wait_gone(pid, uuid, timeout).await {
            cleanup_runtime(&layout).await;
            return Ok(true);
        }
        hard_stop(&layout, uuid, pid).await?;
        Ok(false)
    }

    pub async fn destroy(&self, uuid: &str) -> Result<()> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        if let Some(pid) = running_pid(&layout, uuid) {
            hard_stop(&layout, uuid, pid).await?;
        }
        Ok(())
    }

    /// Runs `op` on the guest's QMP session; the guest's QEMU must be running.
    async fn with_running<T>(
        &self,
        uuid: &str,
        op: &'static str,
        f: impl AsyncFnOnce(&mut Qmp) -> Result<T>,
    ) -> Result<T> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        if !exists(&layout.dir).await? {
            return Err(Error::NotFound(uuid.into()));
        }
        if running_pid(&layout, uuid).is_none() {
            return Err(Error::WrongState {
                uuid: uuid.into(),
                op,
                state: off_state(&layout, uuid).await?,
                needs: "running or paused",
            });
        }
        let mut qmp = self.qmp(&layout).await?;
        f(&mut qmp).await
    }

    pub async fn pause(&self, uuid: &str) -> Result<()> {
        self.with_running(uuid, "pause", async |qmp| qmp.stop().await)
            .await
    }

    pub async fn unpause(&self, uuid: &str) -> Result<()> {
        self.with_running(uuid, "unpause", async |qmp| qmp.cont().await)
            .await
    }

    pub async fn reset(&self, uuid: &str) -> Result<()> {
        self.with_running(uuid, "reset", async |qmp| qmp.system_reset().await)
            .await
    }

    /// Saves the guest's memory to `state.save` and ends its QEMU. The stream goes over a unix
    /// socket this driver serves (`migrate.sock`) rather than `exec:cat > FILE`: QEMU's exec
    /// channel sends the command SIGTERM as soon as it closes the pipe, which can cut off the
    /// file's tail.
    pub async fn suspend(&self, uuid: &str) -> Result<()> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        if !exists(&layout.dir).await? {
            return Err(Error::NotFound(uuid.into()));
        }
        let Some(pid) = running_pid(&layout, uuid) else {
            return Err(Error::WrongState {
                uuid: uuid.into(),
                op: "suspend",
                state: off_state(&layout, uuid).await?,
                needs: "running or paused",
            });
        };
        let mut qmp = self.qmp(&layout).await?;
        let was_running = qmp.query_status().await?.running;
        qmp.stop().await?;
        let saved = save_state(&layout, &mut qmp).await;
        if let Err(e) = saved {
            remove_if_exists(&layout.state_tmp()).await?;
            if was_running {
                let _ = qmp.cont().await;
            }
            return Err(e);
        }
        let _ = qmp.quit().await;
        drop(qmp);
        if !wait_gone(pid, uuid, QUIT_WAIT).await {
            hard_stop(&layout, uuid, pid).await?;
        }
        cleanup_runtime(&layout).await;
        Ok(())
    }

    // ---- reading ----

    pub async fn console_output(&self, uuid: &str, max_lines: Option<usize>) -> Result<String> {
        let layout = self.layout(uuid)?;
        if !exists(&layout.dir).await? {
            return Err(Error::NotFound(uuid.into()));
        }
        let path = layout.console();
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let len = file
            .metadata()
            .await
            .map_err(|e| Error::io(&path, e))?
            .len();
        let start = len.saturating_sub(CONSOLE_READ_BYTES);
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| Error::io(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .await
            .map_err(|e| Error::io(&path, e))?;
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if start > 0 {
            // Drop the partial first line.
            text = text
                .split_once('\n')
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_default();
        }
        Ok(match max_lines {
            Some(n) => last_lines(&text, n),
            None => text,
        })
    }

    /// Flattens the root disk to a qcow2 at `dest`; the guest must be paused or off.
    pub async fn snapshot(&self, uuid: &str, dest: &Path) -> Result<()> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        if !exists(&layout.dir).await? {
            return Err(Error::NotFound(uuid.into()));
        }
        if running_pid(&layout, uuid).is_some() {
            let status = self.qmp(&layout).await?.query_status().await?;
            if status.running {
                return Err(Error::WrongState {
                    uuid: uuid.into(),
                    op: "snapshot",
                    state: PowerState::Running,
                    needs: "paused or shut down",
                });
            }
        }
        let spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        disks::convert_to_qcow2(&root_path(&spec, &layout), "qcow2", dest).await
    }

    pub async fn delete(&self, uuid: &str) -> Result<()> {
        let layout = self.layout(uuid)?;
        {
            let _guard = self.lock(uuid).await;
            if let Some(pid) = running_pid(&layout, uuid) {
                hard_stop(&layout, uuid, pid).await?;
            }
            match tokio::fs::remove_dir_all(&layout.dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&layout.dir, e)),
            }
        }
        self.forget_lock(uuid);
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<String>> {
        let dir = &self.config.instances_dir;
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(|e| Error::io(dir, e))?;
        let mut out = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(dir, e))? {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
            if is_dir && validate::uuid(&name).is_ok() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn vnc_socket(&self, uuid: &str) -> Option<PathBuf> {
        self.layout(uuid).ok().map(|l| l.vnc())
    }

    pub fn instance_dir(&self, uuid: &str) -> Option<PathBuf> {
        self.layout(uuid).ok().map(|l| l.dir)
    }
}

/// Checks everything in a spec that will reach a path or QEMU's command line, before any
/// file is made.
fn check_spec(spec: &GuestSpec, layout: &Layout, host: Host) -> Result<()> {
    cmdline::build(spec, layout, host, Start::Boot)?;
    if let RootDisk::Image { base, .. } | RootDisk::Migrated { disk: base } = &spec.root {
        validate::path(base)?;
    }
    if let Some(base) = &spec.rescue {
        validate::path(base)?;
    }
    Ok(())
}

// ---- disks of an instance ----

async fn exists(path: &Path) -> Result<bool> {
    tokio::fs::try_exists(path)
        .await
        .map_err(|e| Error::io(path, e))
}

async fn remove_if_exists(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// (Re)makes the root disk: an overlay on the base, grown to `root_gb` when that is larger
/// than the base, or a blank disk of `root_gb`.
async fn make_root(layout: &Layout, root: &RootDisk, root_gb: u64) -> Result<()> {
    match root {
        RootDisk::Image { base, format } => {
            let virtual_size = disks::info(base, Some(format)).await?.virtual_size;
            let wanted = root_gb * GIB;
            let size = (wanted > virtual_size).then_some(wanted);
            disks::create_overlay(base, format, &layout.root(), size).await
        }
        RootDisk::Blank if root_gb == 0 => Err(Error::invalid(
            "root_gb",
            "a blank root disk needs root_gb > 0",
        )),
        RootDisk::Blank => disks::create_blank(&layout.root(), root_gb * GIB).await,
        // The volume backend made it; nothing of it lives in the instance dir.
        RootDisk::Volume(_) => Ok(()),
        RootDisk::Migrated { disk } => {
            let max_virtual = (root_gb > 0).then_some(root_gb * GIB);
            disks::check_image(disk, "qcow2", max_virtual).await?;
            let root = layout.root();
            if tokio::fs::rename(disk, &root).await.is_err() {
                // Another file system: copied, then the original goes.
                tokio::fs::copy(disk, &root)
                    .await
                    .map_err(|e| Error::io(&root, e))?;
                remove_if_exists(disk).await?;
            }
            Ok(())
        }
    }
}

/// The file the guest boots from: the instance dir's `disk`, or its root volume's file.
fn root_path(spec: &GuestSpec, layout: &Layout) -> PathBuf {
    match spec.root.volume() {
        Some(volume) => volume.path.clone(),
        None => layout.root(),
    }
}

/// Makes or grows the ephemeral and swap disks the spec asks for.
async fn ensure_extra_disks(layout: &Layout, spec: &GuestSpec) -> Result<()> {
    if spec.ephemeral_gb > 0 {
        disks::ensure_blank(&layout.ephemeral(), spec.ephemeral_gb * GIB).await?;
    }
    if spec.swap_mb > 0 {
        disks::ensure_blank(&layout.swap(), spec.swap_mb * MIB).await?;
    }
    Ok(())
}

async fn make_rescue(layout: &Layout, base: &Path) -> Result<()> {
    let format = disks::probe_base(base).await?;
    disks::create_overlay(base, &format, &layout.rescue(), None).await
}

// ---- the spec file ----

/// How long a `blockdev-backup` of a volume may take (it copies at disk speed).
const BACKUP_JOB_WAIT: Duration = Duration::from_secs(3600);

/// Runs a full `blockdev-backup` of node `source` into the blank qcow2 `target` and waits for
/// it; the target node is removed again, whatever happened.
async fn backup_job(qmp: &mut Qmp, source: &str, target: &Path) -> Result<()> {
    // Node names have at most 31 characters; a volume's is 24.
    let job = format!("copy-{source}");
    let target_node = format!("snap-{source}");
    let filename = validate::path(target)?;
    qmp.execute(
        "blockdev-add",
        Some(serde_json::json!({
            "driver": "qcow2",
            "node-name": target_node,
            "file": {"driver": "file", "filename": filename},
        })),
    )
    .await?;
    let started = qmp
        .execute(
            "blockdev-backup",
            Some(serde_json::json!({
                "job-id": job,
                "device": source,
                "target": target_node,
                "sync": "full",
            })),
        )
        .await;
    let finished = match started {
        Ok(_) => {
            let ours = |data: &serde_json::Value| {
                data.get("device").and_then(|d| d.as_str()) == Some(job.as_str())
            };
            match qmp
                .wait_event("BLOCK_JOB_COMPLETED", ours, BACKUP_JOB_WAIT)
                .await
            {
                Ok(event) => match event.data.get("error").and_then(|e| e.as_str()) {
                    None => Ok(()),
                    Some(error) => Err(Error::Protocol(format!("copying {source}: {error}"))),
                },
                Err(e) => {
                    let _ = qmp
                        .execute("block-job-cancel", Some(serde_json::json!({"device": job})))
                        .await;
                    Err(e)
                }
            }
        }
        Err(e) => Err(e),
    };
    let _ = qmp
        .execute("blockdev-del", Some(node_name(&target_node)))
        .await;
    finished
}

fn node_name(id: &str) -> serde_json::Value {
    serde_json::json!({ "node-name": id })
}

async fn load_spec(layout: &Layout) -> Result<Option<GuestSpec>> {
    let path = layout.spec();
    match tokio::fs::read(&path).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

async fn save_spec(layout: &Layout, spec: &GuestSpec) -> Result<()> {
    let path = layout.spec();
    let tmp = disks::temp_beside(&path);
    let bytes = serde_json::to_vec_pretty(spec).map_err(|e| {
        Error::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| Error::io(&tmp, e))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| Error::io(&path, e))
}

// ---- processes ----

/// The pid in the pidfile, if that process is alive and is this guest's QEMU (its command
/// line carries the uuid, so a recycled pid is not mistaken for it).
fn running_pid(layout: &Layout, uuid: &str) -> Option<i32> {
    let text = std::fs::read_to_string(layout.pidfile()).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 1 && process_is_guest(pid, uuid)).then_some(pid)
}

fn process_is_guest(pid: i32, uuid: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if !cmdline.split(|b| *b == 0).any(|arg| arg == uuid.as_bytes()) {
        return false; // another program, or a zombie (empty command line)
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Waits up to `timeout` for the process to be gone.
async fn wait_gone(pid: i32, uuid: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !process_is_guest(pid, uuid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// QMP `quit`, then SIGKILL if QEMU is still there.
async fn hard_stop(layout: &Layout, uuid: &str, pid: i32) -> Result<()> {
    if let Ok(Ok(mut qmp)) = tokio::time::timeout(
        Duration::from_secs(2),
        Qmp::connect(&layout.qmp(), Duration::from_secs(2)),
    )
    .await
    {
        let _ = qmp.quit().await;
    }
    if !wait_gone(pid, uuid, QUIT_WAIT).await {
        tracing::warn!(uuid, pid, "QEMU did not quit; killing it");
        if process_is_guest(pid, uuid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if !wait_gone(pid, uuid, KILL_WAIT).await {
            return Err(Error::Timeout(format!(
                "waiting for QEMU {pid} of {uuid} to die"
            )));
        }
    }
    cleanup_runtime(layout).await;
    Ok(())
}

/// Removes what a QEMU leaves behind (it unlinks its pidfile itself when it exits cleanly).
async fn cleanup_runtime(layout: &Layout) {
    for path in [layout.pidfile(), layout.qmp(), layout.vnc()] {
        let _ = remove_if_exists(&path).await;
    }
}

/// The state of a guest without a QEMU process.
async fn off_state(layout: &Layout, uuid: &str) -> Result<PowerState> {
    if !exists(&layout.dir).await? {
        return Ok(PowerState::NoState);
    }
    if running_pid(layout, uuid).is_some() {
        return Ok(PowerState::Running); // not off at all; callers only use this to refuse
    }
    Ok(if exists(&layout.state()).await? {
        PowerState::Suspended
    } else {
        PowerState::Shutdown
    })
}

/// Maps QMP `query-status` to a power state.
fn state_from_status(status: &str) -> PowerState {
    match status {
        "running" => PowerState::Running,
        "shutdown" => PowerState::Shutdown,
        "guest-panicked" | "internal-error" => PowerState::Crashed,
        // paused, suspended (ACPI S3), inmigrate, postmigrate, prelaunch, finish-migrate,
        // save-vm, restore-vm, io-error, watchdog, debug, colo
        _ => PowerState::Paused,
    }
}

// ---- suspend ----

/// Streams the (stopped) guest's state over `migrate.sock` into `state.save`.
async fn save_state(layout: &Layout, qmp: &mut Qmp) -> Result<()> {
    let socket = layout.dir.join("migrate.sock");
    let socket_text = validate::path(&socket)?.to_owned();
    remove_if_exists(&socket).await?;
    let listener = tokio::net::UnixListener::bind(&socket).map_err(|e| Error::io(&socket, e))?;
    let tmp = layout.state_tmp();
    let receiver = {
        let tmp = tmp.clone();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.map_err(|e| Error::io(&tmp, e))?;
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| Error::io(&tmp, e))?;
            let bytes = tokio::io::copy(&mut stream, &mut file)
                .await
                .map_err(|e| Error::io(&tmp, e))?;
            file.sync_all().await.map_err(|e| Error::io(&tmp, e))?;
            Ok::<u64, Error>(bytes)
        })
    };
    let result = async {
        // No bandwidth cap: nothing runs while the guest is stopped.
        qmp.set_migration_bandwidth(1 << 40).await?;
        qmp.migrate(&format!("unix:{socket_text}")).await?;
        let deadline = Instant::now() + MIGRATION_TIMEOUT;
        loop {
            let info = qmp.query_migrate().await?;
            match info.status.as_deref() {
                Some("completed") => break,
                Some(status @ ("failed" | "cancelled")) => {
                    return Err(Error::Qmp {
                        command: "migrate".into(),
                        class: status.into(),
                        desc: info.error_desc.unwrap_or_default(),
                    });
                }
                _ => {}
            }
            if Instant::now() > deadline {
                let _ = qmp.execute("migrate_cancel", None).await;
                return Err(Error::Timeout("saving the guest's state".into()));
            }
            tokio::time::sleep(POLL).await;
        }
        match tokio::time::timeout(QMP_TIMEOUT, receiver).await {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(e)) => Err(Error::io(&tmp, std::io::Error::other(e))),
            Err(_) => Err(Error::Timeout("writing the guest's state".into())),
        }
    }
    .await;
    let _ = remove_if_exists(&socket).await;
    let bytes = result?;
    tokio::fs::rename(&tmp, layout.state())
        .await
        .map_err(|e| Error::io(layout.state(), e))?;
    tracing::info!(dir = %layout.dir.display(), bytes, "guest state saved");
    Ok(())
}

// ---- logs ----

/// Opens `qemu.log` for appending, writes the command line, and returns it with the offset
/// where this start's output begins.
fn open_log(path: &Path, program: &str, argv: &[String]) -> Result<(std::fs::File, u64)> {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let offset = log.metadata().map_err(|e| Error::io(path, e))?.len();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    writeln!(
        log,
        "--- {now} onestack starts: {program} {}",
        argv.join(" ")
    )
    .map_err(|e| Error::io(path, e))?;
    Ok((log, offset))
}

async fn log_tail(path: &Path, offset: u64) -> String {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || log_tail_blocking(&path, offset))
        .await
        .unwrap_or_default()
}

/// The last lines QEMU wrote to its log since `offset` (without our own command-line line).
fn log_tail_blocking(path: &Path, offset: u64) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return "(no qemu.log)".into();
    };
    let from = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[from..]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("--- ")).collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.trim().is_empty() {
        "(QEMU wrote nothing to qemu.log)".into()
    } else {
        tail
    }
}

/// Keeps a running guest's serial log bounded: past [`CONSOLE_ROTATE_BYTES`] only its last
/// [`CONSOLE_READ_BYTES`] stay. QEMU writes it with `append=on` (O_APPEND), so truncating in
/// place is safe: its next write lands at the new end, not at its old offset (no hole).
async fn bound_console(path: &Path) -> Result<()> {
    let io = |e| Error::io(path, e);
    let mut file = match tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .await
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().await.map_err(io)?.len();
    if len <= CONSOLE_ROTATE_BYTES {
        return Ok(());
    }
    file.seek(std::io::SeekFrom::Start(len - CONSOLE_READ_BYTES))
        .await
        .map_err(io)?;
    let mut tail = Vec::with_capacity(CONSOLE_READ_BYTES as usize);
    (&mut file)
        .take(CONSOLE_READ_BYTES)
        .read_to_end(&mut tail)
        .await
        .map_err(io)?;
    file.set_len(0).await.map_err(io)?;
    file.seek(std::io::SeekFrom::Start(0)).await.map_err(io)?;
    file.write_all(&tail).await.map_err(io)?;
    // tokio finishes a write in the background unless told to wait for it.
    file.flush().await.map_err(io)?;
    Ok(())
}

async fn rotate_console(layout: &Layout) -> Result<()> {
    let console = layout.console();
    if let Ok(meta) = tokio::fs::metadata(&console).await
        && meta.len() > CONSOLE_ROTATE_BYTES
    {
        let old = console.with_extension("log.0");
        tokio::fs::rename(&console, &old)
            .await
            .map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines[lines.len().saturating_sub(n)..].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_growing_serial_log_keeps_only_its_tail() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("console.log");
        // QEMU's side: one append-mode handle that stays open throughout.
        let mut qemu = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open");
        let line = [b'x'; 1023];
        for _ in 0..(5 * 1024) {
            qemu.write_all(&line)
                .and_then(|()| qemu.write_all(b"\n"))
                .expect("write");
        }
        qemu.write_all(b"the last line\n").expect("write");
        bound_console(&path).await.expect("bound");
        let len = std::fs::metadata(&path).expect("meta").len();
        assert_eq!(len, CONSOLE_READ_BYTES);
        qemu.write_all(b"after the trim\n").expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with("the last line\nafter the trim\n"));
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), len + 15);
        // Small logs are left alone.
        bound_console(&path).await.expect("bound");
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), len + 15);
        bound_console(&dir.path().join("missing"))
            .await
            .expect("no log");
    }

    #[test]
    fn statuses() {
        assert_eq!(state_from_status("running"), PowerState::Running);
        assert_eq!(state_from_status("paused"), PowerState::Paused);
        assert_eq!(state_from_status("postmigrate"), PowerState::Paused);
        assert_eq!(state_from_status("guest-panicked"), PowerState::Crashed);
        assert_eq!(state_from_status("shutdown"), PowerState::Shutdown);
    }

    #[test]
    fn tails() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a\n", 5), "a\n");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn own_process_is_not_a_guest() {
        let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        assert!(!process_is_guest(
            pid,
            "0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f9"
        ));
        assert!(!process_is_guest(
            i32::MAX,
            "0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f9"
        ));
    }
}
