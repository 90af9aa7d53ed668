//! The file volume backend: one qcow2 file per volume, `<dir>/volume-<uuid>`.
//!
//! qcow2 rather than raw: it is thin on every filesystem (a raw file is sparse only where
//! the filesystem keeps holes, and copying tools often fill them), and its backing files
//! give snapshots and clones that do not copy the volume (Cinder's NFS driver makes the
//! same choice); QEMU attaches it as it attaches guest disks. Every operation is
//! idempotent, so an agent that died half-way simply runs it again.

use std::path::{Path, PathBuf};

use crate::disks;
use crate::error::{Error, Result};
use crate::validate;

/// Bytes in a GiB: volume sizes are whole GiB.
const GIB: u64 = 1 << 30;

/// Where this host keeps its volumes.
#[derive(Debug, Clone)]
pub struct VolumeFiles {
    dir: PathBuf,
}

impl VolumeFiles {
    /// The backend under `dir`, made if needed.
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The file of volume `id`.
    pub fn path(&self, id: &str) -> Result<PathBuf> {
        Ok(self.dir.join(format!("volume-{}", validate::uuid(id)?)))
    }

    fn bytes(size_gb: u64) -> Result<u64> {
        size_gb
            .checked_mul(GIB)
            .filter(|b| *b > 0)
            .ok_or_else(|| Error::invalid("volume size (GiB)", size_gb.to_string()))
    }

    /// Makes a blank volume of `size_gb`, or grows an existing one to it.
    pub async fn create_blank(&self, id: &str, size_gb: u64) -> Result<()> {
        disks::ensure_blank(&self.path(id)?, Self::bytes(size_gb)?).await
    }

    /// Makes the volume from an image file of Glance `disk_format`: checked first as a
    /// guest disk is (no backing or data file, no other node, at most the volume's size),
    /// converted to qcow2 beside the volume's file and renamed into place, then grown to
    /// `size_gb`. A volume already made is only grown.
    pub async fn create_from_image(
        &self,
        id: &str,
        image: &Path,
        disk_format: &str,
        size_gb: u64,
    ) -> Result<()> {
        let dest = self.path(id)?;
        let size = Self::bytes(size_gb)?;
        let exists = tokio::fs::try_exists(&dest)
            .await
            .map_err(|e| Error::io(&dest, e))?;
        if !exists {
            let format = disks::qemu_format(disk_format)?;
            disks::check_image(image, format, Some(size)).await?;
            disks::convert_to_qcow2(image, format, &dest).await?;
        }
        disks::grow(&dest, size).await.map(drop)
    }

    /// Grows the volume to `size_gb` (never shrinks).
    pub async fn extend(&self, id: &str, size_gb: u64) -> Result<()> {
        disks::grow(&self.path(id)?, Self::bytes(size_gb)?)
            .await
            .map(drop)
    }

    /// Removes the volume's file; a file already gone is fine.
    pub async fn remove(&self, id: &str) -> Result<()> {
        let path = self.path(id)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The virtual size in bytes of the volume's file.
    pub async fn virtual_size(&self, id: &str) -> Result<u64> {
        Ok(disks::info(&self.path(id)?, Some("qcow2"))
            .await?
            .virtual_size)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
