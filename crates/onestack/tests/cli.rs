//! End-to-end: the real `onestack` binary, driven by the real `openstack` CLI
//! (python-openstackclient pinned in tests/e2e/requirements.txt, installed into `.venv` by
//! `make venv`). Nothing here is simulated.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive host tools to check what onestack did"
)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
mod e2e_compute;
mod e2e_hosts;
use common::root_or_skip;

/// Tests that run the network agent take turns: it owns every `os*` device on the host.
static HOST_AGENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `openstack` CLI: `$ONESTACK_OPENSTACK_CLI`, else `.venv/bin/openstack`.
fn openstack_cli() -> PathBuf {
    let path = std::env::var_os("ONESTACK_OPENSTACK_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/openstack"));
    assert!(
        path.exists(),
        "the openstack CLI is missing at {}: run `make venv` first",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `onestack up`, stopped with SIGTERM on drop.
struct Server {
    child: Option<Child>,
    /// The address it listens on: loopback, or an underlay's for joined hosts in namespaces.
    ip: &'static str,
    port: u16,
    data_dir: PathBuf,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        Self::start_on(data_dir, free_port())
    }

    fn start_on(data_dir: &Path, port: u16) -> Server {
        Self::start_with(data_dir, port, &[("ONESTACK_NETWORK__AGENT", "false")])
    }

    /// Starts with extra environment. Only one test at a time may run the network agent: it
    /// owns every `os*` device on the host.
    fn start_with(data_dir: &Path, port: u16, env: &[(&str, &str)]) -> Server {
        Self::start_listening(data_dir, "127.0.0.1", port, env)
    }

    /// [`Self::start_with`], listening on `ip`.
    fn start_listening(
        data_dir: &Path,
        ip: &'static str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_onestack"))
            .args(["up", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("{ip}:{port}")])
            .env("ONESTACK_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
            .envs(env.iter().copied())
            .env_remove("ONESTACK_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("onestack starts");
        let server = Server {
            child: Some(child),
            ip,
            port,
            data_dir: data_dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect((ip, port)).is_ok() && server.openrc_path().exists() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "onestack did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }

    fn openrc_path(&self) -> PathBuf {
        self.data_dir.join("admin-openrc")
    }

    /// The variables the printed openrc exports, as a user gets them with `source`.
    fn admin_env(&self) -> HashMap<String, String> {
        let text = std::fs::read_to_string(self.openrc_path()).unwrap();
        text.lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').replace(r"'\''", "'")))
            .collect()
    }

    /// Sends SIGTERM and waits; returns the exit status and what it printed.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (status, out)
    }
}

/// The data directory of a cloud whose agent touches the host: when the test ends it takes
/// the cloud's marked links along (the bridges of networks whose ports were still bound when
/// the cloud stopped, which a real cloud keeps for its guests), then the directory. Declared
/// before the `Server`, it outlives it; a restart within the test keeps them.
pub(crate) struct CloudDir(tempfile::TempDir);

impl CloudDir {
    pub(crate) fn new() -> CloudDir {
        CloudDir(tempfile::tempdir().unwrap())
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for CloudDir {
    fn drop(&mut self) {
        // The cloud's data directory is this one, or one below it (a test with hosts).
        common::delete_cloud_links(self.path());
        for entry in std::fs::read_dir(self.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            common::delete_cloud_links(&entry.path());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Guests outlive onestack (a restart re-adopts them); a test that fails before it
        // deletes its servers must not leave them running on the host.
        if std::thread::panicking() {
            stop_guests(&self.data_dir);
        }
        // The agent leaves its security-group tables to the guests it served (a real cloud
        // keeps them across restarts); a test cloud takes them along. A restarted server
        // applies its ruleset afresh.
        common::delete_cloud_tables(&self.data_dir);
    }
}

/// Kills the QEMU of every guest under `data_dir` (each checked by its command line naming
/// its own instance dir, so that a stale pid file never kills another process).
fn stop_guests(data_dir: &Path) {
    let Ok(instances) = std::fs::read_dir(data_dir.join("compute/instances")) else {
        return;
    };
    for instance in instances.flatten() {
        let dir = instance.path();
        let Ok(pid) = std::fs::read_to_string(dir.join("qemu.pid")) else {
            continue;
        };
        let pid = pid.trim();
        let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
            String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy())
        });
        if ours {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

/// Runs `openstack ARGS` with exactly `env` as its OS_* environment.
fn openstack(env: &HashMap<String, String>, args: &[&str]) -> Output {
    let mut command = Command::new(openstack_cli());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OS_")) {
        command.env_remove(k);
    }
    command
        .envs(env)
        .args(args)
        .output()
        .expect("openstack runs")
}

fn ok_json(env: &HashMap<String, String>, args: &[&str]) -> Value {
    let out = openstack(env, &[args, &["-f", "json"]].concat());
    assert!(
        out.status.success(),
        "openstack {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn ok(env: &HashMap<String, String>, args: &[&str]) -> String {
    let out = openstack(env, args);
    assert!(
        out.status.success(),
        "openstack {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(env: &HashMap<String, String>, args: &[&str], expect: &[&str]) {
    let out = openstack(env, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(!out.status.success(), "openstack {args:?} should fail");
    assert!(
        expect.iter().any(|e| stderr.contains(e)),
        "openstack {args:?}: expected one of {expect:?} in:\n{stderr}"
    );
}

/// `openstack ... --password-prompt`, answering the prompts on a terminal, as a person does.
fn with_password_prompt(env: &HashMap<String, String>, args: &[&str], password: &str) -> String {
    let command_line = std::iter::once(openstack_cli().display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-qfec", &command_line, "/dev/null"])
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut answered = 0;
    let mut buf = [0u8; 4096];
    while answered < 2 {
        let n = stdout.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the CLI ended before asking for the password twice:\n{seen}"
        );
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if seen.matches("Password:").count() > answered {
            stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
            stdin.flush().unwrap();
            answered += 1;
        }
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}{rest}");
    seen + &rest
}

#[test]
fn install_guide_walkthrough_with_the_openstack_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let admin = server.admin_env();
    assert_eq!(
        admin["OS_AUTH_URL"],
        format!("http://127.0.0.1:{}/identity/v3", server.port)
    );

    let token = ok_json(&admin, &["token", "issue"]);
    assert!(token["id"].as_str().unwrap().len() > 100);
    assert!(token["project_id"].is_string() && token["user_id"].is_string());

    let project = ok_json(
        &admin,
        &[
            "project",
            "create",
            "--domain",
            "default",
            "--description",
            "Demo Project",
            "demo",
        ],
    );
    assert_eq!(project["name"], "demo");
    assert_eq!(project["description"], "Demo Project");
    let service_project = ok_json(&admin, &["project", "show", "service"]);
    assert_eq!(service_project["domain_id"], "default");

    let created = with_password_prompt(
        &admin,
        &[
            "user",
            "create",
            "--domain",
            "default",
            "--password-prompt",
            "demo",
        ],
        "demo-secret",
    );
    assert!(created.contains("demo"), "{created}");

    let role = ok_json(&admin, &["role", "create", "user"]);
    assert_eq!(role["name"], "user");
    ok(
        &admin,
        &["role", "add", "--project", "demo", "--user", "demo", "user"],
    );

    // The install guide registers the services it deploys beside Keystone; onestack serves
    // identity and image itself, so register one it does not (placement, as the guide does).
    let service = ok_json(
        &admin,
        &[
            "service",
            "create",
            "--name",
            "placement",
            "--description",
            "Placement API",
            "placement",
        ],
    );
    assert_eq!(service["type"], "placement");
    for interface in ["public", "internal", "admin"] {
        let endpoint = ok_json(
            &admin,
            &[
                "endpoint",
                "create",
                "--region",
                "RegionOne",
                "placement",
                interface,
                "http://controller:8778",
            ],
        );
        assert_eq!(endpoint["interface"], interface);
        assert_eq!(endpoint["service_name"], "placement");
    }
    let endpoints = ok_json(&admin, &["endpoint", "list"]);
    let count = |kind: &str| {
        endpoints
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["Service Type"] == kind)
            .count()
    };
    assert_eq!(count("placement"), 3, "{endpoints}");
    assert_eq!(count("identity"), 3, "{endpoints}");
    assert_eq!(count("image"), 3, "{endpoints}");

    let assignments = ok_json(&admin, &["role", "assignment", "list", "--names"]);
    assert!(
        assignments
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["Role"] == "user"
                && a["User"] == "demo@Default"
                && a["Project"] == "demo@Default"),
        "{assignments}"
    );

    // The demo user, with the password given at the prompt.
    let mut demo = admin.clone();
    demo.insert("OS_USERNAME".into(), "demo".into());
    demo.insert("OS_PASSWORD".into(), "demo-secret".into());
    demo.insert("OS_PROJECT_NAME".into(), "demo".into());
    let demo_token = ok_json(&demo, &["token", "issue"]);
    assert_eq!(demo_token["project_id"], project["id"]);

    // Application credentials: created by admin, then used alone to authenticate.
    let credential = ok_json(
        &admin,
        &["application", "credential", "create", "e2e-credential"],
    );
    let secret = credential["Secret"].as_str().unwrap().to_owned();
    let app_env: HashMap<String, String> = [
        ("OS_AUTH_URL", admin["OS_AUTH_URL"].clone()),
        ("OS_AUTH_TYPE", "v3applicationcredential".into()),
        (
            "OS_APPLICATION_CREDENTIAL_ID",
            credential["ID"].as_str().unwrap().to_owned(),
        ),
        ("OS_APPLICATION_CREDENTIAL_SECRET", secret.clone()),
        ("OS_IDENTITY_API_VERSION", "3".into()),
        ("OS_INTERFACE", "public".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let app_token = ok_json(&app_env, &["token", "issue"]);
    assert_eq!(app_token["project_id"], token["project_id"]);
    let listed = ok_json(&admin, &["application", "credential", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["Name"] == "e2e-credential")
    );

    // Token revocation: the revoked token no longer works.
    let doomed = ok_json(&admin, &["token", "issue"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_env: HashMap<String, String> = [
        ("OS_AUTH_URL", admin["OS_AUTH_URL"].clone()),
        ("OS_AUTH_TYPE", "token".into()),
        ("OS_TOKEN", doomed.clone()),
        ("OS_PROJECT_NAME", "admin".into()),
        ("OS_PROJECT_DOMAIN_NAME", "Default".into()),
        ("OS_IDENTITY_API_VERSION", "3".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    ok(&token_env, &["project", "list"]);
    ok(&admin, &["token", "revoke", &doomed]);
    fails(
        &token_env,
        &["project", "list"],
        &["401", "authentication", "could not find token", "404"],
    );

    // Negative cases.
    let mut wrong = admin.clone();
    wrong.insert("OS_PASSWORD".into(), "not-the-password".into());
    fails(&wrong, &["token", "issue"], &["401", "authentication"]);
    fails(&demo, &["user", "list"], &["403", "not authorized"]);
    fails(
        &demo,
        &["project", "create", "sneaky"],
        &["403", "not authorized"],
    );
    fails(
        &admin,
        &["project", "show", "no-such-project"],
        &["no project", "could not find", "404"],
    );
    let projects = ok_json(&admin, &["project", "list"]);
    assert!(
        !projects
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["Name"] == "sneaky")
    );

    let (status, _) = server.stop();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}");
}

#[test]
fn restart_reuses_data_and_keeps_a_changed_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let port = server.port;
    let mut admin = server.admin_env();
    let first_password = admin["OS_PASSWORD"].clone();
    ok(&admin, &["project", "create", "kept"]);
    ok(
        &admin,
        &["user", "set", "--password", "changed-password", "admin"],
    );
    let (status, out) = server.stop();
    assert!(status.success());
    assert!(out.contains("first start"), "{out}");

    let server = Server::start_on(dir.path(), port);
    admin.insert("OS_PASSWORD".into(), "changed-password".into());
    let projects = ok_json(&admin, &["project", "list"]);
    assert!(
        projects
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["Name"] == "kept"),
        "{projects}"
    );
    // The bootstrap did not put the generated password back.
    admin.insert("OS_PASSWORD".into(), first_password);
    fails(&admin, &["token", "issue"], &["401", "authentication"]);
    let (status, out) = server.stop();
    assert!(status.success());
    assert!(!out.contains("first start"), "{out}");
}

fn onestack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onestack"))
        .args(args)
        .env_remove("ONESTACK_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn clear_start_up_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let other = tempfile::tempdir().unwrap();
    let busy = onestack(&[
        "up",
        "--data-dir",
        other.path().to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{}", server.port),
    ]);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    drop(server);

    let unwritable = onestack(&[
        "up",
        "--data-dir",
        "/proc/onestack-cannot-be-here",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!unwritable.status.success());
    assert!(String::from_utf8_lossy(&unwritable.stderr).contains("--data-dir"));

    let corrupt = tempfile::tempdir().unwrap();
    std::fs::write(corrupt.path().join("onestack.db"), vec![b'x'; 4096]).unwrap();
    let out = onestack(&[
        "up",
        "--data-dir",
        corrupt.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable SQLite database"));

    let bad_config = corrupt.path().join("bad.toml");
    std::fs::write(&bad_config, "[identity]\ntoken_expiration = \"soon\"\n").unwrap();
    let out = onestack(&["up", "--config", bad_config.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration"));

    let version = onestack(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("onestack "));
    let help = onestack(&["--help"]);
    for command in ["up", "openrc", "token-keys", "config"] {
        assert!(String::from_utf8_lossy(&help.stdout).contains(command));
    }
    let config = onestack(&["config"]);
    assert!(String::from_utf8_lossy(&config.stdout).contains("token_expiration = 3600"));
}

#[test]
fn openrc_prints_credentials_for_any_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let data = dir.path().to_str().unwrap();
    let admin = onestack(&["openrc", "--data-dir", data]);
    let text = String::from_utf8_lossy(&admin.stdout);
    assert!(
        text.contains("OS_USERNAME='admin'") && text.contains("OS_PASSWORD="),
        "{text}"
    );
    let demo = onestack(&[
        "openrc",
        "--data-dir",
        data,
        "--user",
        "demo",
        "--project",
        "demo",
    ]);
    let text = String::from_utf8_lossy(&demo.stdout);
    assert!(
        text.contains("OS_USERNAME='demo'") && text.contains("read -rsp"),
        "{text}"
    );
    let keys = onestack(&["token-keys", "rotate", "--data-dir", data]);
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    // Tokens keep working across a rotation.
    ok_json(&server.admin_env(), &["token", "issue"]);
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

fn sha512_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(data))
}

#[test]
fn image_walkthrough_with_the_openstack_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let admin = server.admin_env();

    // A real qcow2 made by qemu-img, with some data in it.
    let qcow2 = dir.path().join("cirros.qcow2");
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&qcow2)
        .arg("64M")
        .status()
        .expect("qemu-img (qemu-utils) is installed");
    assert!(status.success());
    let created = ok_json(
        &admin,
        &[
            "image",
            "create",
            "--file",
            qcow2.to_str().unwrap(),
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "--public",
            "--property",
            "os_distro=cirros",
            "--property",
            "hw_disk_bus=virtio",
            "--tag",
            "tiny",
            "cirros",
        ],
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let shown = ok_json(&admin, &["image", "show", "cirros"]);
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["visibility"], "public");
    assert_eq!(shown["disk_format"], "qcow2");
    assert_eq!(shown["virtual_size"], 64 * 1024 * 1024);
    let bytes = std::fs::read(&qcow2).unwrap();
    assert_eq!(shown["size"], bytes.len());
    assert_eq!(shown["checksum"], md5_hex(&bytes));
    assert_eq!(shown["properties"]["os_distro"], "cirros", "{shown}");
    assert!(shown["tags"].to_string().contains("tiny"), "{shown}");

    let raw = dir.path().join("data.raw");
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&raw, &data).unwrap();
    ok(
        &admin,
        &[
            "image",
            "create",
            "--file",
            raw.to_str().unwrap(),
            "--disk-format",
            "raw",
            "--private",
            "private-one",
        ],
    );
    ok(
        &admin,
        &[
            "image",
            "create",
            "--file",
            raw.to_str().unwrap(),
            "--disk-format",
            "raw",
            "--shared",
            "--tag",
            "tiny",
            "shared-one",
        ],
    );

    let listed = ok_json(
        &admin,
        &["image", "list", "--tag", "tiny", "--sort", "name:asc"],
    );
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["cirros", "shared-one"]);
    let by_property = ok_json(&admin, &["image", "list", "--property", "os_distro=cirros"]);
    assert_eq!(by_property.as_array().unwrap().len(), 1);
    let limited = ok_json(
        &admin,
        &["image", "list", "--limit", "1", "--sort", "name:desc"],
    );
    assert_eq!(limited.as_array().unwrap().len(), 1);

    ok(
        &admin,
        &[
            "image",
            "set",
            "--name",
            "cirros-0.6",
            "--property",
            "hw_qemu_guest_agent=yes",
            "cirros",
        ],
    );
    ok(
        &admin,
        &["image", "unset", "--property", "hw_disk_bus", "cirros-0.6"],
    );
    let changed = ok_json(&admin, &["image", "show", "cirros-0.6"]);
    assert_eq!(changed["properties"]["hw_qemu_guest_agent"], "yes");
    assert!(
        changed["properties"].get("hw_disk_bus").is_none(),
        "{changed}"
    );

    // Download byte for byte; md5 and sha512 as recorded.
    let saved = dir.path().join("saved.raw");
    ok(
        &admin,
        &[
            "image",
            "save",
            "--file",
            saved.to_str().unwrap(),
            "private-one",
        ],
    );
    let back = std::fs::read(&saved).unwrap();
    assert_eq!(back, data);
    let private = ok_json(&admin, &["image", "show", "private-one"]);
    assert_eq!(private["checksum"], md5_hex(&back));
    assert_eq!(
        private["properties"]["os_hash_value"],
        sha512_hex(&back),
        "{private}"
    );

    // Sharing with another project, accepted by that project.
    ok(&admin, &["project", "create", "demo"]);
    ok(
        &admin,
        &[
            "user",
            "create",
            "--password",
            "demo-pw",
            "--project",
            "demo",
            "demo",
        ],
    );
    ok(
        &admin,
        &[
            "role",
            "add",
            "--project",
            "demo",
            "--user",
            "demo",
            "member",
        ],
    );
    let mut demo = admin.clone();
    demo.insert("OS_USERNAME".into(), "demo".into());
    demo.insert("OS_PASSWORD".into(), "demo-pw".into());
    demo.insert("OS_PROJECT_NAME".into(), "demo".into());
    let shared_id = ok_json(&admin, &["image", "show", "shared-one"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fails(
        &demo,
        &["image", "show", "private-one"],
        &["no image", "could not find", "404"],
    );
    ok(&admin, &["image", "add", "project", "shared-one", "demo"]);
    ok(&demo, &["image", "set", "--accept", &shared_id]);
    let seen = ok_json(&demo, &["image", "list"]);
    assert!(
        seen.as_array()
            .unwrap()
            .iter()
            .any(|i| i["Name"] == "shared-one"),
        "{seen}"
    );
    assert!(
        !seen
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["Name"] == "private-one"),
        "{seen}"
    );
    fails(
        &demo,
        &["image", "delete", &shared_id],
        &["403", "forbidden", "not permitted"],
    );

    // The interoperable import (stage + glance-direct).
    ok(
        &admin,
        &[
            "image",
            "create",
            "--import",
            "--file",
            raw.to_str().unwrap(),
            "--disk-format",
            "raw",
            "imported",
        ],
    );
    let mut imported = Value::Null;
    for _ in 0..100 {
        imported = ok_json(&admin, &["image", "show", "imported"]);
        if imported["status"] == "active" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(imported["status"], "active", "{imported}");
    assert_eq!(imported["checksum"], md5_hex(&data));

    for name in ["cirros-0.6", "private-one", "shared-one", "imported"] {
        ok(&admin, &["image", "delete", name]);
    }
    assert!(
        ok_json(&admin, &["image", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(!dir.path().join("images").join(&id).exists());
}

fn host_links() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-br", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

fn host_namespaces() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

/// Waits up to 10 s for `check` to hold.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn network_walkthrough_with_the_openstack_cli() {
    let _agent = HOST_AGENT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // The host checks need root; a run that opts out of root runs the API part alone (and the
    // skip is counted).
    let agent = root_or_skip();
    let host = format!("cli-host-{}", std::process::id());
    let server = Server::start_with(
        dir.path(),
        free_port(),
        &[
            (
                "ONESTACK_NETWORK__AGENT",
                if agent { "true" } else { "false" },
            ),
            ("ONESTACK_NETWORK__HOST", &host),
        ],
    );
    let admin = server.admin_env();

    // The host's agent reports: Neutron's four agents on it, alive.
    if agent {
        eventually("the network agents listed", || {
            let agents = ok_json(&admin, &["network", "agent", "list", "--host", &host]);
            agents.as_array().is_some_and(|a| {
                a.len() == 4 && a.iter().all(|x| x["Alive"] == true || x["Alive"] == ":-)")
            })
        });
        let dhcp = ok_json(
            &admin,
            &["network", "agent", "list", "--agent-type", "dhcp"],
        );
        assert!(
            dhcp.as_array()
                .unwrap()
                .iter()
                .any(|a| a["Host"] == host.as_str() && a["Binary"] == "neutron-dhcp-agent"),
            "{dhcp}"
        );
    }

    let net = ok_json(
        &admin,
        &["network", "create", "--description", "first", "net01"],
    );
    let net_id = net["id"].as_str().unwrap().to_owned();
    assert_eq!(net["mtu"], 1450);
    assert_eq!(net["provider:network_type"], "vxlan");
    let sub = ok_json(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "net01",
            "--subnet-range",
            "10.252.1.0/24",
            "--allocation-pool",
            "start=10.252.1.10,end=10.252.1.100",
            "--dns-nameserver",
            "192.0.2.53",
            "sub01",
        ],
    );
    assert_eq!(sub["gateway_ip"], "10.252.1.1");
    assert_eq!(sub["enable_dhcp"], true);
    assert_eq!(sub["dns_nameservers"], serde_json::json!(["192.0.2.53"]));
    let static_sub = ok_json(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "net01",
            "--subnet-range",
            "10.252.2.0/24",
            "--no-dhcp",
            "static01",
        ],
    );
    assert_eq!(static_sub["enable_dhcp"], false);

    let sg = ok_json(
        &admin,
        &[
            "security",
            "group",
            "create",
            "--description",
            "ssh in",
            "ssh",
        ],
    );
    let rule = ok_json(
        &admin,
        &[
            "security",
            "group",
            "rule",
            "create",
            "--proto",
            "tcp",
            "--dst-port",
            "22",
            "ssh",
        ],
    );
    assert_eq!(rule["port_range_min"], 22);
    assert_eq!(rule["security_group_id"], sg["id"]);
    fails(
        &admin,
        &[
            "security",
            "group",
            "rule",
            "create",
            "--proto",
            "tcp",
            "--dst-port",
            "22",
            "ssh",
        ],
        &["already exists", "conflict"],
    );

    let port = ok_json(
        &admin,
        &[
            "port",
            "create",
            "--network",
            "net01",
            "--fixed-ip",
            "subnet=sub01,ip-address=10.252.1.20",
            "--security-group",
            "ssh",
            "--host",
            &host,
            "port01",
        ],
    );
    let port_id = port["id"].as_str().unwrap().to_owned();
    assert_eq!(port["fixed_ips"][0]["ip_address"], "10.252.1.20");
    fails(
        &admin,
        &[
            "port",
            "create",
            "--network",
            "net01",
            "--fixed-ip",
            "subnet=sub01,ip-address=10.252.1.20",
            "dup",
        ],
        &["already allocated", "conflict"],
    );
    fails(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "net01",
            "--subnet-range",
            "10.252.1.128/25",
            "overlap",
        ],
        &["overlaps"],
    );

    let listed = ok_json(&admin, &["network", "list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["Name"] == "net01")
    );
    ok(
        &admin,
        &[
            "network",
            "set",
            "--name",
            "net01b",
            "--description",
            "renamed",
            "net01",
        ],
    );
    let shown = ok_json(&admin, &["network", "show", "net01b"]);
    assert_eq!(shown["description"], "renamed");
    assert_eq!(shown["subnets"].as_array().unwrap().len(), 2);
    let quota = ok_json(&admin, &["quota", "show"]);
    let limit = |resource: &str| {
        quota
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["Resource"] == resource)
            .map(|q| q["Limit"].clone())
    };
    assert_eq!(limit("networks"), Some(serde_json::json!(100)), "{quota}");
    assert_eq!(limit("ports"), Some(serde_json::json!(500)), "{quota}");

    if agent {
        // The host shows the bridge, the VXLAN device, the port's tap, the DHCP namespace and
        // the port's firewall chains.
        let bridge = format!("osbr-{}", &net_id[..10]);
        let tap = format!("ostp-{}", &port_id[..10]);
        eventually("the bridge, VXLAN and tap", || {
            let links = host_links();
            links.contains(&bridge)
                && links.contains(&format!("osvx-{}", &net_id[..10]))
                && links.contains(&tap)
        });
        eventually("the DHCP namespace", || {
            host_namespaces().contains(&format!("osdhcp-{net_id}"))
        });
        let table = common::cloud_table(&server.data_dir).expect("the cloud has an id");
        let rules = Command::new("nft")
            .args(["list", "table", "bridge", &table])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&rules.stdout).contains(&tap),
            "the port has firewall chains"
        );
        let port = ok_json(&admin, &["port", "show", "port01"]);
        assert_eq!(port["status"], "ACTIVE");
    }

    // The classic walkthrough's L3 part: external network, router, floating IP.
    ok(&admin, &["network", "create", "--external", "public01"]);
    ok(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "public01",
            "--subnet-range",
            "203.0.113.0/24",
            "--gateway",
            "203.0.113.1",
            "--no-dhcp",
            "public01-sub",
        ],
    );
    ok(&admin, &["network", "create", "net-r"]);
    ok(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "net-r",
            "--subnet-range",
            "10.77.0.0/24",
            "sub-r",
        ],
    );
    let router = ok_json(&admin, &["router", "create", "r1"]);
    let router_id = router["id"].as_str().unwrap().to_owned();
    ok(
        &admin,
        &["router", "set", "--external-gateway", "public01", "r1"],
    );
    ok(&admin, &["router", "add", "subnet", "r1", "sub-r"]);
    let shown = ok_json(&admin, &["router", "show", "r1"]);
    assert_eq!(
        shown["external_gateway_info"]["external_fixed_ips"][0]["ip_address"], "203.0.113.2",
        "{shown}"
    );
    ok(&admin, &["port", "create", "--network", "net-r", "vmport"]);
    let fip = ok_json(&admin, &["floating", "ip", "create", "public01"]);
    let address = fip["floating_ip_address"].as_str().unwrap().to_owned();
    ok(
        &admin,
        &["floating", "ip", "set", "--port", "vmport", &address],
    );
    let fip = ok_json(&admin, &["floating", "ip", "show", &address]);
    assert_eq!(fip["router_id"], router_id.as_str(), "{fip}");
    let listed = ok(&admin, &["floating", "ip", "list"]);
    assert!(listed.contains(&address), "{listed}");
    fails(
        &admin,
        &["router", "delete", "r1"],
        &["still has ports", "conflict"],
    );
    if agent {
        eventually("the router namespace", || {
            host_namespaces().contains(&format!("osrtr-{router_id}"))
        });
    }
    ok(&admin, &["floating", "ip", "unset", "--port", &address]);
    let fip = ok_json(&admin, &["floating", "ip", "show", &address]);
    assert_eq!(fip["port_id"], serde_json::Value::Null, "{fip}");
    ok(&admin, &["floating", "ip", "delete", &address]);
    ok(&admin, &["router", "remove", "subnet", "r1", "sub-r"]);
    ok(&admin, &["router", "unset", "--external-gateway", "r1"]);
    ok(&admin, &["router", "delete", "r1"]);
    ok(&admin, &["port", "delete", "vmport"]);
    ok(&admin, &["network", "delete", "net-r", "public01"]);
    if agent {
        eventually("the router namespace to go", || {
            !host_namespaces().contains(&format!("osrtr-{router_id}"))
        });
    }

    fails(
        &admin,
        &["network", "delete", "net01b"],
        &["in use", "conflict"],
    );
    ok(&admin, &["port", "delete", "port01"]);
    ok(&admin, &["subnet", "delete", "sub01", "static01"]);
    ok(&admin, &["network", "delete", "net01b"]);
    ok(&admin, &["security", "group", "delete", "ssh"]);
    if agent {
        eventually("everything of the network to go", || {
            let links = host_links();
            !links.contains(&net_id[..10])
                && !links.contains(&port_id[..10])
                && !host_namespaces().contains(&net_id)
        });
    }
}

#[test]
fn volume_walkthrough_with_the_openstack_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let admin = server.admin_env();
    let file = |id: &str| dir.path().join("volumes").join(format!("volume-{id}"));

    // The catalog has both names; the CLI negotiates the volume microversion itself.
    let services = ok_json(&admin, &["service", "list"]);
    let types: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"block-storage") && types.contains(&"volumev3"),
        "{types:?}"
    );

    let created = ok_json(
        &admin,
        &[
            "volume",
            "create",
            "--size",
            "1",
            "--property",
            "tier=gold",
            "data",
        ],
    );
    let id = created["id"].as_str().unwrap().to_owned();
    eventually("the volume to be available", || {
        ok_json(&admin, &["volume", "show", &id])["status"] == "available"
    });
    assert!(file(&id).exists(), "no volume file");
    let listed = ok_json(&admin, &["volume", "list"]);
    assert_eq!(listed[0]["Name"], "data", "{listed}");
    assert_eq!(listed[0]["Size"], 1, "{listed}");

    // Grow it, rename it, flag it, by name.
    ok(&admin, &["volume", "set", "--size", "2", "data"]);
    eventually("the volume to grow", || {
        let shown = ok_json(&admin, &["volume", "show", &id]);
        shown["size"] == 2 && shown["status"] == "available"
    });
    ok(
        &admin,
        &[
            "volume",
            "set",
            "--name",
            "data2",
            "--bootable",
            "--read-only",
            "data",
        ],
    );
    let shown = ok_json(&admin, &["volume", "show", "data2"]);
    assert_eq!(shown["bootable"], true, "{shown}");
    assert_eq!(shown["properties"]["readonly"], "True", "{shown}");
    assert_eq!(shown["properties"]["tier"], "gold", "{shown}");

    let made = ok_json(
        &admin,
        &[
            "volume",
            "type",
            "create",
            "--property",
            "multiattach=<is> False",
            "gold",
        ],
    );
    assert_eq!(made["name"], "gold");
    let typed = ok_json(
        &admin,
        &["volume", "create", "--size", "1", "--type", "gold", "typed"],
    );
    assert_eq!(typed["type"], "gold", "{typed}");
    fails(
        &admin,
        &["volume", "type", "delete", "gold"],
        &["in use", "failed to delete"],
    );
    // A private type shared with one project; the service, its pool and capabilities.
    ok(
        &admin,
        &[
            "volume",
            "type",
            "create",
            "--private",
            "--project",
            "admin",
            "hidden",
        ],
    );
    let hidden = ok_json(&admin, &["volume", "type", "show", "hidden"]);
    let admin_project = ok_json(&admin, &["project", "show", "admin"])["id"].clone();
    assert_eq!(hidden["is_public"], false, "{hidden}");
    assert!(
        hidden["access_project_ids"]
            .to_string()
            .contains(admin_project.as_str().unwrap()),
        "{hidden}"
    );
    ok(
        &admin,
        &["volume", "type", "unset", "--project", "admin", "hidden"],
    );
    ok(&admin, &["volume", "type", "delete", "hidden"]);
    let services = ok_json(&admin, &["volume", "service", "list"]);
    assert!(
        services
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["State"] == "up")),
        "{services}"
    );
    let backend = services[0]["Host"].as_str().unwrap().to_owned();
    let pools = ok_json(&admin, &["volume", "backend", "pool", "list", "--long"]);
    assert!(pools.to_string().contains(&backend), "{pools}");
    let capability = ok_json(
        &admin,
        &["volume", "backend", "capability", "show", &backend],
    );
    assert!(
        capability.to_string().contains("multiattach"),
        "{capability}"
    );
    let quota = ok_json(&admin, &["quota", "show", "--volume", "admin"]);
    assert!(quota.to_string().contains("volumes"), "{quota}");

    // A volume from an image: bootable, with the image's metadata.
    let raw = dir.path().join("disk.raw");
    std::fs::write(&raw, vec![7u8; 1 << 20]).unwrap();
    let image = ok_json(
        &admin,
        &[
            "image",
            "create",
            "--file",
            raw.to_str().unwrap(),
            "--disk-format",
            "raw",
            "disk",
        ],
    );
    let from_image = ok_json(
        &admin,
        &[
            "volume",
            "create",
            "--size",
            "1",
            "--image",
            image["id"].as_str().unwrap(),
            "boot",
        ],
    );
    let boot = from_image["id"].as_str().unwrap().to_owned();
    eventually("the volume from the image", || {
        ok_json(&admin, &["volume", "show", &boot])["status"] == "available"
    });
    let shown = ok_json(&admin, &["volume", "show", &boot]);
    assert_eq!(shown["bootable"], true, "{shown}");
    assert_eq!(
        shown["volume_image_metadata"]["image_name"], "disk",
        "{shown}"
    );

    // A snapshot, a volume from it, and both gone again.
    let snap = ok_json(
        &admin,
        &["volume", "snapshot", "create", "--volume", "data2", "snap"],
    );
    let snap_id = snap["id"].as_str().unwrap().to_owned();
    eventually("the snapshot", || {
        ok_json(&admin, &["volume", "snapshot", "show", &snap_id])["status"] == "available"
    });
    ok(
        &admin,
        &[
            "volume",
            "snapshot",
            "set",
            "--property",
            "taken=nightly",
            "snap",
        ],
    );
    let with_property = ok_json(&admin, &["volume", "snapshot", "show", "snap"]);
    assert_eq!(
        with_property["properties"]["taken"], "nightly",
        "{with_property}"
    );
    let restored = ok_json(
        &admin,
        &["volume", "create", "--snapshot", "snap", "restored"],
    );
    let restored_id = restored["id"].as_str().unwrap().to_owned();
    eventually("the volume from the snapshot", || {
        ok_json(&admin, &["volume", "show", &restored_id])["status"] == "available"
    });
    assert_eq!(
        ok_json(&admin, &["volume", "snapshot", "list"])[0]["Name"],
        "snap"
    );
    ok(&admin, &["volume", "snapshot", "delete", "snap"]);
    eventually("the snapshot to go", || {
        ok_json(&admin, &["volume", "snapshot", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    });

    // A transfer: offered, listed, withdrawn; offered again and accepted with its key.
    let offer = ok_json(
        &admin,
        &[
            "volume", "transfer", "request", "create", "--name", "t1", "typed",
        ],
    );
    let offer_id = offer["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ok_json(&admin, &["volume", "show", "typed"])["status"],
        "awaiting-transfer"
    );
    let offers = ok_json(&admin, &["volume", "transfer", "request", "list"]);
    assert_eq!(offers[0]["ID"], offer_id.as_str(), "{offers}");
    ok(
        &admin,
        &["volume", "transfer", "request", "delete", &offer_id],
    );
    assert_eq!(
        ok_json(&admin, &["volume", "show", "typed"])["status"],
        "available"
    );
    let offer = ok_json(
        &admin,
        &["volume", "transfer", "request", "create", "typed"],
    );
    let key = offer["auth_key"].as_str().unwrap().to_owned();
    ok(
        &admin,
        &[
            "volume",
            "transfer",
            "request",
            "accept",
            "--auth-key",
            &key,
            offer["id"].as_str().unwrap(),
        ],
    );
    assert_eq!(
        ok_json(&admin, &["volume", "show", "typed"])["status"],
        "available"
    );

    // A volume's data into an image.
    let uploaded = ok_json(
        &admin,
        &[
            "image",
            "create",
            "--volume",
            "data2",
            "--disk-format",
            "qcow2",
            "from-volume",
        ],
    );
    let image_id = uploaded["image_id"].as_str().unwrap().to_owned();
    eventually("the image from the volume", || {
        ok_json(&admin, &["image", "show", &image_id])["status"] == "active"
    });
    eventually("data2 after its upload", || {
        ok_json(&admin, &["volume", "show", "data2"])["status"] == "available"
    });
    ok(&admin, &["image", "delete", &image_id]);

    // Backups: whole, incremental on it, restored into a new volume and over one.
    let backup = ok_json(
        &admin,
        &["volume", "backup", "create", "--name", "nightly", "data2"],
    );
    let backup_id = backup["id"].as_str().unwrap().to_owned();
    let backup_ready =
        |id: &str| ok_json(&admin, &["volume", "backup", "show", id])["status"] == "available";
    eventually("the backup", || backup_ready(&backup_id));
    eventually("data2 after its backup", || {
        ok_json(&admin, &["volume", "show", "data2"])["status"] == "available"
    });
    let delta = ok_json(
        &admin,
        &[
            "volume",
            "backup",
            "create",
            "--incremental",
            "--name",
            "delta",
            "data2",
        ],
    );
    let delta_id = delta["id"].as_str().unwrap().to_owned();
    eventually("the incremental backup", || backup_ready(&delta_id));
    let shown = ok_json(&admin, &["volume", "backup", "show", "delta"]);
    assert_eq!(shown["is_incremental"], true, "{shown}");
    assert_eq!(
        ok_json(&admin, &["volume", "backup", "list"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    ok(
        &admin,
        &["volume", "backup", "restore", "delta", "from-backup"],
    );
    eventually("the volume restored from the backup", || {
        ok_json(&admin, &["volume", "show", "from-backup"])["status"] == "available"
    });
    eventually("data2 after its incremental backup", || {
        ok_json(&admin, &["volume", "show", "data2"])["status"] == "available"
    });
    ok(
        &admin,
        &["volume", "backup", "restore", "--force", "nightly", "data2"],
    );
    eventually("data2 restored over", || {
        ok_json(&admin, &["volume", "show", "data2"])["status"] == "available"
    });
    ok(&admin, &["volume", "backup", "delete", "delta"]);
    eventually("the incremental backup to go", || {
        ok_json(&admin, &["volume", "backup", "list"])
            .as_array()
            .unwrap()
            .len()
            == 1
    });
    ok(&admin, &["volume", "backup", "delete", "nightly"]);
    eventually("the backups to go", || {
        ok_json(&admin, &["volume", "backup", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    });

    ok(
        &admin,
        &[
            "volume",
            "delete",
            "data2",
            "typed",
            "boot",
            "restored",
            "from-backup",
        ],
    );
    eventually("the volumes to go", || {
        ok_json(&admin, &["volume", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    });
    assert!(!file(&id).exists(), "the volume file stayed");
    ok(&admin, &["volume", "type", "delete", "gold"]);
}
