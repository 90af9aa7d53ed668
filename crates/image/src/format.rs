//! What an image file really is. Glance and Nova have both had CVEs where an image whose
//! header names another file (a qcow2 backing or external data file, a VMDK descriptor whose
//! extents are host files: CVE-2022-47951) made the host read its own files into a guest's
//! disk; so uploads are inspected and refused unless the content is what `disk_format`
//! claims, refers to no other file wherever QEMU would look for one, and yields a virtual
//! size that fits in an `i64` (computed with checked arithmetic: a header cannot wrap it).
//!
//! The rules follow what QEMU's block drivers read when they open a file (block/vmdk.c,
//! vhdx.c, parallels.c, qcow2.c, vpc.c, vdi.c) and oslo.utils' format inspector: where QEMU
//! would parse something, it is parsed here first and checked; where the two differ, the
//! stricter rule wins.

use std::io::{Read, Seek, SeekFrom};

mod vmdk;

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
    #[error(
        "the {0} image refers to a backing file (a parent image); only self-contained images are accepted"
    )]
    BackingFile(&'static str),
    #[error(
        "the qcow2 image keeps its data in an external file; only self-contained images are accepted"
    )]
    ExternalDataFile,
    #[error("the {0} image header is damaged, truncated or unsupported")]
    Damaged(&'static str),
    #[error("the virtual size in the {0} header is too large")]
    SizeOverflow(&'static str),
    #[error(
        "the vmdk image is of type {0:?}; only monolithicSparse and streamOptimized are accepted"
    )]
    VmdkType(String),
    #[error("the vmdk descriptor {0}; only a single sparse extent in the image itself is accepted")]
    VmdkDescriptor(String),
}

/// The result of a successful inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The size of the disk a guest sees, in bytes.
    pub virtual_size: i64,
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}
fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// `count * unit` bytes as a virtual size, refused when it does not fit an `i64`.
fn sized(count: u64, unit: u64, format: &'static str) -> Result<Inspection, FormatError> {
    count
        .checked_mul(unit)
        .and_then(|bytes| i64::try_from(bytes).ok())
        .map(|virtual_size| Inspection { virtual_size })
        .ok_or(FormatError::SizeOverflow(format))
}

/// The format the content says it is, from magic numbers.
pub fn detect(head: &[u8]) -> &'static str {
    if head.starts_with(b"QFI\xfb") {
        "qcow2"
    } else if head.starts_with(b"KDMV")
        || head.starts_with(b"COWD")
        || head.starts_with(b"# Disk DescriptorFile")
        || vmdk_text_descriptor(head)
    {
        "vmdk"
    } else if head.starts_with(b"vhdxfile") {
        "vhdx"
    } else if head.starts_with(b"conectix") {
        "vhd"
    } else if head.starts_with(b"WithoutFreeSpace") || head.starts_with(b"WithouFreSpacExt") {
        "ploop"
    } else if le_u32(head, 0x40) == Some(0xbeda_107f) {
        "vdi"
    } else if head.get(0x8001..0x8006) == Some(b"CD001") {
        "iso"
    } else {
        "raw"
    }
}

/// QEMU's probe for a text VMDK descriptor: comment and blank lines, then `version=1|2|3`.
fn vmdk_text_descriptor(head: &[u8]) -> bool {
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"#") || line.iter().all(|b| *b == b' ') {
            continue;
        }
        return matches!(line, b"version=1" | b"version=2" | b"version=3");
    }
    false
}

/// The file being inspected, read at offsets that are checked against its size.
struct Source<'a, F> {
    file: &'a mut F,
    size: u64,
}

impl<F: Read + Seek> Source<'_, F> {
    /// Exactly `len` bytes at `offset`; a damaged `format` when the file is shorter.
    fn read_at(
        &mut self,
        offset: u64,
        len: usize,
        format: &'static str,
    ) -> Result<Vec<u8>, FormatError> {
        let end = offset
            .checked_add(len as u64)
            .ok_or(FormatError::Damaged(format))?;
        if end > self.size {
            return Err(FormatError::Damaged(format));
        }
        let mut buffer = vec![0u8; len];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut buffer))
            .map_err(|_| FormatError::Damaged(format))?;
        Ok(buffer)
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    fn read_up_to(
        &mut self,
        offset: u64,
        len: usize,
        format: &'static str,
    ) -> Result<Vec<u8>, FormatError> {
        let available = self.size.saturating_sub(offset);
        let len = usize::try_from(available).map_or(len, |a| a.min(len));
        self.read_at(offset, len, format)
    }
}

