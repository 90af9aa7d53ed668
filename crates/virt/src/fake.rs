//! A driver that keeps guests in memory: the same states and refusals as the QEMU driver,
//! instantly, for testing the control plane at thousands of servers. Never what proves a
//! feature works.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::accel::Accel;
use crate::cmdline::{self, Host};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::spec::{GuestSpec, PowerState, RootDisk, VolumeDisk};
use crate::validate;

struct Guest {
    spec: GuestSpec,
    state: PowerState,
    config_drive: bool,
}

/// The in-memory driver.
#[derive(Default)]
pub struct Fake {
    guests: Mutex<HashMap<String, Guest>>,
}

impl Fake {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, uuid: &str, f: impl FnOnce(&mut Guest) -> Result<T>) -> Result<T> {
        validate::uuid(uuid)?;
        let mut guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        let guest = guests
            .get_mut(uuid)
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        f(guest)
    }

    /// The same input checks as the QEMU driver, against a made-up instance dir.
    fn check(spec: &GuestSpec) -> Result<()> {
        let layout = Layout::new(Path::new("/fake/instances"), &spec.uuid)?;
        let host = Host {
            accel: Accel::Tcg,
            vhost_net: false,
        };
        cmdline::build(spec, &layout, host, cmdline::Start::Boot)?;
        if spec.root == RootDisk::Blank && spec.root_gb == 0 {
            return Err(Error::invalid(
                "root_gb",
                "a blank root disk needs root_gb > 0",
            ));
        }
        Ok(())
    }

    /// Checks the key and format like the QEMU driver and returns the source itself.
    pub async fn cache_image(
        &self,
        key: &str,
        source: &Path,
        disk_format: &str,
        _max_virtual: Option<u64>,
    ) -> Result<(PathBuf, String)> {
        validate::image_id(key)?;
        let format = match disk_format {
            "qcow2" | "vmdk" | "vdi" | "vhd" | "vhdx" | "ploop" => "qcow2",
            "raw" | "iso" | "aki" | "ari" | "ami" => "raw",
            other => return Err(Error::invalid("disk_format", other)),
        };
        Ok((source.to_owned(), format.to_owned()))
    }

    pub async fn create(&self, spec: &GuestSpec) -> Result<()> {
        Self::check(spec)?;
        // As the QEMU driver does, a migrated disk is taken (moved) into the guest.
        if let RootDisk::Migrated { disk } = &spec.root {
            tokio::fs::remove_file(disk)
                .await
                .map_err(|e| Error::io(disk, e))?;
        }
        let mut guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        guests
            .entry(spec.uuid.clone())
            .and_modify(|g| g.spec = spec.clone())
            .or_insert_with(|| Guest {
                spec: spec.clone(),
                state: PowerState::Shutdown,
                config_drive: false,
            });
        Ok(())
    }

    pub async fn write_config_drive(
        &self,
        uuid: &str,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        let _ = files;
        self.with(uuid, |g| {
            g.config_drive = true;
            Ok(())
        })
    }

    pub async fn start(&self, uuid: &str) -> Result<()> {
        self.with(uuid, |g| {
            if g.spec.config_drive && !g.config_drive {
                return Err(Error::invalid("config drive (not written yet)", uuid));
            }
            if matches!(g.state, PowerState::Shutdown | PowerState::Suspended) {
                g.state = PowerState::Running;
            }
            Ok(())
        })
    }

    pub async fn update_spec(&self, spec: &GuestSpec) -> Result<()> {
        Self::check(spec)?;
        self.with(&spec.uuid, |g| {
            require(g, "update_spec", &[PowerState::Shutdown], "shut down")?;
            if g.spec.root != spec.root {
                return Err(Error::invalid(
                    "root",
                    "changing the root disk is a rebuild (rebuild_root)",
                ));
            }
            let root_gb = spec.root_gb.max(g.spec.root_gb); // disks never shrink
            g.spec = spec.clone();
            g.spec.root_gb = root_gb;
            Ok(())
        })
    }

    pub async fn spec(&self, uuid: &str) -> Result<Option<GuestSpec>> {
        validate::uuid(uuid)?;
        let guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guests.get(uuid).map(|g| g.spec.clone()))
    }

    pub async fn power_state(&self, uuid: &str) -> Result<PowerState> {
        validate::uuid(uuid)?;
        let guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guests.get(uuid).map_or(PowerState::NoState, |g| g.state))
    }

    /// A running guest obeys the power button at once; a paused one is stopped hard.
    pub async fn shutdown(&self, uuid: &str, timeout: Duration) -> Result<bool> {
        let _ = timeout;
        self.with(uuid, |g| {
            Ok(match g.state {
                PowerState::Running => {
                    g.state = PowerState::Shutdown;
                    true
                }
                PowerState::Paused | PowerState::Crashed => {
                    g.state = PowerState::Shutdown;
                    false
                }
                _ => true,
            })
        })
    }

    pub async fn destroy(&self, uuid: &str) -> Result<()> {
        validate::uuid(uuid)?;
        let mut guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = guests.get_mut(uuid)
            && matches!(
                g.state,
                PowerState::Running | PowerState::Paused | PowerState::Crashed
            )
        {
            g.state = PowerState::Shutdown;
        }
        Ok(())
    }

    pub async fn attach_volume(&self, uuid: &str, volume: &VolumeDisk) -> Result<()> {
        validate::uuid(&volume.volume_id)?;
        validate::path(&volume.path)?;
        self.with(uuid, |g| {
            require(
                g,
                "attach_volume",
                PLUGGABLE,
                "running, paused or shut down",
            )?;
            g.spec.volumes.retain(|v| v.volume_id != volume.volume_id);
            g.spec.volumes.push(volume.clone());
            Ok(())
        })
    }

    pub async fn detach_volume(
        &self,
        uuid: &str,
        volume_id: &str,
        _timeout: Duration,
    ) -> Result<()> {
        validate::uuid(volume_id)?;
        self.with(uuid, |g| {
            require(
                g,
                "detach_volume",
                PLUGGABLE,
                "running, paused or shut down",
            )?;
            g.spec.volumes.retain(|v| v.volume_id != volume_id);
            Ok(())
        })
    }

    pub async fn resize_volume(&self, uuid: &str, volume_id: &str, bytes: u64) -> Result<()> {
        validate::uuid(volume_id)?;
        self.with(uuid, |g| {
            require(
                g,
                "resize_volume",
                PLUGGABLE,
                "running, paused or shut down",
            )?;
            if bytes == 0 {
                return Err(Error::invalid("volume size", "0"));
            }
            // No disk to grow here: the block storage service's file is the truth.
            g.spec.volume(volume_id).map(drop)
        })
    }

    /// Copies the volume's file (no guest holds it here), so that what is made from the
    /// snapshot holds the volume's data.
    pub async fn snapshot_volume(&self, uuid: &str, volume_id: &str, dest: &Path) -> Result<()> {
        validate::uuid(volume_id)?;
        let source = self.with(uuid, |g| {
            require(
                g,
                "snapshot_volume",
                PLUGGABLE,
                "running, paused or shut down",
            )?;
            g.spec.volume(volume_id).map(|v| v.path.clone())
        })?;
        if tokio::fs::try_exists(dest).await.unwrap_or(false) {
            return Ok(());
        }
        crate::disks::convert_to_qcow2(&source, "qcow2", dest).await
    }

    /// Listens nowhere: the ports are made up.
    pub async fn listen_for_migration(
        &self,
        uuid: &str,
        address: std::net::IpAddr,
        key: &str,
    ) -> Result<crate::MigrationChannel> {
        self.with(uuid, |g| {
            g.state = PowerState::Paused;
            Ok(crate::MigrationChannel {
                address,
                migration_port: 49152,
                nbd_port: 49153,
                key: key.to_owned(),
            })
        })
    }

    pub async fn finish_incoming(
        &self,
        uuid: &str,
        resume: bool,
        _timeout: Duration,
    ) -> Result<()> {
        self.with(uuid, |g| {
            require(
                g,
                "finish a live migration",
                &[PowerState::Paused],
                "waiting for the migration",
            )?;
            if resume {
                g.state = PowerState::Running;
            }
            Ok(())
        })
    }

    pub async fn migrate_live(
        &self,
        uuid: &str,
        _channel: &crate::MigrationChannel,
        _timeout: Duration,
    ) -> Result<crate::LiveMigrationStats> {
        self.with(uuid, |g| {
            require(
                g,
                "live-migrate",
                &[PowerState::Running, PowerState::Paused],
                "running or paused",
            )?;
            g.state = PowerState::Shutdown;
            Ok(crate::LiveMigrationStats::default())
        })
    }

    pub async fn pause(&self, uuid: &str) -> Result<()> {
        self.with(uuid, |g| {
            require(
                g,
                "pause",
                &[PowerState::Running, PowerState::Paused],
                "running or paused",
            )?;
            g.state = PowerState::Paused;
            Ok(())
        })
    }

    pub async fn unpause(&self, uuid: &str) -> Result<()> {
        self.with(uuid, |g| {
            require(
                g,
                "unpause",
                &[PowerState::Running, PowerState::Paused],
                "running or paused",
            )?;
            g.state = PowerState::Running;
            Ok(())
        })
    }

    pub async fn suspend(&self, uuid: &str) -> Result<()> {
        self.with(uuid, |g| {
            require(
                g,
                "suspend",
                &[PowerState::Running, PowerState::Paused],
                "running or paused",
            )?;
            g.state = PowerState::Suspended;
            Ok(())
        })
    }

    pub async fn reset(&self, uuid: &str) -> Result<()> {
        self.with(uuid, |g| {
            require(
                g,
                "reset",
                &[PowerState::Running, PowerState::Paused, PowerState::Crashed],
                "running or paused",
            )?;
            if g.state == PowerState::Crashed {
                g.state = PowerState::Running;
            }
            Ok(())
        })
    }

    pub async fn console_output(&self, uuid: &str, max_lines: Option<usize>) -> Result<String> {
        self.with(uuid, |_| {
            Ok(if max_lines == Some(0) {
                String::new()
            } else {
                format!("fake driver: instance {uuid} has no serial console\n")
            })
        })
    }

    /// Writes an empty qcow2 of the root disk's size, so the image service has a real file.
    pub async fn snapshot(&self, uuid: &str, dest: &Path) -> Result<()> {
        let size = self.with(uuid, |g| {
            require(
                g,
                "snapshot",
                &[
                    PowerState::Paused,
                    PowerState::Shutdown,
                    PowerState::Suspended,
                ],
                "paused or shut down",
            )?;
            Ok(g.spec.root_gb.max(1) << 30)
        })?;
        let bytes = empty_qcow2(size);
        tokio::fs::write(dest, bytes)
            .await
            .map_err(|e| Error::io(dest, e))
    }

    pub async fn rebuild_root(&self, uuid: &str, root: RootDisk, root_gb: u64) -> Result<()> {
        self.with(uuid, |g| {
            require(g, "rebuild_root", &[PowerState::Shutdown], "shut down")?;
            if g.spec.root.volume().is_some() || root.volume().is_some() {
                return Err(Error::invalid(
                    "root",
                    "a root volume is rebuilt by the block storage service, not in the instance dir",
                ));
            }
            let mut spec = g.spec.clone();
            spec.root = root;
            spec.root_gb = root_gb;
            Self::check(&spec)?;
            g.spec = spec;
            Ok(())
        })
    }

    pub async fn delete(&self, uuid: &str) -> Result<()> {
        validate::uuid(uuid)?;
        self.guests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid);
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<String>> {
        let guests = self.guests.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = guests.keys().cloned().collect();
        out.sort();
        Ok(out)
    }
}

