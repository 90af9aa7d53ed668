//! What a guest is: the spec saved as `spec.json` in its instance dir, and its power state.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A network interface: an existing tap device (the network agent creates it as a persistent
/// tap, `ip tuntap add dev NAME mode tap`), attached as `virtio-net-pci`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    pub ifname: String,
    pub mac: String,
}

/// A block storage volume, attached as a virtio disk after the guest's own disks: a qcow2
/// file the volume backend keeps outside the instance dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeDisk {
    /// The volume's id: the disk's serial (its first 20 characters, as Nova sets it, so
    /// the guest finds it as `/dev/disk/by-id/virtio-<serial>`) and its QEMU ids.
    pub volume_id: String,
    pub path: PathBuf,
    #[serde(default)]
    pub read_only: bool,
}

impl VolumeDisk {
    /// The block node's and the device's id: `vol-` and 20 hex digits of the volume id
    /// (node names have at most 31 characters).
    pub fn qemu_id(&self) -> String {
        Self::qemu_id_of(&self.volume_id)
    }

    pub fn qemu_id_of(volume_id: &str) -> String {
        let hex: String = volume_id
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(20)
            .collect();
        format!("vol-{hex}")
    }

    /// virtio-blk serials hold 20 bytes.
    pub fn serial(&self) -> &str {
        &self.volume_id[..self.volume_id.len().min(20)]
    }
}

/// Where the root disk comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RootDisk {
    /// A cached base (see `Driver::cache_image`): the root disk is a qcow2 overlay on it,
    /// grown to `root_gb` when that is larger than the base's virtual size.
    Image { base: PathBuf, format: String },
    /// A blank qcow2 of `root_gb` (the install target of an ISO boot).
    Blank,
    /// A block storage volume (boot from volume): the guest boots from the volume's file,
    /// and the instance dir holds no root disk.
    Volume(VolumeDisk),
    /// A root disk another host made (a cold migration): a standalone qcow2, checked as
    /// strictly as an image (no backing or data file, at most `root_gb` when that is set)
    /// and moved into the instance dir.
    Migrated { disk: PathBuf },
}

impl RootDisk {
    pub fn volume(&self) -> Option<&VolumeDisk> {
        match self {
            RootDisk::Volume(v) => Some(v),
            _ => None,
        }
    }
}

/// Everything needed to (re)start a guest; saved as `spec.json` in the instance dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSpec {
    /// The server id: QEMU `-uuid`, SMBIOS type 1 serial and uuid, the instance dir's name.
    pub uuid: String,
    /// QEMU `-name`, e.g. `instance-0000002a`.
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub root: RootDisk,
    /// 0 = the image's own virtual size.
    #[serde(default)]
    pub root_gb: u64,
    /// > 0: a blank qcow2 `disk.eph0`, the second virtio disk.
    #[serde(default)]
    pub ephemeral_gb: u64,
    /// > 0: a blank qcow2 `disk.swap`.
    #[serde(default)]
    pub swap_mb: u64,
    /// An ISO (the cached base of a `disk_format=iso` image): an IDE CD-ROM, first to boot.
    #[serde(default)]
    pub cdrom: Option<PathBuf>,
    /// Direct kernel boot (images with `kernel_id`/`ramdisk_id`).
    #[serde(default)]
    pub kernel: Option<PathBuf>,
    #[serde(default)]
    pub ramdisk: Option<PathBuf>,
    /// The kernel command line; with a kernel and no command line, Nova's default
    /// `root=/dev/vda console=tty0 console=ttyS0 console=hvc0` is used.
    #[serde(default)]
    pub cmdline: Option<String>,
    #[serde(default)]
    pub nics: Vec<Nic>,
    /// Attach `disk.config` (written by `write_config_drive`) as an IDE CD-ROM.
    #[serde(default)]
    pub config_drive: bool,
    /// Rescue boot: a fresh overlay (`disk.rescue`) of this base boots first and the real
    /// root disk is attached second. The base must be raw or qcow2 (probed, see `disks`).
    #[serde(default)]
    pub rescue: Option<PathBuf>,
    /// Nova's stable device rescue (the rescue image has `hw_rescue_bus` and
    /// `hw_rescue_device`): the rescue disk is attached last instead and boots, every other
    /// disk keeps its place. How a server that boots from a volume is rescued.
    #[serde(default)]
    pub stable_rescue: bool,
    /// Volumes attached, in the order they were attached.
    #[serde(default)]
    pub volumes: Vec<VolumeDisk>,
}

impl GuestSpec {
    /// The guest's volume `volume_id`: one attached to it, or its root.
    pub fn volume(&self, volume_id: &str) -> Result<&VolumeDisk> {
        self.volumes
            .iter()
            .chain(self.root.volume())
            .find(|v| v.volume_id == volume_id)
            .ok_or_else(|| Error::invalid("volume (not attached to this guest)", volume_id))
    }
}

/// A guest's power state as the driver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    Running,
    /// Stopped by QMP `stop` (or by QEMU: migrating, I/O error).
    Paused,
    /// The instance dir exists and no QEMU runs for it.
    Shutdown,
    /// QEMU runs but the guest panicked or hit an internal error.
    Crashed,
    /// A saved state file exists and no QEMU runs.
    Suspended,
    /// Unknown instance.
    NoState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_json_round_trip_and_tolerance() {
        let spec = GuestSpec {
            uuid: "0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f9".into(),
            name: "instance-00000001".into(),
            vcpus: 1,
            memory_mb: 64,
            root: RootDisk::Image {
                base: "/b/img".into(),
                format: "qcow2".into(),
            },
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            cdrom: None,
            kernel: None,
            ramdisk: None,
            cmdline: None,
            nics: vec![],
            config_drive: true,
            rescue: None,
            stable_rescue: false,
            volumes: vec![VolumeDisk {
                volume_id: "5a0e3b7c-1d2e-4f60-8a9b-0c1d2e3f4a5b".into(),
                path: "/v/volume-5a0e3b7c".into(),
                read_only: false,
            }],
        };
        assert_eq!(spec.volumes[0].qemu_id(), "vol-5a0e3b7c1d2e4f608a9b");
        assert_eq!(spec.volumes[0].serial(), "5a0e3b7c-1d2e-4f60-8");
        let text = serde_json::to_string(&spec).expect("serializes");
        let back: GuestSpec = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, spec);
        // Older or newer files: missing optional fields default, unknown ones are ignored.
        let minimal: GuestSpec = serde_json::from_str(
            r#"{"uuid":"u","name":"n","vcpus":1,"memory_mb":64,"root":{"type":"blank"},"later":1}"#,
        )
        .expect("parses");
        assert_eq!(minimal.root, RootDisk::Blank);
        assert!(minimal.nics.is_empty());
        // Every kind of root disk is saved with the spec.
        let migrated = GuestSpec {
            root: RootDisk::Migrated {
                disk: "/d/u.migrated.qcow2".into(),
            },
            ..spec
        };
        let text = serde_json::to_string(&migrated).expect("serializes");
        assert_eq!(
            serde_json::from_str::<GuestSpec>(&text).expect("parses"),
            migrated
        );
    }
}
