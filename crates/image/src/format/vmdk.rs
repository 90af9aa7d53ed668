//! VMDK: a monolithicSparse or streamOptimized image whose header, footer and embedded
//! descriptor name no file but itself (CVE-2022-47951's extents are host files).

use std::io::{Read, Seek};

use super::{FormatError, Inspection, Source, le_u32, le_u64, sized};

/// Where a monolithicSparse VMDK keeps its embedded descriptor (sector 1), and the most of it
/// QEMU reads (`vmdk_read_desc`).
const VMDK_DESCRIPTOR_SECTOR: u64 = 1;
const VMDK_DESCRIPTOR_MAX: u64 = (1 << 20) - 1;
/// What QEMU reads at offset 512 of every sparse VMDK to find `parentFileNameHint` and the
/// CIDs (`DESC_SIZE`), whatever the header says about the descriptor.
const VMDK_QEMU_DESC_SIZE: usize = 20 * 512;
const VMDK_GD_AT_END: u64 = u64::MAX;

/// A hosted sparse extent header (VMDK4), after the `KDMV` magic.
struct Vmdk4Header {
    version: u32,
    capacity: u64,
    granularity: u64,
    desc_offset: u64,
    desc_size: u64,
    gtes_per_gt: u32,
    gd_offset: u64,
}

impl Vmdk4Header {
    fn parse(b: &[u8]) -> Option<Self> {
        Some(Self {
            version: le_u32(b, 4)?,
            capacity: le_u64(b, 12)?,
            granularity: le_u64(b, 20)?,
            desc_offset: le_u64(b, 28)?,
            desc_size: le_u64(b, 36)?,
            gtes_per_gt: le_u32(b, 44)?,
            gd_offset: le_u64(b, 56)?,
        })
    }
}

pub(super) fn inspect<F: Read + Seek>(
    source: &mut Source<'_, F>,
    head: &[u8],
) -> Result<Inspection, FormatError> {
    let damaged = FormatError::Damaged("vmdk");
    if head.starts_with(b"COWD") {
        return Err(FormatError::VmdkType("vmfsSparse (COWD)".into()));
    }
    if !head.starts_with(b"KDMV") {
        // A descriptor file only points at other files.
        return Err(FormatError::VmdkType("descriptor file".into()));
    }
    if head.len() < 512 {
        return Err(damaged);
    }
    let header = Vmdk4Header::parse(head).ok_or(damaged.clone())?;
    // QEMU (vmdk_open_vmdk4): a header with no capacity and a descriptor offset makes it
    // read the descriptor there as a descriptor *file*, whose every accepted type
    // (monolithicFlat, vmfs, twoGbMaxExtent*, ...) reads its extents from other files —
    // whatever desc_size says.
    if header.capacity == 0 && header.desc_offset != 0 {
        return Err(FormatError::VmdkDescriptor(
            "is read as a separate descriptor file (capacity 0 with a descriptor offset)".into(),
        ));
    }
    let header = if header.gd_offset == VMDK_GD_AT_END {
        vmdk_footer(source, &header)?
    } else {
        header
    };
    if !(1..=3).contains(&header.version)
        || header.capacity == 0
        || header.gtes_per_gt == 0
        || header.gtes_per_gt > 512
        || header.granularity == 0
        || header.granularity > 0x20_0000
    {
        return Err(damaged);
    }
    if header.desc_offset != VMDK_DESCRIPTOR_SECTOR || header.desc_size == 0 {
        return Err(FormatError::VmdkDescriptor(
            "is not embedded where a monolithicSparse image keeps it".into(),
        ));
    }
    let virtual_size = sized(header.capacity, 512, "vmdk")?;
    let descriptor_len = header
        .desc_size
        .saturating_mul(512)
        .min(VMDK_DESCRIPTOR_MAX) as usize;
    let region = source.read_up_to(512, descriptor_len.max(VMDK_QEMU_DESC_SIZE), "vmdk")?;
    if region.len() < descriptor_len {
        return Err(damaged);
    }
    let until_nul =
        |bytes: &[u8]| -> Vec<u8> { bytes.split(|b| *b == 0).next().unwrap_or_default().to_vec() };
    // QEMU looks for a parent in the first DESC_SIZE bytes at 512, descriptor or not.
    let seen_by_qemu = until_nul(&region[..region.len().min(VMDK_QEMU_DESC_SIZE)]);
    if contains_ignore_case(&seen_by_qemu, b"parentFileNameHint") {
        return Err(FormatError::BackingFile("vmdk"));
    }
    check_vmdk_descriptor(&until_nul(&region[..descriptor_len]))?;
    Ok(virtual_size)
}

