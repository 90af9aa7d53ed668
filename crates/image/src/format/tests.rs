//! Over 600 lines on purpose: well-formed and hostile headers per format, read as one list.
//!
//! The inspector against well-formed images and a family of hostile headers: each of the
//! latter is something a tenant could upload to make QEMU read a host file or to pass the
//! flavor's disk limit with a size that wraps.

use super::*;
use std::io::Cursor;

fn run(data: &[u8], claimed: &str) -> Result<Inspection, FormatError> {
    inspect(&mut Cursor::new(data), data.len() as u64, claimed)
}

fn size_of(data: &[u8], claimed: &str) -> i64 {
    match run(data, claimed) {
        Ok(i) => i.virtual_size,
        Err(e) => panic!("{claimed} refused: {e}"),
    }
}

fn put_le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_le64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn put_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn put_be64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

// ---------------------------------------------------------------- qcow2

fn qcow2_header(version: u32, backing_offset: u64, incompatible: u64) -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    h[..4].copy_from_slice(b"QFI\xfb");
    put_be32(&mut h, 4, version);
    put_be64(&mut h, 8, backing_offset);
    put_be64(&mut h, 24, 1 << 30);
    put_be64(&mut h, 72, incompatible);
    put_be32(&mut h, 100, 112);
    h
}

#[test]
fn reads_the_virtual_size_of_a_qcow2() {
    assert_eq!(size_of(&qcow2_header(3, 0, 0), "qcow2"), 1 << 30);
    assert_eq!(size_of(&qcow2_header(2, 0, 0), "qcow2"), 1 << 30);
    // Dirty and compression-type bits are harmless.
    assert!(run(&qcow2_header(3, 0, 1 | 8), "qcow2").is_ok());
}

#[test]
fn hostile_qcow2_headers_are_refused() {
    assert_eq!(
        run(&qcow2_header(3, 0x200, 0), "qcow2"),
        Err(FormatError::BackingFile("qcow2"))
    );
    assert_eq!(
        run(&qcow2_header(3, 0, 4), "qcow2"),
        Err(FormatError::ExternalDataFile)
    );
    // The data file's name as a header extension, in version 3 and in version 2.
    let mut with_extension = qcow2_header(3, 0, 0);
    put_be32(&mut with_extension, 112, 0x4441_5441);
    put_be32(&mut with_extension, 116, 8);
    assert_eq!(
        run(&with_extension, "qcow2"),
        Err(FormatError::ExternalDataFile)
    );
    let mut v2 = qcow2_header(2, 0, 0);
    v2[72..80].fill(0);
    put_be32(&mut v2, 72, 0x4441_5441);
    put_be32(&mut v2, 76, 8);
    assert_eq!(run(&v2, "qcow2"), Err(FormatError::ExternalDataFile));
    // Feature bits QEMU does not know, and versions it does not.
    assert_eq!(
        run(&qcow2_header(3, 0, 1 << 40), "qcow2"),
        Err(FormatError::Damaged("qcow2"))
    );
    assert_eq!(
        run(&qcow2_header(1, 0, 0), "qcow2"),
        Err(FormatError::Damaged("qcow2"))
    );
    // A size past i64::MAX would turn negative.
    let mut huge = qcow2_header(3, 0, 0);
    put_be64(&mut huge, 24, u64::MAX);
    assert_eq!(run(&huge, "qcow2"), Err(FormatError::SizeOverflow("qcow2")));
    // Truncated headers.
    assert_eq!(
        run(b"QFI\xfb\0\0\0\x03", "qcow2"),
        Err(FormatError::Damaged("qcow2"))
    );
    assert_eq!(
        run(&qcow2_header(3, 0, 0)[..90], "qcow2"),
        Err(FormatError::Damaged("qcow2"))
    );
}

// ---------------------------------------------------------------- vmdk

const GOOD_DESCRIPTOR: &str = "# Disk DescriptorFile\nversion=1\nCID=5d06f5b2\n\
    parentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\n\
    RW 2048 SPARSE \"disk.vmdk\"\n\n# The Disk Data Base\n#DDB\n\n\
    ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n";

