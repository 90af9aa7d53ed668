//! Disk files through `qemu-img`: the per-host base image cache, qcow2 overlays on a base,
//! blank disks, growing, and flattening copies. Files appear under their final name only
//! when complete (written to a temp name in the same directory, then renamed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::cmd::run;
use crate::error::{Error, Result};
use crate::validate;

const QEMU_IMG: &str = "qemu-img";
pub const GIB: u64 = 1 << 30;
pub const MIB: u64 = 1 << 20;

/// What `qemu-img info` says about a file (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct ImageInfo {
    pub format: String,
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    #[serde(rename = "backing-filename", default)]
    pub backing_filename: Option<String>,
    #[serde(rename = "format-specific", default)]
    pub format_specific: serde_json::Value,
    /// The nodes under the image's format layer: only `file` for a self-contained image;
    /// `backing`, `data-file` or `extents.N` name other files.
    #[serde(default)]
    pub children: Vec<ChildInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChildInfo {
    pub name: String,
}

/// Why `info` (of `path`, read as `format`) describes an image a guest must not get, if it
/// does: a backing file, an external data file, a node other than the file itself (a VMDK
/// extent elsewhere), a VMDK of another type than monolithicSparse/streamOptimized, or more
/// than `max_virtual` bytes.
pub fn unsafe_image(
    info: &ImageInfo,
    path: &Path,
    format: &str,
    max_virtual: Option<u64>,
) -> Option<String> {
    if info.format != format {
        return Some(format!(
            "qemu-img reads it as {}, not {format}",
            info.format
        ));
    }
    if let Some(backing) = &info.backing_filename {
        return Some(format!("it has a backing file ({backing})"));
    }
    let data = info.format_specific.get("data");
    if data
        .and_then(|d| d.get("data-file"))
        .is_some_and(|v| !v.is_null())
    {
        return Some("it has an external data file".into());
    }
    if let Some(child) = info.children.iter().find(|c| c.name != "file") {
        return Some(format!("it opens another file ({})", child.name));
    }
    if format == "vmdk" {
        let create_type = data
            .and_then(|d| d.get("create-type"))
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if !matches!(create_type, "monolithicSparse" | "streamOptimized") {
            return Some(format!("it is a {create_type:?} VMDK"));
        }
        let own = path.to_string_lossy();
        let extents = data
            .and_then(|d| d.get("extents"))
            .and_then(|v| v.as_array())
            .map_or(&[][..], Vec::as_slice);
        if extents.is_empty() {
            return Some("its VMDK extents are not listed".into());
        }
        for extent in extents {
            let name = extent
                .get("filename")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            if name != own {
                return Some(format!("it has a VMDK extent in another file ({name})"));
            }
        }
    }
    match max_virtual {
        Some(max) if info.virtual_size > max => Some(format!(
            "its virtual size of {} bytes is larger than the {max} bytes allowed",
            info.virtual_size
        )),
        _ => None,
    }
}

/// `qemu-img info -f <format>` of an image file, refused (the error says why) when
/// [`unsafe_image`] finds something. The caller must have checked the file's header
/// before: qemu-img opens whatever files a VMDK descriptor names just to describe it.
pub async fn check_image(path: &Path, format: &str, max_virtual: Option<u64>) -> Result<ImageInfo> {
    let found = info(path, Some(format)).await?;
    match unsafe_image(&found, path, format, max_virtual) {
        Some(why) => Err(Error::UnsafeImage {
            path: path.to_owned(),
            why,
        }),
        None => Ok(found),
    }
}

/// `qemu-img info` of a file. `format` pins the format (never probe untrusted data);
/// `None` probes, for files this host made.
pub async fn info(path: &Path, format: Option<&str>) -> Result<ImageInfo> {
    let file = validate::path(path)?;
    let mut args = vec!["info", "--output=json", "-U"];
    if let Some(format) = format {
        args.extend(["-f", format]);
    }
    args.push(file);
    let out = run(QEMU_IMG, &args).await?;
    serde_json::from_str(&out).map_err(|e| Error::Protocol(format!("qemu-img info {file}: {e}")))
}

