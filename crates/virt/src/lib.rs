//! The hypervisor driver the per-host agent uses.
//!
//! [`Driver`] is either [`Qemu`] (real guests: one daemonized QEMU per guest, driven over
//! QMP, KVM when the host has hardware virtualization and TCG otherwise) or [`Fake`] (guests
//! in memory, for scale tests of the control plane). Both keep the same states and refuse
//! the same things.
//!
//! Guests outlive the process: everything about a guest is in its instance dir
//! (`<instances_dir>/<uuid>`: `spec.json`, the disks, `qemu.pid`, `qmp.sock`, `vnc.sock`,
//! `console.log`, `qemu.log`, `state.save` while suspended), so a new [`Driver`] on the same
//! directories re-adopts running guests.
//!
//! | module | job |
//! |---|---|
//! | `accel` | KVM or TCG from `/proc/cpuinfo` and `/dev/kvm` |
//! | `cmdline` | the QEMU argv for a spec (pure) |
//! | `qmp` | the QMP client |
//! | `disks` | `qemu-img`: base cache, overlays, blank disks, growing, flattening |
//! | `configdrive` | the `config-2` ISO via `genisoimage` |
//! | `qemu` | the QEMU driver |
//! | `fake` | the in-memory driver |
//! | `volumes` | the file volume backend: one qcow2 per volume |
//! | `backups` | the backup store seam and its file store: one qcow2 per backup, incremental ones on their parent |
//! | `spec`, `layout`, `validate` | the guest spec and power states, the instance dir's files, input checks |
#![allow(
    clippy::disallowed_methods,
    reason = "this crate starts QEMU and qemu-img for the agent"
)]

mod accel;
mod backups;
mod cmd;
pub mod cmdline;
mod configdrive;
mod disks;
mod error;
mod fake;
mod layout;
mod qemu;
pub mod qmp;
mod spec;
mod validate;
mod volumes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use accel::{Accel, AccelChoice, cpuinfo_has_virt, detect_accel};
pub use backups::{BackupStore, BoxFuture, FileBackups};
pub use disks::GIB;
pub use error::{Error, Result};
pub use fake::Fake;
pub use qemu::{LiveMigrationStats, MigrationChannel, Qemu, QemuConfig};
pub use spec::{GuestSpec, Nic, PowerState, RootDisk, VolumeDisk};
pub use volumes::VolumeFiles;

/// The driver the agent holds: real QEMU guests, or the in-memory fake.
pub enum Driver {
    Qemu(Qemu),
    Fake(Fake),
}

macro_rules! dispatch {
    ($self:ident, $d:ident => $call:expr) => {
        match $self {
            Driver::Qemu($d) => $call,
            Driver::Fake($d) => $call,
        }
    };
}

impl Driver {
    /// The QEMU driver; makes its directories if needed.
    pub fn qemu(config: QemuConfig) -> std::io::Result<Driver> {
        Qemu::new(config).map(Driver::Qemu)
    }

    pub fn fake() -> Driver {
        Driver::Fake(Fake::new())
    }

