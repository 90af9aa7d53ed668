//! What an image file really is. Glance and Nova have both had CVEs where a "qcow2" whose
//! header names a backing file (or an external data file) made the host read its own files;
//! so uploads are inspected and refused unless the content is what `disk_format` claims,
//! carries no external references, and yields a virtual size where the format has one.

use std::io::{Read, Seek, SeekFrom};

/// Disk formats Glance accepts.
pub const DISK_FORMATS: [&str; 11] = [
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
/// Container formats Glance accepts.
pub const CONTAINER_FORMATS: [&str; 8] = [
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];

/// How much of the head of a file the inspection reads.
pub const HEAD_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the data is not a {claimed} image (it looks like {found})")]
    Mismatch {
        claimed: String,
        found: &'static str,
    },
    #[error("the qcow2 image refers to a backing file; only self-contained images are accepted")]
    BackingFile,
    #[error(
        "the qcow2 image keeps its data in an external file; only self-contained images are accepted"
    )]
    ExternalDataFile,
    #[error("the {0} image header is damaged or unsupported")]
    Damaged(&'static str),
    #[error(
        "the vmdk image is of type {0:?}; only monolithicSparse and streamOptimized are accepted"
    )]
    VmdkType(String),
}

/// The result of a successful inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub virtual_size: Option<i64>,
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The format the content says it is, from magic numbers.
pub fn detect(head: &[u8]) -> &'static str {
    if head.starts_with(b"QFI\xfb") {
        "qcow2"
    } else if head.starts_with(b"KDMV") || head.starts_with(b"# Disk DescriptorFile") {
        "vmdk"
    } else if head.starts_with(b"vhdxfile") {
        "vhdx"
    } else if head.starts_with(b"conectix") {
        "vhd"
    } else if le_u32(head, 0x40) == Some(0xbeda_107f) {
        "vdi"
    } else if head.get(0x8001..0x8006) == Some(b"CD001") {
        "iso"
    } else {
        "raw"
    }
}

/// Inspects a complete image file against the disk format it claims.
pub fn inspect<F: Read + Seek>(
    file: &mut F,
    size: u64,
    claimed: &str,
) -> Result<Inspection, FormatError> {
    let mut head = vec![0u8; HEAD_BYTES.min(size as usize)];
    file.seek(SeekFrom::Start(0))
        .map_err(|_| FormatError::Damaged("image"))?;
    file.read_exact(&mut head)
        .map_err(|_| FormatError::Damaged("image"))?;
    let found = detect(&head);
    let mismatch = || FormatError::Mismatch {
        claimed: claimed.to_owned(),
        found,
    };
    match claimed {
        "qcow2" if found == "qcow2" => qcow2(&head),
        "vmdk" if found == "vmdk" => vmdk(file, &head),
        "vhdx" if found == "vhdx" => Ok(Inspection { virtual_size: None }),
        "vdi" if found == "vdi" => Ok(Inspection {
            virtual_size: le_u64(&head, 0x170).map(|v| v as i64),
        }),
        "vhd" => vhd(file, &head, size).ok_or_else(mismatch),
        "iso" if found == "iso" => Ok(Inspection {
            virtual_size: Some(size as i64),
        }),
        // A raw disk may hold anything but another format's container, which the hypervisor
        // would be tricked into reading as that format.
        "raw" if matches!(found, "raw" | "iso") => Ok(Inspection {
            virtual_size: Some(size as i64),
        }),
        "ami" | "ari" | "aki" | "ploop" if found == "raw" => Ok(Inspection {
            virtual_size: Some(size as i64),
        }),
        _ => Err(mismatch()),
    }
}

fn qcow2(head: &[u8]) -> Result<Inspection, FormatError> {
    let damaged = FormatError::Damaged("qcow2");
    let version = be_u32(head, 4).ok_or(damaged.clone())?;
    if !(2..=3).contains(&version) {
        return Err(damaged);
    }
    if be_u64(head, 8).ok_or(damaged.clone())? != 0 {
        return Err(FormatError::BackingFile);
    }
    let virtual_size = be_u64(head, 24).ok_or(damaged.clone())?;
    if version == 3 {
        let incompatible = be_u64(head, 72).ok_or(damaged.clone())?;
        if incompatible & (1 << 2) != 0 {
            return Err(FormatError::ExternalDataFile);
        }
        // Header extensions: the external data file name (0x44415441) is refused too.
        let header_length = be_u32(head, 100).ok_or(damaged.clone())? as usize;
        let mut at = header_length.max(104);
        while let (Some(kind), Some(len)) = (be_u32(head, at), be_u32(head, at + 4)) {
            match kind {
                0 => break,
                0x4441_5441 => return Err(FormatError::ExternalDataFile),
                _ => at += 8 + (len as usize).div_ceil(8) * 8,
            }
        }
    }
    Ok(Inspection {
        virtual_size: Some(virtual_size as i64),
    })
}