/// A 64 KiB sparse VMDK as qemu-img makes it, with `descriptor` at sector 1.
fn vmdk(capacity: u64, desc_offset: u64, desc_size: u64, descriptor: &str) -> Vec<u8> {
    let mut h = vec![0u8; 64 * 1024];
    h[..4].copy_from_slice(b"KDMV");
    put_le32(&mut h, 4, 1);
    put_le32(&mut h, 8, 3);
    put_le64(&mut h, 12, capacity);
    put_le64(&mut h, 20, 128);
    put_le64(&mut h, 28, desc_offset);
    put_le64(&mut h, 36, desc_size);
    put_le32(&mut h, 44, 512);
    put_le64(&mut h, 48, 0x15);
    put_le64(&mut h, 56, 0x22);
    put_le64(&mut h, 64, 0x80);
    let at = if desc_offset > 0 && desc_offset < 128 {
        desc_offset as usize * 512
    } else {
        512
    };
    h[at..at + descriptor.len()].copy_from_slice(descriptor.as_bytes());
    h
}

/// The descriptor of the CVE-2022-47951 attack: a flat extent that is a host file.
const FLAT_HOST_FILE: &str = "# Disk DescriptorFile\nversion=1\nCID=12345678\n\
    parentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"/etc/passwd\" 0\n";

#[test]
fn reads_the_virtual_size_of_a_sparse_vmdk() {
    assert_eq!(
        size_of(&vmdk(2048, 1, 20, GOOD_DESCRIPTOR), "vmdk"),
        2048 * 512
    );
    let stream = GOOD_DESCRIPTOR.replace("monolithicSparse", "streamOptimized");
    assert_eq!(size_of(&vmdk(2048, 1, 20, &stream), "vmdk"), 2048 * 512);
}

#[test]
fn the_cve_2022_47951_vmdk_is_refused_whatever_desc_size_says() {
    // capacity 0 + a descriptor offset: QEMU reads the descriptor there as a descriptor
    // file, whatever desc_size says (0 here, which the old check skipped).
    for (desc_offset, desc_size) in [(1, 0), (1, 1), (3, 0), (1, 4096), (u64::MAX, 0)] {
        let file = vmdk(0, desc_offset, desc_size, FLAT_HOST_FILE);
        assert!(
            matches!(run(&file, "vmdk"), Err(FormatError::VmdkDescriptor(_))),
            "desc_offset {desc_offset} desc_size {desc_size}: {:?}",
            run(&file, "vmdk")
        );
    }
}

#[test]
fn hostile_vmdk_descriptors_are_refused() {
    let refused = |descriptor: &str| {
        let result = run(&vmdk(2048, 1, 20, descriptor), "vmdk");
        assert!(result.is_err(), "accepted: {descriptor}");
        result.unwrap_err()
    };
    // The embedded descriptor of a sparse image names another type or other files.
    assert!(matches!(
        refused(FLAT_HOST_FILE),
        FormatError::VmdkType(t) if t == "monolithicFlat"
    ));
    for extent in [
        "RW 8 FLAT \"/etc/passwd\" 0",
        "RW 8 VMFS \"/dev/sda\"",
        "RW 8 SPARSE \"/var/lib/onestack/onestack.db\"",
        "RW 8 SPARSE \"../../fernet-keys/0\"",
        "RW 8 SPARSE \"C:disk.vmdk\"",
        "RW 8 SPARSE \"disk.vmdk\" 0",
        "RW 8 SESPARSE \"disk.vmdk\"",
        "RW 0 SPARSE \"disk.vmdk\"",
        "RDONLY 8 FLAT \"x\" 0",
    ] {
        let descriptor = GOOD_DESCRIPTOR.replace("RW 2048 SPARSE \"disk.vmdk\"", extent);
        assert!(
            matches!(refused(&descriptor), FormatError::VmdkDescriptor(_)),
            "{extent}"
        );
    }
    // Two extents, none, no type, two types, a parent, a line that means nothing.
    let two = GOOD_DESCRIPTOR.replace(
        "RW 2048 SPARSE \"disk.vmdk\"",
        "RW 1024 SPARSE \"disk.vmdk\"\nRW 1024 SPARSE \"disk.vmdk\"",
    );
    assert!(matches!(refused(&two), FormatError::VmdkDescriptor(_)));
    let none = GOOD_DESCRIPTOR.replace("RW 2048 SPARSE \"disk.vmdk\"", "");
    assert!(matches!(refused(&none), FormatError::VmdkDescriptor(_)));
    let untyped = GOOD_DESCRIPTOR.replace("createType=\"monolithicSparse\"", "");
    assert!(matches!(refused(&untyped), FormatError::VmdkType(_)));
    let twice = GOOD_DESCRIPTOR.replace(
        "createType=\"monolithicSparse\"",
        "createType=\"monolithicSparse\"\ncreateType=\"monolithicFlat\"",
    );
    assert!(refused(&twice).to_string().contains("vmdk"));
    let parent = GOOD_DESCRIPTOR.replace(
        "parentCID=ffffffff",
        "parentCID=12345678\nparentFileNameHint=\"/etc/shadow\"",
    );
    assert_eq!(refused(&parent), FormatError::BackingFile("vmdk"));
    let junk = format!("{GOOD_DESCRIPTOR}what is this\n");
    assert!(matches!(refused(&junk), FormatError::VmdkDescriptor(_)));
    let binary = GOOD_DESCRIPTOR.replace("#DDB", "#D\u{e9}B");
    assert!(matches!(refused(&binary), FormatError::VmdkDescriptor(_)));
}

