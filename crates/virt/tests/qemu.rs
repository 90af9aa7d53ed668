//! The QEMU driver against a real `qemu-system-x86_64` (TCG is enough: a guest with a blank
//! disk boots into the firmware and sits there). Without QEMU these tests fail, unless the
//! run opts out (`ONESTACK_TEST_SKIP=tool`, counted by `make test`).
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive host tools to check what onestack did"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use onestack_virt::{
    AccelChoice, Driver, Error, GuestSpec, PowerState, QemuConfig, RootDisk, VolumeDisk,
    detect_accel,
};

/// QEMU and qemu-img, or a failure unless the run opts out (`onestack_testkit`).
fn qemu_missing() -> bool {
    !onestack_testkit::require_tools(&["qemu-system-x86_64", "qemu-img"])
}

/// A driver on temp directories; kills every QEMU it may have started when dropped, even
/// when the test panics.
struct Env {
    dir: tempfile::TempDir,
    driver: Driver,
    uuids: Vec<String>,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let driver = Driver::qemu(Self::config(dir.path())).expect("driver");
        Self {
            dir,
            driver,
            uuids: Vec::new(),
        }
    }

    fn config(root: &Path) -> QemuConfig {
        let mut config = QemuConfig::under(root, detect_accel(AccelChoice::Auto));
        config.shutdown_timeout = Duration::from_secs(1);
        config
    }

    fn spec(&mut self, n: u32) -> GuestSpec {
        let uuid = format!(
            "5e1f0000-0000-4000-8000-{:06x}{n:06x}",
            std::process::id() & 0xffffff
        );
        self.uuids.push(uuid.clone());
        GuestSpec {
            uuid,
            name: format!("instance-{n:08x}"),
            vcpus: 1,
            memory_mb: 64,
            root: RootDisk::Blank,
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

    fn instance(&self, uuid: &str) -> PathBuf {
        self.dir.path().join("instances").join(uuid)
    }

    fn pid(&self, uuid: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.instance(uuid).join("qemu.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(uuid)
            .then_some(pid)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for uuid in &self.uuids {
            if let Some(pid) = self.pid(uuid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn qemu_img_info(path: &Path) -> serde_json::Value {
    let out = Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(path)
        .output()
        .expect("qemu-img runs");
    assert!(
        out.status.success(),
        "qemu-img info {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn qemu_img_create(format: &str, path: &Path, size: &str) {
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", format])
        .arg(path)
        .arg(size)
        .status()
        .expect("qemu-img runs");
    assert!(status.success());
}

#[tokio::test]
async fn lifecycle() {
    if qemu_missing() {
        return;
    }
    let mut env = Env::new();
    let spec = env.spec(1);
    let id = spec.uuid.clone();
    let d = &env.driver;
    assert_eq!(d.name(), "qemu");
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::NoState
    );
    assert!(d.start(&id).await.is_err_and(|e| e.is_not_found()));

    d.create(&spec).await.expect("create");
    d.create(&spec).await.expect("create is idempotent");
    assert_eq!(d.spec(&id).await.expect("spec"), Some(spec.clone()));
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Shutdown
    );
    assert!(matches!(d.pause(&id).await, Err(Error::WrongState { .. })));

    let t = Instant::now();
    d.start(&id).await.expect("start");
    println!("start took {:?}", t.elapsed());
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Running
    );
    let pid = env.pid(&id).expect("QEMU runs");
    // A second start of a running guest is a no-op: same process.
    d.start(&id).await.expect("second start");
    assert_eq!(env.pid(&id), Some(pid));
    assert!(env.instance(&id).join("vnc.sock").exists());
    assert_eq!(d.vnc_socket(&id), Some(env.instance(&id).join("vnc.sock")));

    // Re-adoption: a new driver on the same directories sees the running guest.
    let again = Driver::qemu(Env::config(env.dir.path())).expect("driver");
    assert_eq!(again.list().await.expect("list"), vec![id.clone()]);
    assert_eq!(
        again.power_state(&id).await.expect("state"),
        PowerState::Running
    );
    drop(again);

    d.pause(&id).await.expect("pause");
    assert_eq!(d.power_state(&id).await.expect("state"), PowerState::Paused);
    // Snapshot while paused: a flattened qcow2 qemu-img accepts.
    let snap = env.dir.path().join("snap.qcow2");
    d.snapshot(&id, &snap).await.expect("snapshot");
    let info = qemu_img_info(&snap);
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 1u64 << 30);
    assert!(info.get("backing-filename").is_none());
    d.unpause(&id).await.expect("unpause");
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Running
    );
    assert!(
        matches!(d.snapshot(&id, &snap).await, Err(Error::WrongState { .. })),
        "running"
    );
    assert!(
        matches!(d.update_spec(&spec).await, Err(Error::WrongState { .. })),
        "running"
    );
    d.reset(&id).await.expect("reset");
    d.console_output(&id, Some(10))
        .await
        .expect("console output");

    let t = Instant::now();
    d.suspend(&id).await.expect("suspend");
    println!("suspend took {:?}", t.elapsed());
    let state = env.instance(&id).join("state.save");
    assert!(state.exists());
    assert!(env.pid(&id).is_none(), "QEMU is gone");
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Suspended
    );
    assert!(
        matches!(d.update_spec(&spec).await, Err(Error::WrongState { .. })),
        "suspended"
    );

    let t = Instant::now();
    d.start(&id).await.expect("resume");
    println!("restore took {:?}", t.elapsed());
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Running
    );
    assert!(!state.exists(), "the state file is used up");

    // No OS answers the power button: a hard stop after the timeout.
    let t = Instant::now();
    assert!(
        !d.shutdown(&id, Duration::from_secs(1))
            .await
            .expect("shutdown")
    );
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Shutdown
    );
    assert!(
        d.shutdown(&id, Duration::from_secs(1))
            .await
            .expect("already off")
    );

    d.start(&id).await.expect("start again");
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Running
    );
    d.destroy(&id).await.expect("destroy");
    d.destroy(&id).await.expect("destroy is idempotent");
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Shutdown
    );
    assert!(env.pid(&id).is_none());

    d.delete(&id).await.expect("delete");
    assert!(!env.instance(&id).exists());
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::NoState
    );
    d.delete(&id).await.expect("delete is idempotent");
    assert!(d.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn images_extra_disks_config_drive_rescue_and_resize() {
    if qemu_missing() {
        return;
    }
    let mut env = Env::new();
    let src = env.dir.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");

    // cache_image keeps a qcow2, converts a vmdk and a vdi, keeps an ISO as raw.
    qemu_img_create("qcow2", &src.join("a.qcow2"), "64M");
    qemu_img_create("vmdk", &src.join("b.vmdk"), "32M");
    qemu_img_create("vdi", &src.join("c.vdi"), "32M");
    let d = &env.driver;
    let (qcow2, format) = d
        .cache_image("img-qcow2", &src.join("a.qcow2"), "qcow2", None)
        .await
        .expect("cache");
    assert_eq!(
        (qcow2.clone(), format.as_str()),
        (env.dir.path().join("base/img-qcow2"), "qcow2")
    );
    assert_eq!(qemu_img_info(&qcow2)["format"], "qcow2");
    // Concurrent calls for one id are fine and agree.
    let vmdk_src = src.join("b.vmdk");
    let (a, b) = tokio::join!(
        d.cache_image("img-vmdk", &vmdk_src, "vmdk", None),
        d.cache_image("img-vmdk", &vmdk_src, "vmdk", None)
    );
    let (vmdk, format) = a.expect("cache vmdk");
    assert_eq!(b.expect("cache vmdk").0, vmdk);
    assert_eq!(format, "qcow2");
    assert_eq!(qemu_img_info(&vmdk)["format"], "qcow2");
    let (vdi, format) = d
        .cache_image("img-vdi", &src.join("c.vdi"), "vdi", None)
        .await
        .expect("cache vdi");
    assert_eq!(
        (format.as_str(), qemu_img_info(&vdi)["format"].as_str()),
        ("qcow2", Some("qcow2"))
    );
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path().join("base"))
        .expect("base dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    assert!(
        d.cache_image("../evil", &src.join("a.qcow2"), "qcow2", None)
            .await
            .is_err()
    );
    assert!(
        d.cache_image("x", &src.join("a.qcow2"), "docker", None)
            .await
            .is_err()
    );

    let have_iso = onestack_testkit::require_tools(&["genisoimage"]);
    let iso = if have_iso {
        let iso_dir = src.join("iso");
        std::fs::create_dir(&iso_dir).expect("mkdir");
        std::fs::write(iso_dir.join("README"), b"install me").expect("write");
        let status = Command::new("genisoimage")
            .args(["-quiet", "-o"])
            .arg(src.join("install.iso"))
            .arg(&iso_dir)
            .status()
            .expect("genisoimage");
        assert!(status.success());
        let (iso, format) = d
            .cache_image("img-iso", &src.join("install.iso"), "iso", None)
            .await
            .expect("cache iso");
        assert_eq!(format, "raw");
        Some(iso)
    } else {
        None
    };

    // A guest on the qcow2 base, grown to 1 GiB, with ephemeral and swap disks, the ISO and a
    // config drive.
    let mut spec = env.spec(2);
    let id = spec.uuid.clone();
    spec.root = RootDisk::Image {
        base: qcow2.clone(),
        format: "qcow2".into(),
    };
    spec.ephemeral_gb = 1;
    spec.swap_mb = 32;
    spec.cdrom = iso.clone();
    spec.config_drive = have_iso;
    let d = &env.driver;
    d.create(&spec).await.expect("create");
    let dir = env.instance(&id);
    let root = qemu_img_info(&dir.join("disk"));
    assert_eq!(root["virtual-size"], 1u64 << 30);
    assert_eq!(root["backing-filename"], qcow2.to_string_lossy().as_ref());
    assert_eq!(
        qemu_img_info(&dir.join("disk.eph0"))["virtual-size"],
        1u64 << 30
    );
    assert_eq!(
        qemu_img_info(&dir.join("disk.swap"))["virtual-size"],
        32u64 << 20
    );
    if have_iso {
        assert!(
            d.start(&id).await.is_err(),
            "the config drive is not written yet"
        );
        let mut files = BTreeMap::new();
        files.insert(
            "openstack/latest/meta_data.json".to_owned(),
            br#"{"uuid": "x"}"#.to_vec(),
        );
        d.write_config_drive(&id, &files)
            .await
            .expect("config drive");
        assert!(dir.join("disk.config").exists());
    }
    d.start(&id).await.expect("start with every kind of disk");
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Running
    );
    d.destroy(&id).await.expect("destroy");

    // Rescue: a fresh overlay of the rescue base boots first; unrescue removes it.
    let mut rescue = spec.clone();
    rescue.rescue = Some(vmdk.clone());
    d.update_spec(&rescue).await.expect("rescue");
    assert_eq!(
        qemu_img_info(&dir.join("disk.rescue"))["backing-filename"],
        vmdk.to_string_lossy().as_ref()
    );
    d.start(&id).await.expect("start rescued");
    assert_eq!(
        d.power_state(&id).await.expect("state"),
        PowerState::Running
    );
    d.destroy(&id).await.expect("destroy");
    d.update_spec(&spec).await.expect("unrescue");
    assert!(!dir.join("disk.rescue").exists());

    // Resize grows the root disk and never shrinks it.
    let mut bigger = spec.clone();
    bigger.root_gb = 2;
    bigger.vcpus = 2;
    d.update_spec(&bigger).await.expect("resize");
    assert_eq!(qemu_img_info(&dir.join("disk"))["virtual-size"], 2u64 << 30);
    d.update_spec(&spec)
        .await
        .expect("resize down keeps the disk");
    assert_eq!(qemu_img_info(&dir.join("disk"))["virtual-size"], 2u64 << 30);

    // Rebuild: a new root on another base; the other disks stay.
    let vdi_root = RootDisk::Image {
        base: vdi.clone(),
        format: "qcow2".into(),
    };
    d.rebuild_root(&id, vdi_root.clone(), 0)
        .await
        .expect("rebuild");
    let root = qemu_img_info(&dir.join("disk"));
    assert_eq!(root["backing-filename"], vdi.to_string_lossy().as_ref());
    assert_eq!(root["virtual-size"], 32u64 << 20);
    assert!(dir.join("disk.eph0").exists());
    assert_eq!(
        d.spec(&id).await.expect("spec").map(|s| s.root),
        Some(vdi_root)
    );

    d.delete(&id).await.expect("delete");
}

