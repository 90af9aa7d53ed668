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

async fn remove(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Where this host keeps its volumes and snapshots.
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
        if !Self::exists(&dest).await? {
            let format = disks::qemu_format(disk_format)?;
            disks::check_image(image, format, Some(size)).await?;
            disks::convert_to_qcow2(image, format, &dest).await?;
        }
        disks::grow(&dest, size).await.map(drop)
    }

    /// (size, available space) in bytes of the filesystem the volumes are on.
    pub fn capacity(&self) -> Result<(u64, u64)> {
        let fs = nix::sys::statvfs::statvfs(&self.dir)
            .map_err(|e| Error::io(&self.dir, std::io::Error::from(e)))?;
        let block = fs.fragment_size();
        Ok((
            fs.blocks().saturating_mul(block),
            fs.blocks_available().saturating_mul(block),
        ))
    }

    /// The file of snapshot `id`.
    pub fn snapshot_path(&self, id: &str) -> Result<PathBuf> {
        Ok(self.dir.join(format!("snapshot-{}", validate::uuid(id)?)))
    }

    async fn exists(path: &Path) -> Result<bool> {
        tokio::fs::try_exists(path)
            .await
            .map_err(|e| Error::io(path, e))
    }

    /// Takes snapshot `snapshot_id` of volume `volume_id`: a standalone qcow2 copy of the
    /// volume's data (only what is allocated is copied), written beside and renamed into
    /// place.
    pub async fn take_snapshot(&self, volume_id: &str, snapshot_id: &str) -> Result<()> {
        let dest = self.snapshot_path(snapshot_id)?;
        if Self::exists(&dest).await? {
            return Ok(());
        }
        disks::convert_to_qcow2(&self.path(volume_id)?, "qcow2", &dest).await
    }

    /// Makes volume `id` from snapshot `snapshot_id`: an overlay on the snapshot's file
    /// (nothing is copied), `size_gb` large.
    pub async fn create_from_snapshot(
        &self,
        id: &str,
        snapshot_id: &str,
        size_gb: u64,
    ) -> Result<()> {
        let dest = self.path(id)?;
        let size = Self::bytes(size_gb)?;
        if !Self::exists(&dest).await? {
            let base = self.snapshot_path(snapshot_id)?;
            // qemu-img only warns about a missing backing file when given a size.
            if !Self::exists(&base).await? {
                return Err(Error::io(&base, std::io::ErrorKind::NotFound.into()));
            }
            disks::create_overlay(&base, "qcow2", &dest, Some(size)).await?;
        }
        disks::grow(&dest, size).await.map(drop)
    }

    /// Makes volume `id` a standalone copy of volume `source`, `size_gb` large.
    pub async fn clone_volume(&self, id: &str, source: &str, size_gb: u64) -> Result<()> {
        let dest = self.path(id)?;
        if !Self::exists(&dest).await? {
            disks::convert_to_qcow2(&self.path(source)?, "qcow2", &dest).await?;
        }
        disks::grow(&dest, Self::bytes(size_gb)?).await.map(drop)
    }

    /// Makes volume `id` stand alone: what it reads from a snapshot is copied into it.
    pub async fn flatten(&self, id: &str) -> Result<()> {
        let path = self.path(id)?;
        if Self::exists(&path).await? {
            disks::flatten(&path).await?;
        }
        Ok(())
    }

    /// Removes snapshot `id`'s file; a file already gone is fine.
    pub async fn remove_snapshot(&self, id: &str) -> Result<()> {
        remove(&self.snapshot_path(id)?).await
    }

    /// Grows the volume to `size_gb` (never shrinks).
    pub async fn extend(&self, id: &str, size_gb: u64) -> Result<()> {
        disks::grow(&self.path(id)?, Self::bytes(size_gb)?)
            .await
            .map(drop)
    }

    /// Writes the volume's data, flattened, as `format` (`raw` or `qcow2`) to a file beside
    /// it named for `image_id`, for the image service to take; returns its path.
    pub async fn export(&self, id: &str, format: &str, image_id: &str) -> Result<PathBuf> {
        let dest = self
            .dir
            .join(format!("upload-{}", validate::uuid(image_id)?));
        disks::convert(&self.path(id)?, "qcow2", format, &dest).await?;
        Ok(dest)
    }

    /// Removes a file [`VolumeFiles::export`] wrote; one already gone is fine.
    pub async fn remove_export(&self, image_id: &str) -> Result<()> {
        remove(
            &self
                .dir
                .join(format!("upload-{}", validate::uuid(image_id)?)),
        )
        .await
    }

    /// Removes the volume's file; a file already gone is fine.
    pub async fn remove(&self, id: &str) -> Result<()> {
        remove(&self.path(id)?).await
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