#[test]
fn a_parent_anywhere_qemu_looks_is_refused() {
    // QEMU looks for parentFileNameHint in 20 sectors at 512, past a short descriptor too.
    let mut file = vmdk(2048, 1, 1, GOOD_DESCRIPTOR);
    let hint = b"\nparentFileNameHint=\"/etc/shadow\"\n";
    // No NUL between the descriptor and the hint: QEMU's strstr would reach it.
    let at = 512 + GOOD_DESCRIPTOR.len();
    file[at..512 * 3].fill(b'#');
    file[512 * 3..512 * 3 + hint.len()].copy_from_slice(hint);
    assert_eq!(run(&file, "vmdk"), Err(FormatError::BackingFile("vmdk")));
}

#[test]
fn hostile_vmdk_headers_are_refused() {
    // Capacity * 512 wraps u64; capacity * 512 past i64::MAX turns negative.
    for capacity in [u64::MAX, u64::MAX / 512 + 1, 1 << 55] {
        assert_eq!(
            run(&vmdk(capacity, 1, 20, GOOD_DESCRIPTOR), "vmdk"),
            Err(FormatError::SizeOverflow("vmdk")),
            "{capacity}"
        );
    }
    // The descriptor is not where monolithicSparse keeps it, or absent.
    assert!(matches!(
        run(&vmdk(2048, 2, 20, GOOD_DESCRIPTOR), "vmdk"),
        Err(FormatError::VmdkDescriptor(_))
    ));
    assert!(matches!(
        run(&vmdk(2048, 1, 0, GOOD_DESCRIPTOR), "vmdk"),
        Err(FormatError::VmdkDescriptor(_))
    ));
    // No capacity at all, a version QEMU refuses, a truncated header.
    assert_eq!(
        run(&vmdk(0, 0, 0, ""), "vmdk"),
        Err(FormatError::Damaged("vmdk"))
    );
    let mut v4 = vmdk(2048, 1, 20, GOOD_DESCRIPTOR);
    put_le32(&mut v4, 4, 4);
    assert_eq!(run(&v4, "vmdk"), Err(FormatError::Damaged("vmdk")));
    assert_eq!(
        run(&vmdk(2048, 1, 20, GOOD_DESCRIPTOR)[..300], "vmdk"),
        Err(FormatError::Damaged("vmdk"))
    );
    // A descriptor longer than the file.
    assert_eq!(
        run(&vmdk(2048, 1, 1000, GOOD_DESCRIPTOR), "vmdk"),
        Err(FormatError::Damaged("vmdk"))
    );
    // Descriptor files and VMDK3 (COWD) sparse files.
    assert!(matches!(
        run(FLAT_HOST_FILE.as_bytes(), "vmdk"),
        Err(FormatError::VmdkType(_))
    ));
    assert!(matches!(
        run(
            b"\n# comment\nversion=1\nRW 8 FLAT \"/etc/passwd\" 0\n",
            "vmdk"
        ),
        Err(FormatError::VmdkType(_))
    ));
    assert!(matches!(
        run(&[b"COWD".as_slice(), &[0u8; 2044]].concat(), "vmdk"),
        Err(FormatError::VmdkType(_))
    ));
}

/// A streamOptimized VMDK whose grain directory is at the end: the footer rules.
fn vmdk_with_footer(footer_capacity: u64, footer_desc_size: u64) -> Vec<u8> {
    let mut file = vmdk(2048, 1, 20, GOOD_DESCRIPTOR);
    put_le64(&mut file, 56, u64::MAX);
    let mut tail = vec![0u8; 1536];
    put_le64(&mut tail, 0, 1);
    put_le32(&mut tail, 12, 3);
    tail[512..1024].copy_from_slice(&file[..512]);
    put_le64(&mut tail, 512 + 12, footer_capacity);
    put_le64(&mut tail, 512 + 36, footer_desc_size);
    put_le64(&mut tail, 512 + 56, 0x40);
    file.extend_from_slice(&tail);
    file
}