/// Runs qemu-img with these arguments, which must succeed.
fn qemu_img(args: &[&str]) {
    let status = Command::new("qemu-img")
        .args(args)
        .status()
        .expect("qemu-img runs");
    assert!(status.success(), "qemu-img {args:?}");
}

#[tokio::test]
async fn the_cache_refuses_what_a_guest_must_not_get() {
    if !onestack_testkit::require_tools(&["qemu-img"]) {
        return;
    }
    let env = Env::new();
    let d = &env.driver;
    let src = env.dir.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    let path = |name: &str| src.join(name);
    let text = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let refused = |result: Result<(PathBuf, String), Error>, what: &str| match result {
        Err(Error::UnsafeImage { why, .. }) => why,
        other => panic!("{what}: {other:?}"),
    };
    qemu_img_create("qcow2", &path("base.qcow2"), "16M");
    // A backing file, an external data file, a VMDK whose extent is another file.
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        &text(&path("base.qcow2")),
        &text(&path("overlay.qcow2")),
    ]);
    let why = refused(
        d.cache_image("overlay", &path("overlay.qcow2"), "qcow2", None)
            .await,
        "backing file",
    );
    assert!(why.contains("backing file"), "{why}");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={}", text(&path("data.raw"))),
        &text(&path("external.qcow2")),
        "16M",
    ]);
    refused(
        d.cache_image("external", &path("external.qcow2"), "qcow2", None)
            .await,
        "data file",
    );
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vmdk",
        "-o",
        "subformat=monolithicFlat",
        &text(&path("flat.vmdk")),
        "1M",
    ]);
    refused(
        d.cache_image("flat", &path("flat.vmdk"), "vmdk", None)
            .await,
        "flat vmdk",
    );
    // Larger than the flavor's disk: refused; within it: cached.
    qemu_img_create("raw", &path("big.raw"), "64M");
    let why = refused(
        d.cache_image("big-1", &path("big.raw"), "raw", Some(32 << 20))
            .await,
        "too large",
    );
    assert!(why.contains("virtual size"), "{why}");
    let (cached, _) = d
        .cache_image("big-1", &path("big.raw"), "raw", Some(64 << 20))
        .await
        .expect("within the limit");
    // A cache entry found again is checked again, and removed when it no longer fits.
    refused(
        d.cache_image("big-1", &path("big.raw"), "raw", Some(32 << 20))
            .await,
        "cached, too large",
    );
    assert!(!cached.exists(), "the refused entry is gone");
    // A sparse VMDK (its only extent is itself) is fine.
    qemu_img_create("vmdk", &path("sparse.vmdk"), "8M");
    d.cache_image("sparse", &path("sparse.vmdk"), "vmdk", Some(8 << 20))
        .await
        .expect("a monolithicSparse vmdk");
    let entries: Vec<String> = std::fs::read_dir(env.dir.path().join("base"))
        .expect("base dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries,
        vec!["sparse".to_owned()],
        "only the good image is cached"
    );
}