fn vmdk<F: Read + Seek>(file: &mut F, head: &[u8]) -> Result<Inspection, FormatError> {
    let damaged = FormatError::Damaged("vmdk");
    if !head.starts_with(b"KDMV") {
        // A bare descriptor only points at other files.
        return Err(FormatError::VmdkType("descriptor only".into()));
    }
    let capacity = le_u64(head, 12).ok_or(damaged.clone())?;
    let descriptor_offset = le_u64(head, 28).ok_or(damaged.clone())?;
    let descriptor_size = le_u64(head, 36).ok_or(damaged.clone())?;
    if descriptor_offset > 0 && descriptor_size > 0 && descriptor_size <= 2048 {
        let mut descriptor = vec![0u8; (descriptor_size * 512) as usize];
        file.seek(SeekFrom::Start(descriptor_offset * 512))
            .map_err(|_| damaged.clone())?;
        file.read_exact(&mut descriptor)
            .map_err(|_| damaged.clone())?;
        let text = String::from_utf8_lossy(&descriptor);
        let create_type = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("createType="))
            .map(|t| t.trim_matches('"').to_owned())
            .unwrap_or_default();
        if !matches!(create_type.as_str(), "monolithicSparse" | "streamOptimized") {
            return Err(FormatError::VmdkType(create_type));
        }
    }
    Ok(Inspection {
        virtual_size: Some((capacity * 512) as i64),
    })
}

/// A VHD has its footer at the end (fixed) and a copy at the start (dynamic).
fn vhd<F: Read + Seek>(file: &mut F, head: &[u8], size: u64) -> Option<Inspection> {
    let footer = if head.starts_with(b"conectix") {
        head[..512.min(head.len())].to_vec()
    } else {
        let mut tail = vec![0u8; 512];
        file.seek(SeekFrom::Start(size.checked_sub(512)?)).ok()?;
        file.read_exact(&mut tail).ok()?;
        tail
    };
    if !footer.starts_with(b"conectix") {
        return None;
    }
    Some(Inspection {
        virtual_size: be_u64(&footer, 48).map(|v| v as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn qcow2_header(version: u32, backing_offset: u64, incompatible: u64) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[8..16].copy_from_slice(&backing_offset.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        h[72..80].copy_from_slice(&incompatible.to_be_bytes());
        h[100..104].copy_from_slice(&112u32.to_be_bytes());
        h
    }

    fn run(data: &[u8], claimed: &str) -> Result<Inspection, FormatError> {
        inspect(&mut Cursor::new(data), data.len() as u64, claimed)
    }

    #[test]
    fn reads_the_virtual_size_of_a_qcow2() {
        assert_eq!(
            run(&qcow2_header(3, 0, 0), "qcow2").unwrap().virtual_size,
            Some(1 << 30)
        );
    }

    #[test]
    fn refuses_backing_and_external_data_files() {
        assert_eq!(
            run(&qcow2_header(3, 0x200, 0), "qcow2"),
            Err(FormatError::BackingFile)
        );
        assert_eq!(
            run(&qcow2_header(3, 0, 4), "qcow2"),
            Err(FormatError::ExternalDataFile)
        );
        let mut with_extension = qcow2_header(3, 0, 0);
        with_extension[112..116].copy_from_slice(&0x4441_5441u32.to_be_bytes());
        with_extension[116..120].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(
            run(&with_extension, "qcow2"),
            Err(FormatError::ExternalDataFile)
        );
    }

    #[test]
    fn refuses_content_that_is_not_what_it_claims() {
        assert!(matches!(
            run(b"just some bytes", "qcow2"),
            Err(FormatError::Mismatch { .. })
        ));
        // A qcow2 uploaded as "raw" would be read as qcow2 by a careless hypervisor.
        assert!(matches!(
            run(&qcow2_header(3, 0, 0), "raw"),
            Err(FormatError::Mismatch { .. })
        ));
        assert_eq!(run(b"plain data", "raw").unwrap().virtual_size, Some(10));
    }

    #[test]
    fn recognises_iso_and_vhd() {
        let mut iso = vec![0u8; 0x9000];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert!(run(&iso, "iso").is_ok());
        let mut vhd = vec![0u8; 2048];
        let at = vhd.len() - 512;
        vhd[at..at + 8].copy_from_slice(b"conectix");
        vhd[at + 48..at + 56].copy_from_slice(&4096u64.to_be_bytes());
        assert_eq!(run(&vhd, "vhd").unwrap().virtual_size, Some(4096));
    }
}