    /// `"qemu"` or `"fake"`.
    pub fn name(&self) -> &'static str {
        match self {
            Driver::Qemu(_) => "qemu",
            Driver::Fake(_) => "fake",
        }
    }

    /// The accelerator guests run with (none for the fake).
    pub fn accel(&self) -> Option<Accel> {
        match self {
            Driver::Qemu(q) => Some(q.config().accel),
            Driver::Fake(_) => None,
        }
    }

    /// How long a graceful shutdown should wait before a hard stop, by default.
    pub fn default_shutdown_timeout(&self) -> Duration {
        match self {
            Driver::Qemu(q) => q.config().shutdown_timeout,
            Driver::Fake(_) => Duration::ZERO,
        }
    }

    /// Caches an image file once per host under `base_dir/<key>` (hard link or copy, or
    /// `qemu-img convert -O qcow2` for formats other than raw/qcow2/iso); `key` names the
    /// content (image id and checksum). The source and the cached file are checked with
    /// `qemu-img info` pinned to their formats ([`disks::check_image`]: no backing or data
    /// file, no other file opened, at most `max_virtual` bytes); the caller must have checked
    /// the source's header first, so that qemu-img never opens another file. Returns the path
    /// and the format to use (`raw` for iso, aki, ari, ami). Concurrent calls for one key
    /// write to temp names and rename, so they never corrupt the cache.
    pub async fn cache_image(
        &self,
        key: &str,
        source: &Path,
        disk_format: &str,
        max_virtual: Option<u64>,
    ) -> Result<(PathBuf, String)> {
        dispatch!(self, d => d.cache_image(key, source, disk_format, max_virtual).await)
    }

    /// Makes the instance dir and its disks (root overlay or blank, ephemeral, swap, rescue)
    /// where they don't exist yet, and saves `spec.json`. Idempotent. Starts nothing.
    pub async fn create(&self, spec: &GuestSpec) -> Result<()> {
        dispatch!(self, d => d.create(spec).await)
    }

    /// (Re)writes `disk.config` from files: path inside the drive
    /// (`openstack/latest/meta_data.json`, `ec2/latest/meta-data.json`, ...) → contents.
    pub async fn write_config_drive(
        &self,
        uuid: &str,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        dispatch!(self, d => d.write_config_drive(uuid, files).await)
    }

    /// Starts the saved spec (restoring a suspended guest's state if there is one) and
    /// returns once QMP answers and the guest runs. A no-op when its QEMU already runs.
    pub async fn start(&self, uuid: &str) -> Result<()> {
        dispatch!(self, d => d.start(uuid).await)
    }

    /// Replaces the saved spec (resize: vcpus, memory, root_gb; rescue: set or clear
    /// `rescue`); grows disks that grew (never shrinks); only while shut down. The root disk's
    /// source cannot change here (that is [`Driver::rebuild_root`]).
    pub async fn update_spec(&self, spec: &GuestSpec) -> Result<()> {
        dispatch!(self, d => d.update_spec(spec).await)
    }

    pub async fn spec(&self, uuid: &str) -> Result<Option<GuestSpec>> {
        dispatch!(self, d => d.spec(uuid).await)
    }

    /// From the pidfile, the process (its command line carries the uuid), and QMP
    /// `query-status`; `NoState` for an unknown instance.
    pub async fn power_state(&self, uuid: &str) -> Result<PowerState> {
        dispatch!(self, d => d.power_state(uuid).await)
    }

    /// Presses the ACPI power button and waits up to `timeout` for QEMU to exit, then stops
    /// it hard. True if the guest shut down by itself (or was already off). A paused guest
    /// is stopped hard at once.
    pub async fn shutdown(&self, uuid: &str, timeout: Duration) -> Result<bool> {
        dispatch!(self, d => d.shutdown(uuid, timeout).await)
    }

    /// Hard stop (QMP `quit`, then SIGKILL). Idempotent; a suspended guest keeps its state.
    pub async fn destroy(&self, uuid: &str) -> Result<()> {
        dispatch!(self, d => d.destroy(uuid).await)
    }

    /// Attaches a volume: hot-plugged (QMP `blockdev-add` + `device_add` of a virtio disk)
    /// into a running or paused guest, and saved in the spec so every later start has it.
    /// Refused while suspended. Idempotent.
    pub async fn attach_volume(&self, uuid: &str, volume: &VolumeDisk) -> Result<()> {
        dispatch!(self, d => d.attach_volume(uuid, volume).await)
    }

    /// Detaches a volume: a running guest is asked to release it (`device_del`) and given
    /// `timeout` to do so before this fails; then it leaves the spec. Idempotent.
    pub async fn detach_volume(
        &self,
        uuid: &str,
        volume_id: &str,
        timeout: Duration,
    ) -> Result<()> {
        dispatch!(self, d => d.detach_volume(uuid, volume_id, timeout).await)
    }

    /// Grows an attached (or root) volume to `bytes`: by QMP `block_resize` in a running or
    /// paused guest, which sees the new capacity at once; in the file for a stopped one.
    /// Refused while suspended. Idempotent.
    pub async fn resize_volume(&self, uuid: &str, volume_id: &str, bytes: u64) -> Result<()> {
        dispatch!(self, d => d.resize_volume(uuid, volume_id, bytes).await)
    }

    /// Copies an attached (or root) volume's data as it is now into a standalone qcow2 at
    /// `dest`: by a QMP `blockdev-backup` job under a running or paused guest (which goes on
    /// running), from the file of a stopped one. Refused while suspended. Idempotent.
    pub async fn snapshot_volume(&self, uuid: &str, volume_id: &str, dest: &Path) -> Result<()> {
        dispatch!(self, d => d.snapshot_volume(uuid, volume_id, dest).await)
    }

    pub async fn pause(&self, uuid: &str) -> Result<()> {
        dispatch!(self, d => d.pause(uuid).await)
    }

    pub async fn unpause(&self, uuid: &str) -> Result<()> {
        dispatch!(self, d => d.unpause(uuid).await)
    }

    /// Saves the guest's memory to `state.save` and ends its QEMU; `start` restores it.
    pub async fn suspend(&self, uuid: &str) -> Result<()> {
        dispatch!(self, d => d.suspend(uuid).await)
    }

    /// Hard reboot without restarting the process (QMP `system_reset`).
    pub async fn reset(&self, uuid: &str) -> Result<()> {
        dispatch!(self, d => d.reset(uuid).await)
    }

    /// The serial console log, its last `max_lines` lines if given.
    pub async fn console_output(&self, uuid: &str, max_lines: Option<usize>) -> Result<String> {
        dispatch!(self, d => d.console_output(uuid, max_lines).await)
    }

    /// Copies the root disk, flattened to qcow2, to `dest` while the guest is paused or
    /// off (for createImage).
    pub async fn snapshot(&self, uuid: &str, dest: &Path) -> Result<()> {
        dispatch!(self, d => d.snapshot(uuid, dest).await)
    }

    /// Recreates the root disk from a new base (rebuild), keeping the rest; only while shut
    /// down.
    pub async fn rebuild_root(&self, uuid: &str, root: RootDisk, root_gb: u64) -> Result<()> {
        dispatch!(self, d => d.rebuild_root(uuid, root, root_gb).await)
    }

    /// A live migration's new host: starts the guest made by `create` paused, waiting for
    /// the stream on two free ports of `address`, its own disks served for the old host to
    /// fill, both behind TLS with `key` (64 hex digits). Returns where it listens.
    pub async fn listen_for_migration(
        &self,
        uuid: &str,
        address: std::net::IpAddr,
        key: &str,
    ) -> Result<MigrationChannel> {
        dispatch!(self, d => d.listen_for_migration(uuid, address, key).await)
    }

    /// A live migration's new host: waits up to `timeout` for the guest to arrive, then
    /// resumes it if `resume`. Fails, its QEMU stopped, when the stream breaks off.
    pub async fn finish_incoming(&self, uuid: &str, resume: bool, timeout: Duration) -> Result<()> {
        dispatch!(self, d => d.finish_incoming(uuid, resume, timeout).await)
    }

    /// A live migration's old host: sends the running or paused guest, its own disks
    /// mirrored first, to the QEMU listening at `channel`, and ends its QEMU here (the
    /// instance dir stays until the server leaves this host). On failure the guest goes
    /// on here as it was.
    pub async fn migrate_live(
        &self,
        uuid: &str,
        channel: &MigrationChannel,
        timeout: Duration,
    ) -> Result<LiveMigrationStats> {
        dispatch!(self, d => d.migrate_live(uuid, channel, timeout).await)
    }

    /// Destroys the guest and removes its instance dir. Idempotent.
    pub async fn delete(&self, uuid: &str) -> Result<()> {
        dispatch!(self, d => d.delete(uuid).await)
    }

    /// The uuids that have an instance dir (for re-adoption after a restart).
    pub async fn list(&self) -> Result<Vec<String>> {
        dispatch!(self, d => d.list().await)
    }

    /// The VNC unix socket of a guest (QEMU serves it while running).
    pub fn vnc_socket(&self, uuid: &str) -> Option<PathBuf> {
        match self {
            Driver::Qemu(q) => q.vnc_socket(uuid),
            Driver::Fake(_) => None,
        }
    }

    pub fn instance_dir(&self, uuid: &str) -> Option<PathBuf> {
        match self {
            Driver::Qemu(q) => q.instance_dir(uuid),
            Driver::Fake(_) => None,
        }
    }
}