/// A temp name beside `dest`, unique in this process (and, with the pid, on this host).
pub fn temp_beside(dest: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dest.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

async fn rename(from: &Path, to: &Path) -> Result<()> {
    tokio::fs::rename(from, to)
        .await
        .map_err(|e| Error::io(to, e))
}

async fn remove_quietly(path: &Path) {
    let _ = tokio::fs::remove_file(path).await;
}

/// Runs `make(tmp)` and renames `tmp` to `dest` when it succeeds; removes `tmp` when not.
async fn atomically<F, Fut>(dest: &Path, make: F) -> Result<()>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let tmp = temp_beside(dest);
    let result = match make(tmp.clone()).await {
        Ok(()) => rename(&tmp, dest).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        remove_quietly(&tmp).await;
    }
    result
}

/// Makes `dest` a qcow2 overlay on `base` (of `base_format`), `size` bytes if given (it must
/// not be smaller than the base).
pub async fn create_overlay(
    base: &Path,
    base_format: &str,
    dest: &Path,
    size: Option<u64>,
) -> Result<()> {
    let base = validate::path(base)?.to_owned();
    let base_format = overlay_base_format(base_format)?;
    validate::path(dest)?;
    atomically(dest, |tmp| async move {
        let tmp = validate::path(&tmp)?.to_owned();
        let mut args = vec![
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            base_format,
            "-b",
            &base,
            &tmp,
        ];
        let size = size.map(|s| s.to_string());
        if let Some(size) = &size {
            args.push(size);
        }
        run(QEMU_IMG, &args).await.map(drop)
    })
    .await
}

/// The formats a base may have under an overlay (others are converted when cached).
fn overlay_base_format(format: &str) -> Result<&'static str> {
    match format {
        "qcow2" => Ok("qcow2"),
        "raw" => Ok("raw"),
        other => Err(Error::invalid("base image format (raw or qcow2)", other)),
    }
}

/// Makes `dest` a blank qcow2 of `size` bytes.
pub async fn create_blank(dest: &Path, size: u64) -> Result<()> {
    if size == 0 {
        return Err(Error::invalid("disk size", "0"));
    }
    validate::path(dest)?;
    atomically(dest, |tmp| async move {
        let tmp = validate::path(&tmp)?.to_owned();
        run(
            QEMU_IMG,
            &["create", "-q", "-f", "qcow2", &tmp, &size.to_string()],
        )
        .await
        .map(drop)
    })
    .await
}

/// Grows the qcow2 `path` to `size` bytes if it is smaller; never shrinks. Returns whether it
/// grew. The guest must not be running.
pub async fn grow(path: &Path, size: u64) -> Result<bool> {
    let current = info(path, Some("qcow2")).await?.virtual_size;
    if size <= current {
        return Ok(false);
    }
    let file = validate::path(path)?;
    run(
        QEMU_IMG,
        &["resize", "-q", "-f", "qcow2", file, &size.to_string()],
    )
    .await?;
    Ok(true)
}

/// Copies into the qcow2 `path` everything it reads from its backing file, then drops the
/// backing file (`qemu-img rebase -b ""`, safe mode): the file stands alone afterwards.
pub async fn flatten(path: &Path) -> Result<()> {
    let file = validate::path(path)?;
    run(QEMU_IMG, &["rebase", "-q", "-f", "qcow2", "-b", "", file])
        .await
        .map(drop)
}

/// Makes `dest` a qcow2 of `size` bytes, or grows it if it exists.
pub async fn ensure_blank(dest: &Path, size: u64) -> Result<()> {
    if tokio::fs::try_exists(dest)
        .await
        .map_err(|e| Error::io(dest, e))?
    {
        grow(dest, size).await.map(drop)
    } else {
        create_blank(dest, size).await
    }
}

/// Writes a flattened qcow2 copy of `src` (read as `src_format`) to `dest`. `-U` lets it read
/// a disk a paused QEMU still holds open.
pub async fn convert_to_qcow2(src: &Path, src_format: &str, dest: &Path) -> Result<()> {
    convert(src, src_format, "qcow2", dest).await
}

/// Writes a flattened copy of `src` (read as `src_format`) to `dest` as `out_format` (`raw`
/// or `qcow2`).
pub async fn convert(src: &Path, src_format: &str, out_format: &str, dest: &Path) -> Result<()> {
    let out_format = match out_format {
        "raw" => "raw",
        "qcow2" => "qcow2",
        other => return Err(Error::invalid("output format (raw or qcow2)", other)),
    };
    let src = validate::path(src)?.to_owned();
    let src_format = src_format.to_owned();
    validate::path(dest)?;
    atomically(dest, |tmp| async move {
        let tmp = validate::path(&tmp)?.to_owned();
        run(
            QEMU_IMG,
            &[
                "convert",
                "-U",
                "-f",
                &src_format,
                "-O",
                out_format,
                &src,
                &tmp,
            ],
        )
        .await
        .map(drop)
    })
    .await
}