#[test]
fn a_vmdk_footer_must_agree_with_its_header() {
    // The footer's capacity wins, as in QEMU.
    assert_eq!(size_of(&vmdk_with_footer(4096, 20), "vmdk"), 4096 * 512);
    assert_eq!(
        run(&vmdk_with_footer(u64::MAX, 20), "vmdk"),
        Err(FormatError::SizeOverflow("vmdk"))
    );
    assert_eq!(
        run(&vmdk_with_footer(4096, 21), "vmdk"),
        Err(FormatError::Damaged("vmdk"))
    );
    let mut no_end_marker = vmdk_with_footer(4096, 20);
    let end = no_end_marker.len();
    put_le32(&mut no_end_marker, end - 512 + 12, 7);
    assert_eq!(
        run(&no_end_marker, "vmdk"),
        Err(FormatError::Damaged("vmdk"))
    );
    // A footer that says "footer at the end" again.
    let mut again = vmdk_with_footer(4096, 20);
    let at = again.len() - 1024 + 56;
    put_le64(&mut again, at, u64::MAX);
    assert_eq!(run(&again, "vmdk"), Err(FormatError::Damaged("vmdk")));
}

// ---------------------------------------------------------------- vhdx

/// A VHDX with its metadata region at 256 KiB: file parameters (block size, `flags`) and
/// the virtual disk size, plus `extra` metadata items.
fn vhdx(virtual_size: u64, flags: u32, extra: &[[u8; 16]]) -> Vec<u8> {
    let meta = 256 * 1024usize;
    let mut f = vec![0u8; meta + 128 * 1024];
    f[..8].copy_from_slice(b"vhdxfile");
    let rt = 192 * 1024;
    f[rt..rt + 4].copy_from_slice(b"regi");
    put_le32(&mut f, rt + 8, 1);
    f[rt + 16..rt + 32].copy_from_slice(&VHDX_METADATA_REGION);
    put_le64(&mut f, rt + 32, meta as u64);
    put_le32(&mut f, rt + 40, 128 * 1024);
    put_le32(&mut f, rt + 44, 1);
    f[meta..meta + 8].copy_from_slice(b"metadata");
    let mut items: Vec<([u8; 16], u32)> =
        vec![(VHDX_FILE_PARAMETERS, 8), (VHDX_VIRTUAL_DISK_SIZE, 8)];
    items.extend(extra.iter().map(|g| (*g, 8)));
    f[meta + 10..meta + 12].copy_from_slice(&(items.len() as u16).to_le_bytes());
    for (i, (id, length)) in items.iter().enumerate() {
        let entry = meta + 32 + i * 32;
        let offset = 0x1_0000 + i as u32 * 8;
        f[entry..entry + 16].copy_from_slice(id);
        put_le32(&mut f, entry + 16, offset);
        put_le32(&mut f, entry + 20, *length);
    }
    put_le32(&mut f, meta + 0x1_0000, 32 << 20);
    put_le32(&mut f, meta + 0x1_0004, flags);
    put_le64(&mut f, meta + 0x1_0008, virtual_size);
    f
}

#[test]
fn reads_the_virtual_size_of_a_vhdx() {
    assert_eq!(size_of(&vhdx(10 << 30, 0, &[]), "vhdx"), 10 << 30);
}