#[tokio::test]
async fn failures_are_explained() {
    if qemu_missing() {
        return;
    }
    let mut env = Env::new();
    // A CD-ROM image that is not there: QEMU refuses, and its own words come back.
    let mut spec = env.spec(3);
    let missing = env.dir.path().join("missing.iso");
    spec.cdrom = Some(missing.clone());
    let d = &env.driver;
    d.create(&spec).await.expect("create");
    match d.start(&spec.uuid).await {
        Err(Error::Start { log, .. }) => {
            println!("QEMU said: {log}");
            assert!(log.contains(&*missing.to_string_lossy()), "{log}");
        }
        other => panic!("expected a start error, got {other:?}"),
    }
    assert_eq!(
        d.power_state(&spec.uuid).await.expect("state"),
        PowerState::Shutdown
    );

    // Bad values never reach a path or QEMU.
    let mut bad = env.spec(4);
    bad.uuid = "../../../etc".into();
    assert!(matches!(
        env.driver.create(&bad).await,
        Err(Error::Invalid { .. })
    ));
    let mut bad = env.spec(5);
    bad.cdrom = Some("/tmp/x.iso,if=floppy".into());
    assert!(matches!(
        env.driver.create(&bad).await,
        Err(Error::Invalid { .. })
    ));
    assert!(env.driver.power_state("not-a-uuid").await.is_err());
}

