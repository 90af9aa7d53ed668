//! QEMU's argument vector for a guest spec. Pure: no I/O, every value validated first.

use std::path::Path;

use crate::accel::Accel;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::spec::{GuestSpec, VolumeDisk};
use crate::validate;

/// Nova's kernel command line for direct kernel boot when the image sets none.
pub const DEFAULT_KERNEL_CMDLINE: &str = "root=/dev/vda console=tty0 console=ttyS0 console=hvc0";

/// The longest unix socket path (sun_path is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Host facts that shape the command line beside the spec.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    pub accel: Accel,
    /// `/dev/vhost-net` is usable (only asked for with KVM).
    pub vhost_net: bool,
}

/// Doubles commas, QEMU's escape inside `key=value,...` option strings.
pub fn escape_opt(value: &str) -> String {
    value.replace(',', ",,")
}

/// The `-smbios type=1,...` value Nova gives its guests (cloud-init's OpenStack detection reads
/// the product name; the serial and uuid are the server id).
pub fn smbios_type1(uuid: &str) -> String {
    let fields = [
        ("manufacturer", "OpenStack Foundation"),
        ("product", "OpenStack Nova"),
        ("version", env!("CARGO_PKG_VERSION")),
        ("serial", uuid),
        ("uuid", uuid),
        ("family", "Virtual Machine"),
    ];
    let mut out = String::from("type=1");
    for (key, value) in fields {
        out.push(',');
        out.push_str(key);
        out.push('=');
        out.push_str(&escape_opt(value));
    }
    out
}

/// A disk of the guest's own, in the order the guest sees them.
enum Disk<'a> {
    /// A qcow2 in the instance dir.
    File(std::path::PathBuf),
    /// A block storage volume's file.
    Volume(&'a VolumeDisk),
}

/// A volume's block node, in the JSON that `-blockdev` and QMP `blockdev-add` both take (no
/// option-string escaping to get wrong). The format is pinned: a volume is always qcow2.
pub(crate) fn volume_blockdev(volume: &VolumeDisk) -> Result<serde_json::Value> {
    validate::uuid(&volume.volume_id)?;
    let path = validate::path(&volume.path)?;
    Ok(serde_json::json!({
        "driver": "qcow2",
        "node-name": volume.qemu_id(),
        "read-only": volume.read_only,
        "discard": "unmap",
        "file": {"driver": "file", "filename": path},
    }))
}

/// A volume's virtio disk, in the JSON that `-device` and QMP `device_add` both take.
pub(crate) fn volume_device(volume: &VolumeDisk) -> Result<serde_json::Value> {
    validate::uuid(&volume.volume_id)?;
    Ok(serde_json::json!({
        "driver": "virtio-blk-pci",
        "drive": volume.qemu_id(),
        "id": volume.qemu_id(),
        "serial": volume.serial(),
    }))
}

/// How a guest's QEMU begins.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// From its disks.
    Boot,
    /// From a saved state file (a suspended guest).
    Restore(&'a Path),
    /// Paused, waiting for a live migration's stream (`migrate-incoming` over QMP).
    Migration,
}

/// The block node of the guest's own disk `index` (root, ephemeral, swap, in the order
/// the guest sees them): a live migration mirrors these by name.
pub fn disk_node(index: usize) -> String {
    format!("drive-virtio-disk{index}")
}

/// The block nodes of the guest's own disks in its instance dir, which a live migration
/// copies (volumes stay with their host; the config drive and an ISO are read-only and
/// made again on the new host).
/// Never asked while rescued (the rescue disk would come first).
pub fn own_disk_nodes(spec: &GuestSpec) -> Vec<String> {
    let disks = [
        spec.root.volume().is_none(),
        spec.ephemeral_gb > 0,
        spec.swap_mb > 0,
    ];
    // A root volume takes index 0 all the same.
    let first = usize::from(spec.root.volume().is_some());
    let count = disks.iter().filter(|own| **own).count();
    (first..first + count).map(disk_node).collect()
}

