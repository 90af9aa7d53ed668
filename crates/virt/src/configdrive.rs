//! The config drive: an ISO9660 volume labelled `config-2` holding the metadata files
//! (`openstack/latest/meta_data.json`, `ec2/latest/meta-data.json`, ...), made the way Nova
//! makes it: `genisoimage` over a temp directory.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::cmd::run;
use crate::disks::temp_beside;
use crate::error::{Error, Result};
use crate::validate;

const GENISOIMAGE: &str = "genisoimage";

/// A path inside the drive: relative, plain components only.
fn inner_path(path: &str) -> Result<PathBuf> {
    let p = Path::new(path);
    let plain = !path.is_empty()
        && path.len() <= 1024
        && !path.contains('\0')
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(p.to_owned())
    } else {
        Err(Error::invalid("config drive path", path))
    }
}

/// Writes `files` into a fresh ISO at `out` (replacing it atomically). The temp directory is
/// made beside `out`.
pub async fn build(files: &BTreeMap<String, Vec<u8>>, out: &Path) -> Result<()> {
    validate::path(out)?;
    let parent = out
        .parent()
        .ok_or_else(|| Error::invalid("config drive path", out.to_string_lossy()))?;
    let staging = tempfile::Builder::new()
        .prefix(".configdrive.")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    for (name, data) in files {
        let path = staging.path().join(inner_path(name)?);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::io(dir, e))?;
        }
        tokio::fs::write(&path, data)
            .await
            .map_err(|e| Error::io(&path, e))?;
    }
    let tmp = temp_beside(out);
    let tmp_text = validate::path(&tmp)?.to_owned();
    let dir = validate::path(staging.path())?.to_owned();
    let publisher = format!("onestack {}", env!("CARGO_PKG_VERSION"));
    let args = [
        "-o",
        &tmp_text,
        "-ldots",
        "-allow-lowercase",
        "-allow-multidot",
        "-l",
        "-publisher",
        &publisher,
        "-quiet",
        "-J",
        "-r",
        "-V",
        "config-2",
        &dir,
    ];
    let result = match run(GENISOIMAGE, &args).await {
        Ok(_) => tokio::fs::rename(&tmp, out)
            .await
            .map_err(|e| Error::io(out, e)),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_paths() {
        assert!(inner_path("openstack/latest/meta_data.json").is_ok());
        assert!(inner_path("openstack/content/0000").is_ok());
        assert!(inner_path("../etc/passwd").is_err());
        assert!(inner_path("/etc/passwd").is_err());
        assert!(
            inner_path("a/./b").is_ok(),
            "`.` components are dropped by Path"
        );
        assert!(inner_path("a/../b").is_err());
        assert!(inner_path("").is_err());
    }

    #[tokio::test]
    async fn makes_a_config_2_iso() {
        if !onestack_testkit::require_tools(&[GENISOIMAGE]) {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("disk.config");
        let mut files = BTreeMap::new();
        files.insert(
            "openstack/latest/meta_data.json".to_owned(),
            br#"{"uuid": "x"}"#.to_vec(),
        );
        files.insert("ec2/latest/meta-data.json".to_owned(), b"{}".to_vec());
        build(&files, &out).await.expect("builds");
        let iso = std::fs::read(&out).expect("written");
        // The primary volume descriptor at sector 16: type 1, "CD001", the volume id at 40.
        assert_eq!(&iso[0x8000..0x8006], b"\x01CD001");
        assert_eq!(&iso[0x8028..0x8030], b"config-2");
        // Lower-case long names survive (Rock Ridge/Joliet), and the content is there.
        let text = String::from_utf8_lossy(&iso);
        assert!(text.contains("meta_data.json"));
        assert!(text.contains(r#"{"uuid": "x"}"#));
        // Rebuilding replaces it; no temp files are left.
        build(&files, &out).await.expect("rebuilds");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("lists")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["disk.config"]);
    }
}