/// Flushes `path` and its directory entry to the disk (`qemu-img` writes through the page
/// cache and does not flush): what must survive a power cut, such as a backup, is synced
/// before it is reported done.
pub async fn sync_to_disk(path: &Path) -> Result<()> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    file.sync_all().await.map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        let dir_file = tokio::fs::File::open(dir)
            .await
            .map_err(|e| Error::io(dir, e))?;
        dir_file.sync_all().await.map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Writes to `dest` a qcow2 overlay on `base` (a qcow2) that holds exactly the clusters in
/// which the qcow2 `src` differs from `base`: an empty overlay on `src` is rebased onto
/// `base` in safe mode, which compares the two cluster by cluster and copies in only what
/// differs (`qemu-img convert -B` would not compare: it trusts the source's own chain).
pub async fn diff_overlay(src: &Path, base: &Path, dest: &Path) -> Result<()> {
    let src = validate::path(src)?.to_owned();
    let base = validate::path(base)?.to_owned();
    validate::path(dest)?;
    atomically(dest, |tmp| async move {
        let tmp = validate::path(&tmp)?.to_owned();
        run(
            QEMU_IMG,
            &[
                "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &src, &tmp,
            ],
        )
        .await?;
        run(
            QEMU_IMG,
            &[
                "rebase", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &base, &tmp,
            ],
        )
        .await
        .map(drop)
    })
    .await
}

/// The `qemu-img` input format of a Glance `disk_format`.
pub(crate) fn qemu_format(disk_format: &str) -> Result<&'static str> {
    cache_plan(disk_format).map(|(input, _, _)| input)
}

/// How a Glance `disk_format` is cached: the `qemu-img` input format, the format of the cached
/// file, and whether it is converted (rather than linked or copied).
fn cache_plan(disk_format: &str) -> Result<(&'static str, &'static str, bool)> {
    Ok(match disk_format {
        "qcow2" => ("qcow2", "qcow2", false),
        // ISOs are CD-ROM media; kernels and ramdisks (aki/ari) and ami machine images are raw.
        "raw" | "iso" | "aki" | "ari" | "ami" => ("raw", "raw", false),
        "vmdk" => ("vmdk", "qcow2", true),
        "vdi" => ("vdi", "qcow2", true),
        "vhd" => ("vpc", "qcow2", true),
        "vhdx" => ("vhdx", "qcow2", true),
        "ploop" => ("parallels", "qcow2", true),
        other => return Err(Error::invalid("disk_format", other)),
    })
}

/// Caches an image from `source` once per host as `base_dir/<key>`, where the key names the
/// image's content (its id and checksum, so an image that is not the same bytes never finds
/// another's cache entry): a hard link (or a copy across file systems) for raw, qcow2 and
/// iso, a `qemu-img convert -O qcow2` for other formats. The source is checked with
/// `qemu-img info -f <its format>` first and the cached file after ([`check_image`]; an
/// ISO's size is not bounded, it is no disk); a cached file that fails is removed.
/// Concurrent calls for one key each write their own temp file and rename it into place, so
/// the cache never holds a partial file. Returns the cached path and its format.
pub async fn cache_image(
    base_dir: &Path,
    key: &str,
    source: &Path,
    disk_format: &str,
    max_virtual: Option<u64>,
) -> Result<(PathBuf, String)> {
    let dest = base_dir.join(validate::image_id(key)?);
    let (input, cached, convert) = cache_plan(disk_format)?;
    let max_virtual = max_virtual.filter(|_| disk_format != "iso");
    let cached_already = tokio::fs::try_exists(&dest)
        .await
        .map_err(|e| Error::io(&dest, e))?;
    if cached_already {
        check_cached(&dest, cached, max_virtual).await?;
        return Ok((dest, cached.to_owned()));
    }
    check_image(source, input, max_virtual).await?;
    if convert {
        convert_to_qcow2(source, input, &dest).await?;
    } else {
        let source = source.to_owned();
        atomically(&dest, |tmp| async move {
            tokio::task::spawn_blocking(move || link_or_copy(&source, &tmp))
                .await
                .map_err(|e| Error::io("cache", std::io::Error::other(e)))?
        })
        .await?;
    }
    check_cached(&dest, cached, max_virtual).await?;
    tracing::info!(key, path = %dest.display(), "image cached");
    Ok((dest, cached.to_owned()))
}