/// Inspects a complete image file against the disk format it claims.
pub fn inspect<F: Read + Seek>(
    file: &mut F,
    size: u64,
    claimed: &str,
) -> Result<Inspection, FormatError> {
    let mut source = Source { file, size };
    let head = source.read_up_to(0, HEAD_BYTES, "image")?;
    let found = detect(&head);
    let mismatch = || FormatError::Mismatch {
        claimed: claimed.to_owned(),
        found,
    };
    let whole_file = || sized(size, 1, "image");
    match claimed {
        "qcow2" if found == "qcow2" => qcow2(&head),
        "vmdk" if found == "vmdk" => vmdk::inspect(&mut source, &head),
        "vhdx" if found == "vhdx" => vhdx(&mut source),
        "ploop" if found == "ploop" => ploop(&head),
        "vdi" if found == "vdi" => vdi(&head),
        "vhd" => vhd(&mut source, &head)?.ok_or_else(mismatch),
        "iso" if found == "iso" => whole_file(),
        // A raw disk may hold anything but another format's container, which the hypervisor
        // would be tricked into reading as that format.
        "raw" if matches!(found, "raw" | "iso") => whole_file(),
        "ami" | "ari" | "aki" if found == "raw" => whole_file(),
        _ => Err(mismatch()),
    }
}

/// qcow2 incompatible features: dirty, corrupt, external data file, compression type,
/// extended L2 entries. The data file bit is refused on its own; bits QEMU does not know
/// are refused as unsupported (as oslo.utils does).
const QCOW2_DIRTY: u64 = 1 << 0;
const QCOW2_DATA_FILE: u64 = 1 << 2;
const QCOW2_COMPRESSION: u64 = 1 << 3;
const QCOW2_EXTENDED_L2: u64 = 1 << 4;

fn qcow2(head: &[u8]) -> Result<Inspection, FormatError> {
    let damaged = FormatError::Damaged("qcow2");
    let version = be_u32(head, 4).ok_or(damaged.clone())?;
    if !(2..=3).contains(&version) {
        return Err(damaged);
    }
    if be_u64(head, 8).ok_or(damaged.clone())? != 0 {
        return Err(FormatError::BackingFile("qcow2"));
    }
    let virtual_size = be_u64(head, 24).ok_or(damaged.clone())?;
    // Header extensions follow the header: at 72 for version 2, at header_length for 3.
    let mut at = 72usize;
    if version == 3 {
        let incompatible = be_u64(head, 72).ok_or(damaged.clone())?;
        if incompatible & QCOW2_DATA_FILE != 0 {
            return Err(FormatError::ExternalDataFile);
        }
        if incompatible & !(QCOW2_DIRTY | QCOW2_COMPRESSION | QCOW2_EXTENDED_L2) != 0 {
            return Err(damaged);
        }
        let header_length = be_u32(head, 100).ok_or(damaged.clone())? as usize;
        at = header_length.max(104);
    }
    // The external data file's name (0x44415441) is refused wherever it appears.
    while let (Some(kind), Some(len)) = (be_u32(head, at), be_u32(head, at + 4)) {
        match kind {
            0 => break,
            0x4441_5441 => return Err(FormatError::ExternalDataFile),
            _ => at = at + 8 + (len as usize).div_ceil(8) * 8,
        }
    }
    sized(virtual_size, 1, "qcow2")
}

/// An MS GUID as stored on disk: the first three fields little-endian.
const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

const VHDX_METADATA_REGION: [u8; 16] = guid(
    0x8b7c_a206,
    0x4790,
    0x4b9a,
    [0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e],
);
const VHDX_FILE_PARAMETERS: [u8; 16] = guid(
    0xcaa1_6737,
    0xfa36,
    0x4d43,
    [0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b],
);
const VHDX_VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2fa5_4224,
    0xcd1b,
    0x4876,
    [0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8],
);
const VHDX_PARENT_LOCATOR: [u8; 16] = guid(
    0xa8d3_5f2d,
    0xb30b,
    0x454d,
    [0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c],
);
/// The region table (at 192 KiB) and the limits on its and the metadata table's entries.
const VHDX_REGION_TABLE: u64 = 192 * 1024;
const VHDX_MAX_ENTRIES: u64 = 2047;
const VHDX_HAS_PARENT: u32 = 1 << 1;