#[test]
fn hostile_vhdx_headers_are_refused() {
    // A differencing disk: the HasParent flag, or a parent locator item.
    assert_eq!(
        run(&vhdx(1 << 30, 2, &[]), "vhdx"),
        Err(FormatError::BackingFile("vhdx"))
    );
    assert_eq!(
        run(&vhdx(1 << 30, 0, &[VHDX_PARENT_LOCATOR]), "vhdx"),
        Err(FormatError::BackingFile("vhdx"))
    );
    assert_eq!(
        run(&vhdx(u64::MAX, 0, &[]), "vhdx"),
        Err(FormatError::SizeOverflow("vhdx"))
    );
    // Truncated before the region table, and before the metadata region.
    let good = vhdx(1 << 30, 0, &[]);
    assert_eq!(
        run(&good[..100 * 1024], "vhdx"),
        Err(FormatError::Damaged("vhdx"))
    );
    assert_eq!(
        run(&good[..260 * 1024], "vhdx"),
        Err(FormatError::Damaged("vhdx"))
    );
    // Region and item counts past the format's limit; offsets past the file or region.
    let mut many = good.clone();
    put_le32(&mut many, 192 * 1024 + 8, 4096);
    assert_eq!(run(&many, "vhdx"), Err(FormatError::Damaged("vhdx")));
    let mut far = good.clone();
    put_le64(&mut far, 192 * 1024 + 32, u64::MAX - 8);
    assert_eq!(run(&far, "vhdx"), Err(FormatError::Damaged("vhdx")));
    let mut outside = good.clone();
    put_le32(&mut outside, 256 * 1024 + 32 + 32 + 16, 0xffff_fff0);
    assert_eq!(run(&outside, "vhdx"), Err(FormatError::Damaged("vhdx")));
    // No metadata region, no size item.
    let mut no_meta = good.clone();
    no_meta[192 * 1024 + 16] ^= 0xff;
    assert_eq!(run(&no_meta, "vhdx"), Err(FormatError::Damaged("vhdx")));
    let mut no_size = good;
    no_size[256 * 1024 + 64] ^= 0xff;
    assert_eq!(run(&no_size, "vhdx"), Err(FormatError::Damaged("vhdx")));
}

// ---------------------------------------------------------------- ploop

fn ploop(magic: &[u8; 16], sectors: u64) -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    h[..16].copy_from_slice(magic);
    put_le32(&mut h, 16, 2);
    put_le32(&mut h, 20, 16);
    put_le32(&mut h, 28, 2048);
    put_le32(&mut h, 32, 65);
    put_le64(&mut h, 36, sectors);
    put_le32(&mut h, 48, 2048);
    h
}

#[test]
fn reads_the_virtual_size_of_a_ploop() {
    assert_eq!(
        size_of(&ploop(b"WithouFreSpacExt", 133_120), "ploop"),
        133_120 * 512
    );
    // The old magic keeps 32 bits of sectors, as QEMU reads them.
    assert_eq!(
        size_of(&ploop(b"WithoutFreeSpace", (7 << 32) | 8), "ploop"),
        8 * 512
    );
}

#[test]
fn hostile_ploop_headers_are_refused() {
    assert_eq!(
        run(&ploop(b"WithouFreSpacExt", u64::MAX), "ploop"),
        Err(FormatError::SizeOverflow("ploop"))
    );
    assert_eq!(
        run(&ploop(b"WithouFreSpacExt", 1 << 60), "ploop"),
        Err(FormatError::SizeOverflow("ploop"))
    );
    let mut version = ploop(b"WithouFreSpacExt", 8);
    put_le32(&mut version, 16, 3);
    assert_eq!(run(&version, "ploop"), Err(FormatError::Damaged("ploop")));
    let mut no_tracks = ploop(b"WithouFreSpacExt", 8);
    put_le32(&mut no_tracks, 28, 0);
    assert_eq!(run(&no_tracks, "ploop"), Err(FormatError::Damaged("ploop")));
    assert_eq!(
        run(&ploop(b"WithouFreSpacExt", 8)[..40], "ploop"),
        Err(FormatError::Damaged("ploop"))
    );
    // Plain bytes are not a ploop (it used to pass as raw), nor is a ploop raw.
    assert!(matches!(
        run(&[0u8; 4096], "ploop"),
        Err(FormatError::Mismatch { .. })
    ));
    assert!(matches!(
        run(&ploop(b"WithouFreSpacExt", 8), "raw"),
        Err(FormatError::Mismatch { .. })
    ));
}

// ---------------------------------------------------------------- vdi, vhd, raw, iso

fn vdi(kind: u32, size: u64) -> Vec<u8> {
    let mut h = vec![0u8; 1024];
    put_le32(&mut h, 0x40, 0xbeda_107f);
    put_le32(&mut h, 0x44, 0x0001_0001);
    put_le32(&mut h, 0x4c, kind);
    put_le64(&mut h, 0x170, size);
    h
}

fn vhd(kind: u32, current: u64, at_end: bool) -> Vec<u8> {
    let mut footer = vec![0u8; 512];
    footer[..8].copy_from_slice(b"conectix");
    put_be64(&mut footer, 48, current);
    put_be32(&mut footer, 60, kind);
    let mut file = vec![0u8; 1536];
    if at_end {
        file.extend_from_slice(&footer);
    } else {
        file[..512].copy_from_slice(&footer);
    }
    file
}