/// [`check_image`] of a cache entry, which is removed if it fails.
async fn check_cached(path: &Path, format: &str, max_virtual: Option<u64>) -> Result<()> {
    let checked = check_image(path, format, max_virtual).await;
    if let Err(Error::UnsafeImage { .. }) = &checked {
        remove_quietly(path).await;
    }
    checked.map(drop)
}

fn link_or_copy(source: &Path, tmp: &Path) -> Result<()> {
    if std::fs::hard_link(source, tmp).is_ok() {
        return Ok(());
    }
    std::fs::copy(source, tmp).map_err(|e| Error::io(source, e))?;
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(tmp, e))
}

/// Probes a base this host cached (rescue images): only raw, or qcow2 without a backing or
/// external data file, so a crafted image cannot make QEMU open other host files.
pub async fn probe_base(path: &Path) -> Result<String> {
    let found = info(path, None).await?;
    let external_data = found
        .format_specific
        .pointer("/data/data-file")
        .is_some_and(|v| !v.is_null());
    match found.format.as_str() {
        "raw" => Ok("raw".into()),
        "qcow2" if found.backing_filename.is_none() && !external_data => Ok("qcow2".into()),
        other => Err(Error::invalid(
            "rescue image (raw, or qcow2 without backing file)",
            format!("{} is {other}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(cache_plan("qcow2").ok(), Some(("qcow2", "qcow2", false)));
        assert_eq!(cache_plan("iso").ok(), Some(("raw", "raw", false)));
        assert_eq!(cache_plan("vhd").ok(), Some(("vpc", "qcow2", true)));
        assert!(cache_plan("docker").is_err());
        assert!(overlay_base_format("vmdk").is_err());
    }

    fn info(json: serde_json::Value) -> ImageInfo {
        serde_json::from_value(json).expect("qemu-img info json")
    }

    #[test]
    fn what_qemu_img_describes_is_checked() {
        let path = Path::new("/var/lib/onestack/images/x");
        let file = serde_json::json!([{"name": "file"}]);
        let plain = info(serde_json::json!({"format": "qcow2", "virtual-size": 1024,
            "children": file, "format-specific": {"type": "qcow2", "data": {}}}));
        assert_eq!(unsafe_image(&plain, path, "qcow2", Some(1024)), None);
        assert!(unsafe_image(&plain, path, "qcow2", Some(1023)).is_some());
        assert!(unsafe_image(&plain, path, "raw", None).is_some());
        let backing = info(serde_json::json!({"format": "qcow2", "virtual-size": 1,
            "backing-filename": "/etc/shadow"}));
        assert!(unsafe_image(&backing, path, "qcow2", None).is_some());
        let data_file = info(serde_json::json!({"format": "qcow2", "virtual-size": 1,
            "format-specific": {"data": {"data-file": "/dev/sda"}}}));
        assert!(unsafe_image(&data_file, path, "qcow2", None).is_some());
        let child = info(serde_json::json!({"format": "vmdk", "virtual-size": 1,
            "children": [{"name": "extents.0"}, {"name": "file"}]}));
        assert!(unsafe_image(&child, path, "vmdk", None).is_some());
        let vmdk = |create_type: &str, extent: &str| {
            info(
                serde_json::json!({"format": "vmdk", "virtual-size": 1, "children": file,
                "format-specific": {"type": "vmdk", "data": {"create-type": create_type,
                    "extents": [{"filename": extent, "format": ""}]}}}),
            )
        };
        let own = path.to_str().expect("utf-8");
        assert_eq!(
            unsafe_image(&vmdk("monolithicSparse", own), path, "vmdk", None),
            None
        );
        assert!(
            unsafe_image(&vmdk("monolithicSparse", "/etc/passwd"), path, "vmdk", None).is_some()
        );
        assert!(unsafe_image(&vmdk("monolithicFlat", own), path, "vmdk", None).is_some());
    }

    #[test]
    fn temp_names_differ() {
        let a = temp_beside(Path::new("/x/disk"));
        let b = temp_beside(Path::new("/x/disk"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/x")));
        assert!(
            a.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".disk.tmp."))
        );
    }
}