/// Builds the argv (without the program) that starts `spec` daemonized, as `start` says.
pub fn build(spec: &GuestSpec, layout: &Layout, host: Host, start: Start) -> Result<Vec<String>> {
    let uuid = validate::uuid(&spec.uuid)?;
    let name = validate::guest_name(&spec.name)?;
    if spec.vcpus == 0 || spec.vcpus > 512 {
        return Err(Error::invalid("vcpus", spec.vcpus.to_string()));
    }
    if spec.memory_mb < 16 || spec.memory_mb > 16 << 20 {
        return Err(Error::invalid("memory_mb", spec.memory_mb.to_string()));
    }
    let qmp = validate::path(&layout.qmp())?.to_owned();
    let vnc = validate::path(&layout.vnc())?.to_owned();
    for socket in [&qmp, &vnc] {
        if socket.len() > MAX_SOCKET_PATH {
            return Err(Error::invalid(
                "socket path (longer than 107 bytes)",
                socket.as_str(),
            ));
        }
    }
    let console = validate::path(&layout.console())?.to_owned();
    let pidfile = validate::path(&layout.pidfile())?.to_owned();

    let mut a = Args::default();
    a.push2("-name", format!("guest={name},debug-threads=on"));
    a.push2("-uuid", uuid);
    a.push2("-machine", format!("pc,accel={}", host.accel.as_str()));
    if host.accel == Accel::Kvm {
        a.push2("-cpu", "host");
    }
    a.push2("-m", spec.memory_mb.to_string());
    a.push2("-smp", spec.vcpus.to_string());
    a.push("-nodefaults");
    a.push("-no-user-config");
    a.push2("-display", "none");
    a.push2("-vnc", format!("unix:{vnc}"));
    a.push2("-vga", "std");
    // An absolute pointer, so a VNC console's mouse follows the browser's.
    a.push("-usb");
    a.push2("-device", "usb-tablet,id=input0");
    a.push2("-rtc", "base=utc");
    a.push2("-qmp", format!("unix:{qmp},server=on,wait=off"));
    a.push2(
        "-chardev",
        format!("file,id=serial0,path={console},append=on"),
    );
    a.push2("-serial", "chardev:serial0");
    a.push2("-smbios", smbios_type1(uuid));
    a.push2("-msg", "timestamp=on");

    // Boot order by per-device bootindex (what SeaBIOS honours for -device disks; the
    // legacy `-boot order=` letters only cover if=ide/floppy drives).
    let mut boot = 1u32;
    let mut next_boot = || {
        let index = boot;
        boot += 1;
        index
    };
    if let Some(iso) = &spec.cdrom {
        let iso = validate::path(iso)?;
        a.push2(
            "-drive",
            format!("file={iso},format=raw,if=none,id=drive-cdrom,media=cdrom,readonly=on"),
        );
        a.push2(
            "-device",
            format!(
                "ide-cd,drive=drive-cdrom,id=cdrom0,bus=ide.1,unit=0,bootindex={}",
                next_boot()
            ),
        );
    }
    let mut disks = Vec::new();
    if spec.rescue.is_some() && !spec.stable_rescue {
        disks.push(Disk::File(layout.rescue()));
    }
    disks.push(match spec.root.volume() {
        Some(volume) => Disk::Volume(volume),
        None => Disk::File(layout.root()),
    });
    if spec.ephemeral_gb > 0 {
        disks.push(Disk::File(layout.ephemeral()));
    }
    if spec.swap_mb > 0 {
        disks.push(Disk::File(layout.swap()));
    }
    let stable_rescue = spec.rescue.is_some() && spec.stable_rescue;
    for (i, disk) in disks.iter().enumerate() {
        // The first disk (the rescue disk when rescuing) boots after a CD-ROM.
        let bootindex = (i == 0 && spec.kernel.is_none() && !stable_rescue).then(&mut next_boot);
        match disk {
            Disk::File(path) => {
                // A named node (not `-drive`): a live migration's new host serves it over NBD
                // while QEMU waits for the stream, which a `-drive` disk refuses.
                let node = disk_node(i);
                let blockdev = serde_json::json!({
                    "driver": "qcow2",
                    "node-name": node,
                    "discard": "unmap",
                    "file": {"driver": "file", "filename": validate::path(path)?},
                });
                a.push2("-blockdev", blockdev.to_string());
                let bootindex = bootindex
                    .map(|b| format!(",bootindex={b}"))
                    .unwrap_or_default();
                a.push2(
                    "-device",
                    format!("virtio-blk-pci,drive={node},id=virtio-disk{i}{bootindex}"),
                );
            }
            Disk::Volume(volume) => {
                a.push2("-blockdev", volume_blockdev(volume)?.to_string());
                let mut device = volume_device(volume)?;
                if let Some(b) = bootindex {
                    device["bootindex"] = b.into();
                }
                a.push2("-device", device.to_string());
            }
        }
    }
    for volume in &spec.volumes {
        a.push2("-blockdev", volume_blockdev(volume)?.to_string());
        a.push2("-device", volume_device(volume)?.to_string());
    }
    if stable_rescue {
        // Nova's stable device rescue: every disk keeps its place, the rescue disk comes
        // last and is the one that boots.
        let rescue = layout.rescue();
        let file = validate::path(&rescue)?;
        a.push2(
            "-drive",
            format!("file={file},format=qcow2,if=none,id=drive-virtio-rescue,cache=writeback"),
        );
        a.push2(
            "-device",
            format!(
                "virtio-blk-pci,drive=drive-virtio-rescue,id=virtio-rescue,bootindex={}",
                next_boot()
            ),
        );
    }
    if spec.config_drive {
        let config = layout.config_drive();
        let file = validate::path(&config)?;
        a.push2(
            "-drive",
            format!("file={file},format=raw,if=none,id=drive-config,media=cdrom,readonly=on"),
        );
        a.push2(
            "-device",
            "ide-cd,drive=drive-config,id=config0,bus=ide.1,unit=1",
        );
    }
    for (i, nic) in spec.nics.iter().enumerate() {
        let ifname = validate::ifname(&nic.ifname)?;
        let mac = validate::mac(&nic.mac)?;
        let vhost = if host.vhost_net && host.accel == Accel::Kvm {
            ",vhost=on"
        } else {
            ""
        };
        a.push2(
            "-netdev",
            format!("tap,id=hostnet{i},ifname={ifname},script=no,downscript=no{vhost}"),
        );
        a.push2(
            "-device",
            format!("virtio-net-pci,netdev=hostnet{i},id=net{i},mac={mac}"),
        );
    }
    if let Some(kernel) = &spec.kernel {
        a.push2("-kernel", validate::path(kernel)?);
        if let Some(ramdisk) = &spec.ramdisk {
            a.push2("-initrd", validate::path(ramdisk)?);
        }
        let cmdline = spec.cmdline.as_deref().unwrap_or(DEFAULT_KERNEL_CMDLINE);
        a.push2("-append", validate::kernel_cmdline(cmdline)?);
    } else if spec.ramdisk.is_some() {
        return Err(Error::invalid("ramdisk", "a ramdisk needs a kernel"));
    }
    match start {
        Start::Boot => {}
        Start::Restore(state) => {
            // The path holds no quote (validated), so single quotes make it one shell word.
            a.push2(
                "-incoming",
                format!("exec:cat '{}'", validate::path(state)?),
            );
        }
        Start::Migration => {
            // Paused after the stream arrives: the new host resumes it once the old one has
            // finished copying the disks.
            a.push2("-incoming", "defer");
            a.push("-S");
        }
    }
    a.push("-daemonize");
    a.push2("-pidfile", pidfile);
    Ok(a.0)
}

