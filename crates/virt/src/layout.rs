//! The files of one instance dir (Nova's names for the disks).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::validate;

/// `<instances_dir>/<uuid>/...`
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of instance `uuid` (validated: it becomes a path).
    pub fn new(instances_dir: &Path, uuid: &str) -> Result<Self> {
        Ok(Self {
            dir: instances_dir.join(validate::uuid(uuid)?),
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The root disk (a qcow2 overlay or a blank qcow2).
    pub fn root(&self) -> PathBuf {
        self.file("disk")
    }
    pub fn ephemeral(&self) -> PathBuf {
        self.file("disk.eph0")
    }
    pub fn swap(&self) -> PathBuf {
        self.file("disk.swap")
    }
    pub fn config_drive(&self) -> PathBuf {
        self.file("disk.config")
    }
    pub fn rescue(&self) -> PathBuf {
        self.file("disk.rescue")
    }
    pub fn spec(&self) -> PathBuf {
        self.file("spec.json")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.file("qemu.pid")
    }
    pub fn qmp(&self) -> PathBuf {
        self.file("qmp.sock")
    }
    pub fn vnc(&self) -> PathBuf {
        self.file("vnc.sock")
    }
    /// The serial console, appended to across restarts.
    pub fn console(&self) -> PathBuf {
        self.file("console.log")
    }
    /// QEMU's own stderr.
    pub fn log(&self) -> PathBuf {
        self.file("qemu.log")
    }
    /// The saved memory state of a suspended guest.
    /// The TLS key a live migration's two QEMUs share (`keys.psk`), while it runs.
    pub fn migration_tls(&self) -> PathBuf {
        self.file("migration-tls")
    }
    pub fn state(&self) -> PathBuf {
        self.file("state.save")
    }
    pub fn state_tmp(&self) -> PathBuf {
        self.file("state.save.tmp")
    }
}