/// A streamOptimized VMDK's footer takes precedence over its header (QEMU reads the one at
/// 1536 bytes from the end): it must be well formed and describe the same descriptor.
fn vmdk_footer<F: Read + Seek>(
    source: &mut Source<'_, F>,
    header: &Vmdk4Header,
) -> Result<Vmdk4Header, FormatError> {
    let damaged = FormatError::Damaged("vmdk");
    let at = source.size.checked_sub(1536).ok_or(damaged.clone())?;
    if at < 512 {
        return Err(damaged);
    }
    let tail = source.read_at(at, 1536, "vmdk")?;
    let marker_ok = |m: &[u8], value: u64, kind: u32| {
        le_u64(m, 0) == Some(value)
            && le_u32(m, 8) == Some(0)
            && le_u32(m, 12) == Some(kind)
            && m[16..512].iter().all(|b| *b == 0)
    };
    let footer_marker = &tail[..512];
    let footer = &tail[512..1024];
    let end_of_stream = &tail[1024..];
    // The footer marker's value is the footer's sector count (1); QEMU ignores it.
    let footer_marker_ok = le_u32(footer_marker, 8) == Some(0)
        && le_u32(footer_marker, 12) == Some(3)
        && footer_marker[16..].iter().all(|b| *b == 0);
    if !footer_marker_ok || !marker_ok(end_of_stream, 0, 0) || !footer.starts_with(b"KDMV") {
        return Err(damaged);
    }
    let parsed = Vmdk4Header::parse(footer).ok_or(damaged.clone())?;
    if parsed.gd_offset == VMDK_GD_AT_END
        || parsed.version != header.version
        || parsed.desc_offset != header.desc_offset
        || parsed.desc_size != header.desc_size
    {
        return Err(damaged);
    }
    Ok(parsed)
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Every line of an embedded descriptor must be understood: comments, `ddb.*`, `key=value`
/// header fields, and exactly one extent, `SPARSE` with a plain file name (the image itself).
fn check_vmdk_descriptor(descriptor: &[u8]) -> Result<(), FormatError> {
    let refuse = |why: String| Err(FormatError::VmdkDescriptor(why));
    let Ok(text) = std::str::from_utf8(descriptor) else {
        return refuse("is not text".into());
    };
    if !text.is_ascii() {
        return refuse("is not ASCII text".into());
    }
    let mut create_type: Option<String> = None;
    let mut extents = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with("ddb.") {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        if ["rw", "rdonly", "noaccess"]
            .iter()
            .any(|a| first.eq_ignore_ascii_case(a))
        {
            check_vmdk_extent(line)?;
            extents += 1;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return refuse(format!("has a line it cannot use: {:?}", clip(line)));
        };
        if key.contains(char::is_whitespace) || key.is_empty() {
            return refuse(format!("has a line it cannot use: {:?}", clip(line)));
        }
        if key.eq_ignore_ascii_case("parentFileNameHint") {
            return Err(FormatError::BackingFile("vmdk"));
        }
        if key.eq_ignore_ascii_case("createType") {
            let value = value.trim().trim_matches('"');
            if create_type.is_some() {
                return refuse("names its type twice".into());
            }
            if !["monolithicSparse", "streamOptimized"]
                .iter()
                .any(|t| value.eq_ignore_ascii_case(t))
            {
                return Err(FormatError::VmdkType(clip(value)));
            }
            create_type = Some(value.to_owned());
        }
    }
    if create_type.is_none() {
        return Err(FormatError::VmdkType("none given".into()));
    }
    if extents != 1 {
        return refuse(format!("has {extents} extents"));
    }
    Ok(())
}

/// `RW <sectors> SPARSE "<name>"`: no flat or VMFS extent, no offset, no path.
fn check_vmdk_extent(line: &str) -> Result<(), FormatError> {
    let bad = || FormatError::VmdkDescriptor(format!("has an extent it refuses: {:?}", clip(line)));
    let (fields, rest) = line.split_once('"').ok_or_else(bad)?;
    let (name, after) = rest.split_once('"').ok_or_else(bad)?;
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let [_, sectors, kind] = fields.as_slice() else {
        return Err(bad());
    };
    let sparse = kind.eq_ignore_ascii_case("SPARSE");
    let sectors_ok = sectors.parse::<u64>().is_ok_and(|s| s > 0);
    let plain_name = !name.is_empty()
        && !name.contains(['/', '\\', ':'])
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if sparse && sectors_ok && plain_name && after.trim().is_empty() {
        Ok(())
    } else {
        Err(bad())
    }
}

/// At most 64 characters of untrusted text, for messages.
fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}
