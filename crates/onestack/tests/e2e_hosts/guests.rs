//! A real QEMU guest on a joined host: the controller places it there, the joined agent
//! fetches its image and config drive over the agent protocol, boots it, carries out its
//! actions and snapshot, keeps it running while the agent is away, and removes it when it
//! is back after the server was deleted in its absence.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{HOST, join_token, wait_state};
use crate::e2e_compute::{act, console, guest_image_and_tiny_flavor, test_guest, within};
use crate::{Server, fails, free_port, ok, ok_json, root_or_skip, stop_guests};

/// A joined host's agent with the QEMU driver, its log in its data directory; killed with
/// its guests when dropped.
struct JoinedAgent {
    child: Child,
    data_dir: PathBuf,
}

impl JoinedAgent {
    fn start(url: &str, token: Option<&str>, data_dir: &Path) -> Self {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("agent.log"))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_onestack"));
        command
            .args(["join", url, "--name", HOST, "--data-dir"])
            .arg(data_dir);
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        let child = command
            .env("ONESTACK_COMPUTE__DRIVER", "qemu")
            .env("ONESTACK_COMPUTE__REPORT_INTERVAL", "1")
            // Beside the controller in its network namespace: it builds no ports.
            .env("ONESTACK_NETWORK__AGENT", "false")
            .env_remove("ONESTACK_CONFIG")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("onestack join starts");
        Self {
            child,
            data_dir: data_dir.to_owned(),
        }
    }

    /// Kills the agent alone (its guests keep running).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn console(&self, server_id: &str) -> String {
        let path = self.instance(server_id).join("console.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    fn instance(&self, server_id: &str) -> PathBuf {
        self.data_dir.join("compute/instances").join(server_id)
    }

    fn qemu_pid(&self, server_id: &str) -> Option<u32> {
        let pid = std::fs::read_to_string(self.instance(server_id).join("qemu.pid")).ok()?;
        pid.trim().parse().ok()
    }
}

impl Drop for JoinedAgent {
    fn drop(&mut self) {
        self.kill();
        stop_guests(&self.data_dir);
    }
}

#[test]
fn a_real_guest_runs_on_a_joined_host() {
    if !root_or_skip() {
        return;
    }
    let guest = test_guest();
    let dir = crate::CloudDir::new();
    let controller_dir = dir.path().join("controller");
    let host_dir = dir.path().join(HOST);
    let server = Server::start_with(
        &controller_dir,
        free_port(),
        &[
            ("ONESTACK_NETWORK__AGENT", "false"),
            ("ONESTACK_COMPUTE__DRIVER", "fake"),
            ("ONESTACK_COMPUTE__REPORT_INTERVAL", "1"),
        ],
    );
    let admin = server.admin_env();
    let url = format!("http://127.0.0.1:{}", server.port);
    guest_image_and_tiny_flavor(&admin, &guest);

    let mut agent = JoinedAgent::start(&url, Some(&join_token(&controller_dir)), &host_dir);
    wait_state(&admin, "up", Duration::from_secs(10));

    // A server with ports never lands on a host that plugs none (no network agent there).
    ok(&admin, &["network", "create", "wired"]);
    ok(
        &admin,
        &[
            "subnet",
            "create",
            "--network",
            "wired",
            "--subnet-range",
            "10.79.0.0/24",
            "wired-v4",
        ],
    );
    fails(
        &admin,
        &[
            "server",
            "create",
            "--flavor",
            "e2e.tiny",
            "--image",
            "guest",
            "--availability-zone",
            &format!("nova:{HOST}"),
            "--network",
            "wired",
            "--wait",
            "portful",
        ],
        &["rror creating server"],
    );
    let refused = ok_json(&admin, &["server", "show", "portful"]);
    assert_eq!(refused["status"], "ERROR", "{refused}");
    assert!(
        refused["fault"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("No valid host")),
        "{refused}"
    );
    ok(&admin, &["server", "delete", "--wait", "portful"]);

    let started = Instant::now();
    let booted = ok_json(
        &admin,
        &[
            "server",
            "create",
            "--flavor",
            "e2e.tiny",
            "--image",
            "guest",
            "--nic",
            "none",
            "--config-drive",
            "true",
            "--availability-zone",
            &format!("nova:{HOST}"),
            "--wait",
            "faraway",
        ],
    );
    assert_eq!(booted["status"], "ACTIVE", "{booted}");
    assert_eq!(booted["OS-EXT-SRV-ATTR:host"], HOST, "{booted}");
    let id = booted["id"].as_str().unwrap().to_owned();
    // The hostname comes from the config drive the controller made for it; the console log
    // comes from the joined host, asked through its agent.
    within(90, "the guest's marker on the joined host", || {
        console(&admin, "faraway").contains("ONESTACK-GUEST-UP hostname=faraway")
    });
    assert!(
        agent
            .console(&id)
            .contains("ONESTACK-GUEST-UP hostname=faraway")
    );
    println!(
        "boot on the joined host to the guest's marker: {:.1}s",
        started.elapsed().as_secs_f64()
    );

    act(&admin, &["server", "stop"], "faraway", "SHUTOFF");
    act(&admin, &["server", "start"], "faraway", "ACTIVE");
    let snapshot = ok_json(
        &admin,
        &[
            "server", "image", "create", "--wait", "--name", "far-snap", "faraway",
        ],
    );
    within(60, "the snapshot to be active", || {
        ok_json(&admin, &["image", "show", "far-snap"])["status"] == "active"
    });
    assert_eq!(snapshot["name"], "far-snap", "{snapshot}");
    let events = ok(&admin, &["server", "event", "list", "faraway"]);
    for action in ["create", "stop", "start", "createImage"] {
        assert!(events.contains(action), "{action} in {events}");
    }

    // The agent away, the guest runs on; back, it picks up where it was.
    let pid = agent.qemu_pid(&id).expect("the guest's QEMU");
    agent.kill();
    wait_state(&admin, "down", Duration::from_secs(40));
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "guests outlive their agent"
    );
    assert_eq!(
        ok_json(&admin, &["server", "show", "faraway"])["status"],
        "ACTIVE"
    );
    // Deleted while its host is down, the server goes at once (Nova's local delete); the
    // agent, back, removes the guest nobody wants any more.
    ok(&admin, &["server", "delete", "--wait", "faraway"]);
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let agent = JoinedAgent::start(&url, None, &host_dir);
    wait_state(&admin, "up", Duration::from_secs(10));
    within(30, "the guest's QEMU to end", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(
        !agent.instance(&id).exists(),
        "its instance directory is gone"
    );
    drop(agent);
    drop(server);
}