/// VHDX: the region table names the metadata region, whose table gives the "Virtual Disk
/// Size" item; a differencing disk (file parameter HasParent, or a parent locator) is
/// refused.
fn vhdx<F: Read + Seek>(source: &mut Source<'_, F>) -> Result<Inspection, FormatError> {
    let damaged = || FormatError::Damaged("vhdx");
    let table = source.read_at(VHDX_REGION_TABLE, 16, "vhdx")?;
    let count = u64::from(le_u32(&table, 8).ok_or_else(damaged)?);
    if &table[..4] != b"regi" || count > VHDX_MAX_ENTRIES {
        return Err(damaged());
    }
    let entries = source.read_at(VHDX_REGION_TABLE + 16, (count * 32) as usize, "vhdx")?;
    let (meta_offset, meta_length) = entries
        .chunks_exact(32)
        .find(|e| e[..16] == VHDX_METADATA_REGION)
        .and_then(|e| Some((le_u64(e, 16)?, u64::from(le_u32(e, 24)?))))
        .ok_or_else(damaged)?;
    let table = source.read_at(meta_offset, 32, "vhdx")?;
    let count = u64::from(le_u16(&table, 10).ok_or_else(damaged)?);
    if &table[..8] != b"metadata" || count > VHDX_MAX_ENTRIES {
        return Err(damaged());
    }
    let items = source.read_at(meta_offset + 32, (count * 32) as usize, "vhdx")?;
    let mut virtual_size = None;
    for item in items.chunks_exact(32) {
        let id: &[u8] = &item[..16];
        let offset = u64::from(le_u32(item, 16).ok_or_else(damaged)?);
        let length = u64::from(le_u32(item, 20).ok_or_else(damaged)?);
        if offset
            .checked_add(length)
            .is_none_or(|end| end > meta_length)
        {
            return Err(damaged());
        }
        let at = meta_offset.checked_add(offset).ok_or_else(damaged)?;
        if id == VHDX_PARENT_LOCATOR {
            return Err(FormatError::BackingFile("vhdx"));
        } else if id == VHDX_FILE_PARAMETERS {
            let parameters = source.read_at(at, 8, "vhdx")?;
            if le_u32(&parameters, 4).ok_or_else(damaged)? & VHDX_HAS_PARENT != 0 {
                return Err(FormatError::BackingFile("vhdx"));
            }
        } else if id == VHDX_VIRTUAL_DISK_SIZE {
            if length < 8 || virtual_size.is_some() {
                return Err(damaged());
            }
            virtual_size = le_u64(&source.read_at(at, 8, "vhdx")?, 0);
        }
    }
    sized(virtual_size.ok_or_else(damaged)?, 1, "vhdx")
}

/// Parallels (ploop): the 64-byte header QEMU's parallels driver reads.
fn ploop(head: &[u8]) -> Result<Inspection, FormatError> {
    let damaged = FormatError::Damaged("ploop");
    if head.len() < 64 || le_u32(head, 16) != Some(2) {
        return Err(damaged);
    }
    let tracks = le_u32(head, 28).ok_or(damaged.clone())?;
    let bat_entries = le_u32(head, 32).ok_or(damaged.clone())?;
    let mut sectors = le_u64(head, 36).ok_or(damaged.clone())?;
    if tracks == 0 || tracks > i32::MAX as u32 / 513 || bat_entries > i32::MAX as u32 / 4 {
        return Err(damaged);
    }
    if head.starts_with(b"WithoutFreeSpace") {
        // The old format keeps a 32-bit sector count (QEMU masks the rest).
        sectors &= 0xffff_ffff;
    }
    sized(sectors, 512, "ploop")
}

/// VirtualBox VDI: version 1.1, dynamic or static (a differencing image has a parent).
fn vdi(head: &[u8]) -> Result<Inspection, FormatError> {
    let damaged = FormatError::Damaged("vdi");
    if le_u32(head, 0x44) != Some(0x0001_0001) {
        return Err(damaged);
    }
    match le_u32(head, 0x4c) {
        Some(1 | 2) => {}
        Some(4) => return Err(FormatError::BackingFile("vdi")),
        _ => return Err(damaged),
    }
    sized(le_u64(head, 0x170).ok_or(damaged)?, 1, "vdi")
}

/// A VHD has its footer at the end (fixed) and a copy at the start (dynamic); `None` when
/// there is no footer. A differencing VHD names a parent and is refused. The size is the
/// larger of the footer's current size and its geometry (QEMU uses one or the other).
fn vhd<F: Read + Seek>(
    source: &mut Source<'_, F>,
    head: &[u8],
) -> Result<Option<Inspection>, FormatError> {
    let footer = if head.starts_with(b"conectix") {
        head[..512.min(head.len())].to_vec()
    } else {
        let Some(at) = source.size.checked_sub(512) else {
            return Ok(None);
        };
        source.read_at(at, 512, "vhd")?
    };
    if !footer.starts_with(b"conectix") {
        return Ok(None);
    }
    let damaged = FormatError::Damaged("vhd");
    match be_u32(&footer, 60) {
        Some(2 | 3) => {}
        Some(4) => return Err(FormatError::BackingFile("vhd")),
        _ => return Err(damaged),
    }
    let current = be_u64(&footer, 48).ok_or(damaged.clone())?;
    let cylinders = u64::from(be_u16(&footer, 56).ok_or(damaged.clone())?);
    let heads = u64::from(*footer.get(58).ok_or(damaged.clone())?);
    let sectors = u64::from(*footer.get(59).ok_or(damaged)?);
    let geometry = cylinders * heads * sectors * 512;
    sized(current.max(geometry), 1, "vhd").map(Some)
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the tests compare with what qemu-img reads"
)]
mod tests;
