//! The host's image cache: each image's data copied once, checked again, keyed by content.

use std::path::PathBuf;

use super::controller::Controller;
use super::worker::Worker;
use super::{Error, Result};

/// The host cache's name for an image's data: its id and the first 16 hex digits of its
/// sha512 (or md5), so that different bytes never share an entry.
pub(crate) fn cache_key(id: &str, sha512: Option<&str>, md5: Option<&str>) -> Option<String> {
    let digest = sha512
        .or(md5)
        .filter(|d| d.len() >= 16 && d.bytes().all(|b| b.is_ascii_hexdigit()))?;
    Some(format!("{id}-{}", &digest[..16]))
}

impl<C: Controller> Worker<C> {
    /// (cached base path, format, is ISO) for an image, copying it into the host cache
    /// once. The stored data is inspected again first (its header, as at upload, so that
    /// qemu-img never sees a file naming other files), then the driver checks the source and
    /// the cached file with `qemu-img info` pinned to their formats. A root disk's image
    /// must fit `disk_gb` (the flavor's disk; 0 is the image's own size). The cache key is
    /// the image id and the start of its sha512 (md5 for old images), so an image with
    /// other bytes never boots on a cached file that is not its own.
    pub(super) async fn cached_image(
        &self,
        image_id: &str,
        disk_gb: Option<u64>,
    ) -> Result<(PathBuf, String, bool)> {
        let refused = |message: String| Error::Image {
            id: image_id.to_owned(),
            message,
        };
        let image = self.controller.image(image_id).await?;
        let virtual_size = image.virtual_size;
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
        let path = self.controller.image_file(&image).await?;
        let (base, format_out) = self
            .driver
            .cache_image(&key, &path, &format, max_virtual)
            .await?;
        Ok((base, format_out, format == "iso"))
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