#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn push(&mut self, arg: &str) {
        self.0.push(arg.to_owned());
    }
    fn push2(&mut self, flag: &str, value: impl Into<String>) {
        self.0.push(flag.to_owned());
        self.0.push(value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::spec::{Nic, RootDisk};

    const UUID: &str = "0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f9";

    fn spec() -> GuestSpec {
        GuestSpec {
            uuid: UUID.into(),
            name: "instance-0000002a".into(),
            vcpus: 2,
            memory_mb: 512,
            root: RootDisk::Image {
                base: "/var/lib/onestack/base/img".into(),
                format: "qcow2".into(),
            },
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            cdrom: None,
            kernel: None,
            ramdisk: None,
            cmdline: None,
            nics: vec![],
            config_drive: false,
            rescue: None,
            stable_rescue: false,
            volumes: Vec::new(),
        }
    }

    fn layout() -> Layout {
        Layout::new(Path::new("/var/lib/onestack/instances"), UUID).expect("valid")
    }

    const TCG: Host = Host {
        accel: Accel::Tcg,
        vhost_net: false,
    };

    fn argv(spec: &GuestSpec, host: Host) -> Vec<String> {
        build(spec, &layout(), host, Start::Boot).expect("builds")
    }

    /// The value following `flag`, for every occurrence.
    fn values<'a>(argv: &'a [String], flag: &str) -> Vec<&'a str> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    fn dir() -> String {
        format!("/var/lib/onestack/instances/{UUID}")
    }

    /// The files of the guest's own disks (named `-blockdev` nodes), in order.
    fn own_files(argv: &[String]) -> Vec<String> {
        values(argv, "-blockdev")
            .into_iter()
            .map(|b| serde_json::from_str::<serde_json::Value>(b).expect("json"))
            .filter(|b| {
                b["node-name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("drive-virtio-disk"))
            })
            .map(|b| b["file"]["filename"].as_str().expect("file").to_owned())
            .collect()
    }

    #[test]
    fn plain_guest() {
        let argv = argv(&spec(), TCG);
        let dir = dir();
        assert_eq!(
            values(&argv, "-name"),
            ["guest=instance-0000002a,debug-threads=on"]
        );
        assert_eq!(values(&argv, "-uuid"), [UUID]);
        assert_eq!(values(&argv, "-machine"), ["pc,accel=tcg"]);
        assert!(values(&argv, "-cpu").is_empty());
        assert_eq!(values(&argv, "-m"), ["512"]);
        assert_eq!(values(&argv, "-smp"), ["2"]);
        assert!(argv.iter().any(|a| a == "-nodefaults"));
        assert!(argv.iter().any(|a| a == "-no-user-config"));
        assert!(!argv.iter().any(|a| a == "-no-shutdown"));
        assert_eq!(values(&argv, "-display"), ["none"]);
        assert_eq!(values(&argv, "-vnc"), [format!("unix:{dir}/vnc.sock")]);
        assert_eq!(
            values(&argv, "-qmp"),
            [format!("unix:{dir}/qmp.sock,server=on,wait=off")]
        );
        assert_eq!(
            values(&argv, "-chardev"),
            [format!("file,id=serial0,path={dir}/console.log,append=on")]
        );
        assert_eq!(values(&argv, "-serial"), ["chardev:serial0"]);
        assert!(values(&argv, "-drive").is_empty());
        let root: serde_json::Value =
            serde_json::from_str(values(&argv, "-blockdev")[0]).expect("json");
        assert_eq!(
            root,
            serde_json::json!({"driver": "qcow2", "node-name": "drive-virtio-disk0",
                "discard": "unmap", "file": {"driver": "file", "filename": format!("{dir}/disk")}})
        );
        assert!(
            values(&argv, "-device")
                .contains(&"virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0,bootindex=1")
        );
        assert!(values(&argv, "-netdev").is_empty());
        assert!(values(&argv, "-kernel").is_empty());
        assert_eq!(argv.iter().filter(|a| *a == "-daemonize").count(), 1);
        assert_eq!(values(&argv, "-pidfile"), [format!("{dir}/qemu.pid")]);
        assert!(values(&argv, "-incoming").is_empty());
    }

    #[test]
    fn kvm_uses_host_cpu_and_vhost() {
        let mut s = spec();
        s.nics = vec![Nic {
            ifname: "ostp-0123456789".into(),
            mac: "fa:16:3e:00:00:01".into(),
        }];
        let argv = argv(
            &s,
            Host {
                accel: Accel::Kvm,
                vhost_net: true,
            },
        );
        assert_eq!(values(&argv, "-machine"), ["pc,accel=kvm"]);
        assert_eq!(values(&argv, "-cpu"), ["host"]);
        assert_eq!(
            values(&argv, "-netdev"),
            ["tap,id=hostnet0,ifname=ostp-0123456789,script=no,downscript=no,vhost=on"]
        );
    }

    #[test]
    fn extra_disks_cdrom_and_config_drive() {
        let mut s = spec();
        s.ephemeral_gb = 2;
        s.swap_mb = 512;
        s.cdrom = Some("/var/lib/onestack/base/iso-image".into());
        s.config_drive = true;
        let argv = argv(&s, TCG);
        let dir = dir();
        let drives = values(&argv, "-drive");
        assert_eq!(drives.len(), 2);
        assert_eq!(
            drives[0],
            "file=/var/lib/onestack/base/iso-image,format=raw,if=none,id=drive-cdrom,media=cdrom,readonly=on"
        );
        assert_eq!(
            own_files(&argv),
            [
                format!("{dir}/disk"),
                format!("{dir}/disk.eph0"),
                format!("{dir}/disk.swap")
            ]
        );
        assert_eq!(
            own_disk_nodes(&s),
            [
                "drive-virtio-disk0",
                "drive-virtio-disk1",
                "drive-virtio-disk2"
            ]
        );
        assert!(drives[1].starts_with(&format!("file={dir}/disk.config,format=raw,")));
        let devices = values(&argv, "-device");
        assert!(
            devices.contains(&"ide-cd,drive=drive-cdrom,id=cdrom0,bus=ide.1,unit=0,bootindex=1")
        );
        assert!(
            devices
                .contains(&"virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0,bootindex=2")
        );
        assert!(devices.contains(&"virtio-blk-pci,drive=drive-virtio-disk1,id=virtio-disk1"));
        assert!(devices.contains(&"virtio-blk-pci,drive=drive-virtio-disk2,id=virtio-disk2"));
        assert!(devices.contains(&"ide-cd,drive=drive-config,id=config0,bus=ide.1,unit=1"));
    }

    #[test]
    fn volumes_follow_the_guests_own_disks() {
        let mut s = spec();
        s.volumes.push(VolumeDisk {
            volume_id: "5a0e3b7c-1d2e-4f60-8a9b-0c1d2e3f4a5b".into(),
            path: "/var/lib/onestack/volumes/volume-5a0e3b7c-1d2e-4f60-8a9b-0c1d2e3f4a5b".into(),
            read_only: true,
        });
        let argv = argv(&s, TCG);
        // After the guest's own root disk.
        let nodes = values(&argv, "-blockdev");
        assert_eq!(nodes.len(), 2);
        let node: serde_json::Value = serde_json::from_str(nodes[1]).expect("json");
        assert_eq!(node["node-name"], "vol-5a0e3b7c1d2e4f608a9b");
        assert_eq!(node["read-only"], true);
        assert_eq!(
            node["file"]["filename"],
            "/var/lib/onestack/volumes/volume-5a0e3b7c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
        );
        let devices = values(&argv, "-device");
        let disk: serde_json::Value = serde_json::from_str(
            devices
                .iter()
                .find(|d| d.starts_with('{'))
                .expect("a JSON device"),
        )
        .expect("json");
        assert_eq!(disk["drive"], "vol-5a0e3b7c1d2e4f608a9b");
        assert_eq!(disk["serial"], "5a0e3b7c-1d2e-4f60-8");
        // A volume id that is not an id never reaches the command line.
        s.volumes[0].volume_id = "x\",\"driver\":\"file".into();
        assert!(build(&s, &layout(), TCG, Start::Boot).is_err());
    }

    #[test]
    fn a_volume_root_boots_first() {
        let mut s = spec();
        s.root = RootDisk::Volume(VolumeDisk {
            volume_id: "5a0e3b7c-1d2e-4f60-8a9b-0c1d2e3f4a5b".into(),
            path: "/var/lib/onestack/volumes/volume-5a0e3b7c-1d2e-4f60-8a9b-0c1d2e3f4a5b".into(),
            read_only: false,
        });
        s.ephemeral_gb = 1;
        let argv = argv(&s, TCG);
        assert_eq!(own_files(&argv), [format!("{}/disk.eph0", dir())]);
        assert_eq!(own_disk_nodes(&s), ["drive-virtio-disk1"]);
        let devices = values(&argv, "-device");
        let root: serde_json::Value = serde_json::from_str(
            devices
                .iter()
                .find(|d| d.starts_with('{'))
                .expect("a JSON device"),
        )
        .expect("json");
        assert_eq!(root["bootindex"], 1);
        assert_eq!(root["drive"], "vol-5a0e3b7c1d2e4f608a9b");
        // The volume is the first disk (vda), the ephemeral disk the second.
        let first_json = devices
            .iter()
            .position(|d| d.starts_with('{'))
            .expect("root");
        let eph = devices
            .iter()
            .position(|d| d.contains("virtio-disk1"))
            .expect("eph");
        assert!(first_json < eph, "{devices:?}");
    }

    #[test]
    fn stable_rescue_disk_comes_last_and_boots() {
        let mut s = spec();
        s.rescue = Some("/var/lib/onestack/base/rescue".into());
        s.stable_rescue = true;
        let argv = argv(&s, TCG);
        let dir = dir();
        assert_eq!(own_files(&argv), [format!("{dir}/disk")]);
        assert!(values(&argv, "-drive")[0].starts_with(&format!("file={dir}/disk.rescue,")));
        let disks: Vec<&str> = values(&argv, "-device")
            .into_iter()
            .filter(|d| d.starts_with("virtio-blk-pci"))
            .collect();
        assert_eq!(
            disks[0],
            "virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0"
        );
        assert_eq!(
            disks.last().copied(),
            Some("virtio-blk-pci,drive=drive-virtio-rescue,id=virtio-rescue,bootindex=1")
        );
    }

    #[test]
    fn rescue_disk_boots_first() {
        let mut s = spec();
        s.rescue = Some("/var/lib/onestack/base/rescue".into());
        let argv = argv(&s, TCG);
        let dir = dir();
        assert_eq!(
            own_files(&argv),
            [format!("{dir}/disk.rescue"), format!("{dir}/disk")]
        );
        let devices = values(&argv, "-device");
        assert!(
            devices
                .contains(&"virtio-blk-pci,drive=drive-virtio-disk0,id=virtio-disk0,bootindex=1")
        );
        assert!(devices.contains(&"virtio-blk-pci,drive=drive-virtio-disk1,id=virtio-disk1"));
    }

    #[test]
    fn direct_kernel_boot() {
        let mut s = spec();
        s.kernel = Some("/b/kernel".into());
        s.ramdisk = Some("/b/initrd".into());
        let argv = argv(&s, TCG);
        assert_eq!(values(&argv, "-kernel"), ["/b/kernel"]);
        assert_eq!(values(&argv, "-initrd"), ["/b/initrd"]);
        assert_eq!(values(&argv, "-append"), [DEFAULT_KERNEL_CMDLINE]);
        s.cmdline = Some("console=ttyS0 quiet, with comma".into());
        let argv = super::build(&s, &layout(), TCG, Start::Boot).expect("builds");
        assert_eq!(
            values(&argv, "-append"),
            ["console=ttyS0 quiet, with comma"]
        );
        s.kernel = None;
        assert!(
            super::build(&s, &layout(), TCG, Start::Boot).is_err(),
            "ramdisk without kernel"
        );
    }

    #[test]
    fn nics() {
        let mut s = spec();
        s.nics = vec![
            Nic {
                ifname: "ostp-aaaaaaaaaa".into(),
                mac: "FA:16:3E:00:00:01".into(),
            },
            Nic {
                ifname: "ostp-bbbbbbbbbb".into(),
                mac: "fa:16:3e:00:00:02".into(),
            },
        ];
        let argv = argv(&s, TCG);
        assert_eq!(
            values(&argv, "-netdev"),
            [
                "tap,id=hostnet0,ifname=ostp-aaaaaaaaaa,script=no,downscript=no",
                "tap,id=hostnet1,ifname=ostp-bbbbbbbbbb,script=no,downscript=no"
            ]
        );
        let devices = values(&argv, "-device");
        assert!(devices.contains(&"virtio-net-pci,netdev=hostnet0,id=net0,mac=fa:16:3e:00:00:01"));
        assert!(devices.contains(&"virtio-net-pci,netdev=hostnet1,id=net1,mac=fa:16:3e:00:00:02"));
    }

    #[test]
    fn waiting_for_a_live_migration() {
        let argv = build(&spec(), &layout(), TCG, Start::Migration).expect("builds");
        assert_eq!(values(&argv, "-incoming"), ["defer"]);
        assert!(argv.iter().any(|a| a == "-S"));
    }

    #[test]
    fn incoming_state() {
        let state = layout().state();
        let argv = build(&spec(), &layout(), TCG, Start::Restore(&state)).expect("builds");
        assert_eq!(
            values(&argv, "-incoming"),
            [format!("exec:cat '{}/state.save'", dir())]
        );
    }

    #[test]
    fn refuses_bad_values() {
        let bad = |f: &dyn Fn(&mut GuestSpec)| {
            let mut s = spec();
            f(&mut s);
            build(&s, &layout(), TCG, Start::Boot).is_err()
        };
        assert!(bad(&|s| s.name = "a,b".into()));
        assert!(bad(&|s| s.vcpus = 0));
        assert!(bad(&|s| s.memory_mb = 0));
        assert!(bad(&|s| s.cdrom = Some("/x,if=none".into())));
        assert!(bad(&|s| s.cdrom = Some(PathBuf::from("relative.iso"))));
        assert!(bad(&|s| s.nics = vec![Nic {
            ifname: "tap0,script=/bin/evil".into(),
            mac: "fa:16:3e:00:00:01".into()
        }]));
        assert!(bad(&|s| s.nics = vec![Nic {
            ifname: "tap0".into(),
            mac: "fa:16:3e:00:00:01,x=y".into()
        }]));
        assert!(bad(&|s| {
            s.kernel = Some("/k".into());
            s.cmdline = Some("a\nb".into());
        }));
        // The uuid in the spec is validated too, not only the one the layout was made from.
        assert!(bad(&|s| s.uuid = "../../etc".into()));
        // Socket paths longer than sun_path.
        let long =
            Layout::new(&PathBuf::from(format!("/{}", "d".repeat(80))), UUID).expect("valid");
        assert!(build(&spec(), &long, TCG, Start::Boot).is_err());
    }

    #[test]
    fn smbios_escaping() {
        assert_eq!(escape_opt("a,b,,c"), "a,,b,,,,c");
        let value = smbios_type1(UUID);
        assert_eq!(
            value,
            format!(
                "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,version={},serial={UUID},uuid={UUID},family=Virtual Machine",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(smbios_type1("x,y").contains("serial=x,,y,uuid=x,,y,"));
    }
}