/// The states a disk can be plugged in or out in (a suspended guest's saved state belongs
/// to its disks).
const PLUGGABLE: &[PowerState] = &[
    PowerState::Running,
    PowerState::Paused,
    PowerState::Shutdown,
];

fn require(g: &Guest, op: &'static str, allowed: &[PowerState], needs: &'static str) -> Result<()> {
    if allowed.contains(&g.state) {
        Ok(())
    } else {
        Err(Error::WrongState {
            uuid: g.spec.uuid.clone(),
            op,
            state: g.state,
            needs,
        })
    }
}

/// A valid, empty qcow2 (version 3, 64 KiB clusters) of `size` bytes: the header, a
/// refcount table, one refcount block and an all-zero L1 table, as `qemu-img create` lays
/// them out.
pub(crate) fn empty_qcow2(size: u64) -> Vec<u8> {
    const CLUSTER: u64 = 1 << 16;
    let l1_size = size.div_ceil(CLUSTER * (CLUSTER / 8));
    let mut out = vec![0u8; (3 * CLUSTER + l1_size * 8) as usize];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"QFI\xfb");
    put(&3u32.to_be_bytes()); // version
    put(&0u64.to_be_bytes()); // backing file offset
    put(&0u32.to_be_bytes()); // backing file size
    put(&16u32.to_be_bytes()); // cluster bits
    put(&size.to_be_bytes());
    put(&0u32.to_be_bytes()); // no encryption
    put(&(l1_size as u32).to_be_bytes());
    put(&(3 * CLUSTER).to_be_bytes()); // L1 table
    put(&CLUSTER.to_be_bytes()); // refcount table
    put(&1u32.to_be_bytes()); // refcount table clusters
    put(&0u32.to_be_bytes()); // snapshots
    put(&0u64.to_be_bytes()); // snapshots offset
    put(&0u64.to_be_bytes()); // incompatible features
    put(&0u64.to_be_bytes()); // compatible features
    put(&0u64.to_be_bytes()); // autoclear features
    put(&4u32.to_be_bytes()); // refcount order (16 bits)
    put(&104u32.to_be_bytes()); // header length
    // The refcount table points at the refcount block, which counts clusters 0..=3 once.
    let table = CLUSTER as usize;
    out[table..table + 8].copy_from_slice(&(2 * CLUSTER).to_be_bytes());
    let block = 2 * CLUSTER as usize;
    for i in 0..4 {
        out[block + 2 * i..block + 2 * i + 2].copy_from_slice(&1u16.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: u32) -> GuestSpec {
        GuestSpec {
            uuid: format!("00000000-0000-0000-0000-{n:012x}"),
            name: format!("instance-{n:08x}"),
            vcpus: 1,
            memory_mb: 64,
            root: RootDisk::Blank,
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            cdrom: None,
            kernel: None,
            ramdisk: None,
            cmdline: None,
            nics: vec![],
            config_drive: false,
            rescue: None,
            stable_rescue: false,
            volumes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn lifecycle() {
        let fake = Fake::new();
        let s = spec(1);
        let id = s.uuid.as_str();
        assert_eq!(fake.power_state(id).await.ok(), Some(PowerState::NoState));
        assert!(fake.start(id).await.is_err_and(|e| e.is_not_found()));
        fake.create(&s).await.expect("create");
        assert_eq!(fake.power_state(id).await.ok(), Some(PowerState::Shutdown));
        assert!(fake.pause(id).await.is_err());
        fake.start(id).await.expect("start");
        fake.start(id).await.expect("a second start is a no-op");
        assert_eq!(fake.power_state(id).await.ok(), Some(PowerState::Running));
        assert!(matches!(
            fake.update_spec(&s).await,
            Err(Error::WrongState { .. })
        ));
        fake.pause(id).await.expect("pause");
        assert_eq!(fake.power_state(id).await.ok(), Some(PowerState::Paused));
        fake.unpause(id).await.expect("unpause");
        fake.suspend(id).await.expect("suspend");
        assert_eq!(fake.power_state(id).await.ok(), Some(PowerState::Suspended));
        fake.start(id).await.expect("resume");
        assert_eq!(
            fake.shutdown(id, Duration::from_secs(1)).await.ok(),
            Some(true)
        );
        assert_eq!(fake.power_state(id).await.ok(), Some(PowerState::Shutdown));
        let mut bigger = s.clone();
        bigger.root_gb = 5;
        fake.update_spec(&bigger).await.expect("resize");
        assert_eq!(
            fake.spec(id).await.ok().flatten().map(|s| s.root_gb),
            Some(5)
        );
        assert!(
            fake.console_output(id, None)
                .await
                .is_ok_and(|t| t.contains("fake driver"))
        );
        fake.delete(id).await.expect("delete");
        assert_eq!(fake.power_state(id).await.ok(), Some(PowerState::NoState));
        assert!(
            fake.create(&GuestSpec {
                uuid: "../x".into(),
                ..s
            })
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn thousands_of_guests() {
        let fake = Fake::new();
        let started = std::time::Instant::now();
        for n in 0..5000 {
            let s = spec(n);
            fake.create(&s).await.expect("create");
            fake.start(&s.uuid).await.expect("start");
        }
        assert_eq!(fake.list().await.map(|l| l.len()).ok(), Some(5000));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn snapshot_is_a_valid_qcow2() {
        let fake = Fake::new();
        let s = spec(7);
        fake.create(&s).await.expect("create");
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("snap.qcow2");
        fake.start(&s.uuid).await.expect("start");
        assert!(fake.snapshot(&s.uuid, &dest).await.is_err(), "running");
        fake.pause(&s.uuid).await.expect("pause");
        fake.snapshot(&s.uuid, &dest).await.expect("snapshot");
        if !onestack_testkit::require_tools(&["qemu-img"]) {
            return;
        }
        let out = std::process::Command::new("qemu-img")
            .args(["check", "-f", "qcow2", "--output=json"])
            .arg(&dest)
            .output()
            .expect("qemu-img runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let info = std::process::Command::new("qemu-img")
            .args(["info", "-f", "qcow2", "--output=json"])
            .arg(&dest)
            .output()
            .expect("qemu-img info");
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
        assert_eq!(info["virtual-size"], 1u64 << 30);
    }
}