#[test]
fn vdi_and_vhd_sizes_and_parents() {
    assert_eq!(size_of(&vdi(1, 1 << 30), "vdi"), 1 << 30);
    assert_eq!(
        run(&vdi(4, 1 << 30), "vdi"),
        Err(FormatError::BackingFile("vdi"))
    );
    assert_eq!(
        run(&vdi(1, u64::MAX), "vdi"),
        Err(FormatError::SizeOverflow("vdi"))
    );
    assert_eq!(run(&vdi(9, 1), "vdi"), Err(FormatError::Damaged("vdi")));
    assert_eq!(size_of(&vhd(2, 4096, true), "vhd"), 4096);
    assert_eq!(size_of(&vhd(3, 8192, false), "vhd"), 8192);
    assert_eq!(
        run(&vhd(4, 4096, false), "vhd"),
        Err(FormatError::BackingFile("vhd"))
    );
    assert_eq!(
        run(&vhd(2, u64::MAX, true), "vhd"),
        Err(FormatError::SizeOverflow("vhd"))
    );
}

#[test]
fn refuses_content_that_is_not_what_it_claims() {
    assert!(matches!(
        run(b"just some bytes", "qcow2"),
        Err(FormatError::Mismatch { .. })
    ));
    // A qcow2 (or any container) uploaded as "raw" would be read as that format by a
    // careless hypervisor.
    for container in [
        qcow2_header(3, 0, 0),
        vmdk(2048, 1, 20, GOOD_DESCRIPTOR),
        vhdx(1 << 30, 0, &[]),
        vdi(1, 1 << 20),
        FLAT_HOST_FILE.as_bytes().to_vec(),
    ] {
        assert!(matches!(
            run(&container, "raw"),
            Err(FormatError::Mismatch { .. })
        ));
    }
    assert_eq!(size_of(b"plain data", "raw"), 10);
    assert_eq!(size_of(b"kernel", "aki"), 6);
}

#[test]
fn recognises_iso() {
    let mut iso = vec![0u8; 0x9000];
    iso[0x8001..0x8006].copy_from_slice(b"CD001");
    assert_eq!(size_of(&iso, "iso"), 0x9000);
    assert_eq!(size_of(&iso, "raw"), 0x9000);
}

// ---------------------------------------------------------------- against qemu-img

/// Images made by the installed qemu-img are accepted with the virtual size qemu-img
/// reports; a monolithicFlat descriptor it makes is refused. Skipped without qemu-img.
#[test]
fn agrees_with_qemu_img_on_the_images_it_makes() {
    if !onestack_testkit::require_tools(&["qemu-img"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (qemu_format, options, claimed) in [
        ("qcow2", "", "qcow2"),
        ("vmdk", "", "vmdk"),
        ("vmdk", "subformat=streamOptimized", "vmdk"),
        ("vhdx", "", "vhdx"),
        ("parallels", "", "ploop"),
        ("vdi", "", "vdi"),
        ("vpc", "", "vhd"),
        ("vpc", "subformat=fixed", "vhd"),
        ("raw", "", "raw"),
    ] {
        let path = dir.path().join(format!("{qemu_format}-{}", options.len()));
        let mut create = std::process::Command::new("qemu-img");
        create.args(["create", "-q", "-f", qemu_format]);
        if !options.is_empty() {
            create.args(["-o", options]);
        }
        assert!(create.arg(&path).arg("65M").status().unwrap().success());
        let info = std::process::Command::new("qemu-img")
            .args(["info", "--output=json", "-f", qemu_format])
            .arg(&path)
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        let expected = info["virtual-size"].as_i64().unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        let size = file.metadata().unwrap().len();
        let inspection = inspect(&mut file, size, claimed)
            .unwrap_or_else(|e| panic!("{qemu_format} {options}: {e}"));
        assert_eq!(inspection.virtual_size, expected, "{qemu_format} {options}");
    }
    let flat = dir.path().join("flat.vmdk");
    assert!(
        std::process::Command::new("qemu-img")
            .args([
                "create",
                "-q",
                "-f",
                "vmdk",
                "-o",
                "subformat=monolithicFlat"
            ])
            .arg(&flat)
            .arg("1M")
            .status()
            .unwrap()
            .success()
    );
    let data = std::fs::read(&flat).unwrap();
    assert!(matches!(run(&data, "vmdk"), Err(FormatError::VmdkType(_))));
}