#[tokio::test]
async fn nic_on_a_persistent_tap() {
    if qemu_missing() {
        return;
    }
    if !onestack_testkit::require_root() {
        return;
    }
    let tap = format!("vtest{}", std::process::id() % 100_000);
    let made = Command::new("ip")
        .args(["tuntap", "add", "dev", &tap, "mode", "tap"])
        .output()
        .expect("ip runs");
    assert!(
        made.status.success(),
        "ip tuntap add: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    struct Tap(String);
    impl Drop for Tap {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    let _tap = Tap(tap.clone());
    let up = Command::new("ip")
        .args(["link", "set", "dev", &tap, "up"])
        .status();
    assert!(up.is_ok_and(|s| s.success()));
    let carrier =
        || std::fs::read_to_string(format!("/sys/class/net/{tap}/carrier")).unwrap_or_default();
    assert_eq!(carrier().trim(), "0", "nobody holds the tap yet");
    let mut env = Env::new();
    let mut spec = env.spec(6);
    spec.nics = vec![onestack_virt::Nic {
        ifname: tap.clone(),
        mac: "fa:16:3e:12:34:56".into(),
    }];
    let d = &env.driver;
    d.create(&spec).await.expect("create");
    d.start(&spec.uuid).await.expect("start");
    assert_eq!(
        d.power_state(&spec.uuid).await.expect("state"),
        PowerState::Running
    );
    // QEMU holds the tap open: the kernel reports carrier on it.
    assert_eq!(carrier().trim(), "1");
    d.delete(&spec.uuid).await.expect("delete");
    // The persistent tap outlives the guest.
    assert!(Path::new(&format!("/sys/class/net/{tap}")).exists());
}

/// The test guest, built (or found up to date) by `scripts/build-test-guest.sh`.
fn test_guest() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = repo.join("target/test-guest");
    let status = Command::new(repo.join("scripts/build-test-guest.sh"))
        .arg(&dir)
        .status()
        .expect("the guest build script runs");
    assert!(status.success(), "scripts/build-test-guest.sh failed");
    // The driver takes no path with `..` in it.
    dir.canonicalize().expect("the test guest's directory")
}

/// Waits for `marker` on the guest's serial console.
async fn wait_console(driver: &Driver, uuid: &str, marker: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = driver.console_output(uuid, None).await.expect("console");
        if text.contains(marker) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {marker:?} on the console after {timeout:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn real_guest_boots_reads_its_config_drive_and_obeys_the_power_button() {
    if qemu_missing() {
        return;
    }
    if !onestack_testkit::require_tools(&["genisoimage"]) {
        return;
    }
    let guest = test_guest();
    let mut env = Env::new();
    let d = &env.driver;
    let (disk, format) = d
        .cache_image("test-guest-disk", &guest.join("disk.img"), "raw", None)
        .await
        .expect("cache disk");
    let (kernel, _) = d
        .cache_image("test-guest-kernel", &guest.join("vmlinuz"), "aki", None)
        .await
        .expect("cache kernel");
    let (initrd, _) = d
        .cache_image("test-guest-initrd", &guest.join("initrd.img"), "ari", None)
        .await
        .expect("cache initrd");

    // One guest boots its disk through the firmware, one boots the kernel directly.
    let mut from_disk = env.spec(7);
    from_disk.memory_mb = 256;
    from_disk.root = RootDisk::Image { base: disk, format };
    from_disk.config_drive = true;
    let mut direct = env.spec(8);
    direct.memory_mb = 256;
    direct.kernel = Some(kernel);
    direct.ramdisk = Some(initrd);
    direct.cmdline = Some("console=ttyS0 quiet".into());
    direct.config_drive = true;
    let d = &env.driver;
    for (spec, hostname) in [(&from_disk, "from-disk"), (&direct, "direct-kernel")] {
        d.create(spec).await.expect("create");
        let mut files = BTreeMap::new();
        let meta = serde_json::json!({ "uuid": spec.uuid, "hostname": hostname, "name": hostname });
        files.insert(
            "openstack/latest/meta_data.json".to_owned(),
            meta.to_string().into_bytes(),
        );
        d.write_config_drive(&spec.uuid, &files)
            .await
            .expect("config drive");
        d.start(&spec.uuid).await.expect("start");
    }
    let t = Instant::now();
    let (a, b) = tokio::join!(
        wait_console(
            d,
            &from_disk.uuid,
            "ONESTACK-GUEST-UP hostname=from-disk",
            Duration::from_secs(60)
        ),
        wait_console(
            d,
            &direct.uuid,
            "ONESTACK-GUEST-UP hostname=direct-kernel",
            Duration::from_secs(60)
        ),
    );
    println!("both guests up in {:?}", t.elapsed());
    assert!(a.contains("config drive") && b.contains("config drive"));
    let tail = d
        .console_output(&direct.uuid, Some(1))
        .await
        .expect("console");
    assert_eq!(tail.lines().count(), 1, "{tail:?}");

    // Suspend and resume a running Linux: it still answers the power button afterwards.
    let t = Instant::now();
    d.suspend(&from_disk.uuid).await.expect("suspend");
    assert_eq!(
        d.power_state(&from_disk.uuid).await.expect("state"),
        PowerState::Suspended
    );
    d.start(&from_disk.uuid).await.expect("resume");
    println!(
        "suspend + resume of a 256 MiB Linux guest took {:?}",
        t.elapsed()
    );

    // The guests power themselves off on the ACPI button: a graceful shutdown.
    let t = Instant::now();
    let (a, b) = tokio::join!(
        d.shutdown(&from_disk.uuid, Duration::from_secs(30)),
        d.shutdown(&direct.uuid, Duration::from_secs(30))
    );
    println!("graceful shutdowns took {:?}", t.elapsed());
    assert!(
        a.expect("shutdown"),
        "the guest on its disk obeyed the power button"
    );
    assert!(
        b.expect("shutdown"),
        "the directly booted guest obeyed the power button"
    );
    assert_eq!(
        d.power_state(&from_disk.uuid).await.expect("state"),
        PowerState::Shutdown
    );
}

/// A volume hot-plugged into a running Linux guest: the guest sees the disk with the
/// volume's serial, writes to it, lets go of it on `device_del`, and the bytes are in the
/// volume's file afterwards. A stopped guest only records the volume for its next start.
#[tokio::test]
async fn volumes_hot_plug_into_a_running_linux_guest_and_out_again() {
    if qemu_missing() {
        return;
    }
    if !onestack_testkit::require_tools(&["genisoimage", "qemu-io"]) {
        return;
    }
    let guest = test_guest();
    let mut env = Env::new();
    let (disk, format) = env
        .driver
        .cache_image("test-guest-disk", &guest.join("disk.img"), "raw", None)
        .await
        .expect("cache disk");
    let mut spec = env.spec(9);
    spec.memory_mb = 256;
    spec.root = RootDisk::Image { base: disk, format };
    spec.config_drive = true;
    let volume_id = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    let file = env.dir.path().join(format!("volume-{volume_id}"));
    qemu_img_create("qcow2", &file, "64M");
    let volume = VolumeDisk {
        volume_id: volume_id.into(),
        path: file.clone(),
        read_only: false,
    };
    let d = &env.driver;
    d.create(&spec).await.expect("create");
    let script = "#!/bin/sh\n\
        while [ ! -b /dev/vdb ]; do usleep 100000; done\n\
        echo \"VOLUME-SEEN serial=$(cat /sys/block/vdb/serial)\" >/dev/console\n\
        echo onestack-volume-data | dd of=/dev/vdb bs=512 conv=sync 2>/dev/null\n\
        sync\n\
        echo VOLUME-WRITTEN >/dev/console\n\
        while [ -b /dev/vdb ]; do usleep 100000; done\n\
        echo VOLUME-GONE >/dev/console\n";
    let mut files = BTreeMap::new();
    files.insert(
        "openstack/latest/meta_data.json".to_owned(),
        serde_json::json!({"uuid": spec.uuid, "hostname": "volumes"})
            .to_string()
            .into_bytes(),
    );
    files.insert(
        "openstack/latest/user_data".to_owned(),
        script.as_bytes().to_vec(),
    );
    d.write_config_drive(&spec.uuid, &files)
        .await
        .expect("config drive");
    d.start(&spec.uuid).await.expect("start");
    wait_console(
        d,
        &spec.uuid,
        "ONESTACK-GUEST-UP hostname=volumes",
        Duration::from_secs(60),
    )
    .await;

    let t = Instant::now();
    d.attach_volume(&spec.uuid, &volume).await.expect("attach");
    d.attach_volume(&spec.uuid, &volume)
        .await
        .expect("attaching again changes nothing");
    wait_console(
        d,
        &spec.uuid,
        "VOLUME-SEEN serial=0f1e2d3c-4b5a-4968-8",
        Duration::from_secs(60),
    )
    .await;
    println!("hot-plugged volume seen by the guest in {:?}", t.elapsed());
    wait_console(d, &spec.uuid, "VOLUME-WRITTEN", Duration::from_secs(30)).await;
    let saved = d.spec(&spec.uuid).await.expect("spec").expect("saved");
    assert_eq!(saved.volumes, vec![volume.clone()]);

    let t = Instant::now();
    d.detach_volume(&spec.uuid, volume_id, Duration::from_secs(60))
        .await
        .expect("detach");
    println!("hot-unplug took {:?}", t.elapsed());
    wait_console(d, &spec.uuid, "VOLUME-GONE", Duration::from_secs(30)).await;
    d.detach_volume(&spec.uuid, volume_id, Duration::from_secs(1))
        .await
        .expect("detaching again changes nothing");
    let saved = d.spec(&spec.uuid).await.expect("spec").expect("saved");
    assert!(saved.volumes.is_empty());
    // QEMU let go of the file (no lock held) and the guest's bytes are in it.
    let read = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", "read -v 0 21"])
        .arg(&file)
        .output()
        .expect("qemu-io runs");
    let dump = String::from_utf8_lossy(&read.stdout);
    assert!(
        read.status.success(),
        "qemu-io: {dump} {}",
        String::from_utf8_lossy(&read.stderr)
    );
    // "onestack-volume-data\n", as qemu-io dumps it in hex.
    assert!(
        dump.contains("6f 6e 65 73 74 61 63 6b 2d 76 6f 6c 75 6d 65 2d")
            && dump.contains("64 61 74 61 0a"),
        "{dump}"
    );

    // A stopped guest only records it; the next start plugs it.
    d.shutdown(&spec.uuid, Duration::from_secs(30))
        .await
        .expect("shutdown");
    d.attach_volume(&spec.uuid, &volume)
        .await
        .expect("cold attach");
    d.start(&spec.uuid).await.expect("start with the volume");
    let pid = env.pid(&spec.uuid).expect("running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(String::from_utf8_lossy(&cmdline).contains("vol-0f1e2d3c4b5a49688776"));
    // The guest is not made to wait for a detach it cannot answer while suspended.
    d.suspend(&spec.uuid).await.expect("suspend");
    assert!(matches!(
        d.detach_volume(&spec.uuid, volume_id, Duration::from_secs(1))
            .await,
        Err(Error::WrongState { .. })
    ));
}
