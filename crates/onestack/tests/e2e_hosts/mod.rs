//! Many hosts, with the real binaries: `onestack join-token` on the controller, `onestack
//! join` as a second process with its own data directory and name, and the `openstack` CLI
//! seeing (with its aggregates and zone), disabling, losing and deleting that host.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Server, free_port, ok, ok_json};

mod guests;
mod network;

const HOST: &str = "host-2";

/// `onestack join URL [--token T] --name host-2` with its own data directory, and the fake
/// hypervisor driver.
fn join(url: &str, token: Option<&str>, data_dir: &Path) -> Child {
    join_with(url, token, data_dir, "fake")
}

/// A new join token from the controller with data directory `controller_dir`.
fn join_token(controller_dir: &Path) -> String {
    let issued = Command::new(env!("CARGO_BIN_EXE_onestack"))
        .args(["join-token", "--data-dir"])
        .arg(controller_dir)
        .env_remove("ONESTACK_CONFIG")
        .output()
        .unwrap();
    assert!(issued.status.success(), "{issued:?}");
    assert!(
        String::from_utf8_lossy(&issued.stderr).contains("onestack join"),
        "it says what to run on the new host: {issued:?}"
    );
    String::from_utf8_lossy(&issued.stdout).trim().to_owned()
}

/// [`join`] with hypervisor driver `driver`.
fn join_with(url: &str, token: Option<&str>, data_dir: &Path, driver: &str) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onestack"));
    command
        .args(["join", url, "--name", HOST, "--data-dir"])
        .arg(data_dir);
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    command
        .env("ONESTACK_COMPUTE__DRIVER", driver)
        // Beside the controller in its network namespace: building ports would need a
        // namespace of its own (the data-plane tests run one so).
        .env("ONESTACK_NETWORK__AGENT", "false")
        .env("ONESTACK_COMPUTE__REPORT_INTERVAL", "1")
        .env_remove("ONESTACK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("onestack join starts")
}

fn service(admin: &HashMap<String, String>) -> Option<Value> {
    ok_json(admin, &["compute", "service", "list"])
        .as_array()?
        .iter()
        .find(|s| s["Host"] == HOST)
        .cloned()
}

/// Waits (up to `within`) until the joined host's service is in `state`.
fn wait_state(admin: &HashMap<String, String>, state: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let found = service(admin);
        if let Some(s) = &found
            && s["State"] == state
        {
            return s.clone();
        }
        assert!(Instant::now() < deadline, "{HOST} not {state}: {found:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn join_walkthrough_with_the_openstack_cli() {
    let dir = crate::CloudDir::new();
    let controller_dir = dir.path().join("controller");
    let host_dir = dir.path().join("host-2");
    let server = Server::start_with(
        &controller_dir,
        free_port(),
        &[
            ("ONESTACK_NETWORK__AGENT", "false"),
            ("ONESTACK_COMPUTE__DRIVER", "fake"),
            ("ONESTACK_COMPUTE__REPORT_INTERVAL", "1"),
            ("ONESTACK_COMPUTE__SERVICE_DOWN_TIME", "4"),
        ],
    );
    let admin = server.admin_env();
    let url = format!("http://127.0.0.1:{}", server.port);

    let token = join_token(&controller_dir);

    // Joined, the host is a compute service and a hypervisor with what it measured.
    let mut agent = join(&url, Some(&token), &host_dir);
    let up = wait_state(&admin, "up", Duration::from_secs(10));
    assert_eq!(up["Status"], "enabled");
    // 2.88 dropped the capacity from the hypervisor views; 2.87 still shows it.
    let hypervisors = ok_json(
        &admin,
        &[
            "--os-compute-api-version",
            "2.87",
            "hypervisor",
            "list",
            "--long",
        ],
    );
    let h2 = hypervisors
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["Hypervisor Hostname"] == HOST)
        .unwrap_or_else(|| panic!("{HOST} in {hypervisors}"));
    assert!(h2["vCPUs"].as_u64().unwrap() > 0, "{h2}");
    assert!(h2["Memory MB"].as_u64().unwrap() > 0, "{h2}");
    let shown = ok_json(&admin, &["hypervisor", "show", HOST]);
    assert_eq!(shown["hypervisor_hostname"], HOST, "{shown}");
    assert_eq!(shown["aggregates"], serde_json::json!([]), "{shown}");
    ok(&admin, &["aggregate", "create", "--zone", "az-2", "rack-2"]);
    ok(&admin, &["aggregate", "add", "host", "rack-2", HOST]);
    let shown = ok_json(&admin, &["hypervisor", "show", HOST]);
    assert_eq!(
        shown["aggregates"],
        serde_json::json!(["rack-2"]),
        "{shown}"
    );
    assert_eq!(service(&admin).unwrap()["Zone"], "az-2");
    ok(&admin, &["aggregate", "remove", "host", "rack-2", HOST]);
    ok(&admin, &["aggregate", "delete", "rack-2"]);
    let credential = host_dir.join(onestack::join::HOST_CREDENTIAL);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&credential).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The token was for one host only.
    let second = join(&url, Some(&token), &dir.path().join("host-3")).wait_with_output();
    let second = second.unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("join-token"),
        "{second:?}"
    );

    ok(
        &admin,
        &[
            "compute",
            "service",
            "set",
            "--disable",
            "--disable-reason",
            "maintenance",
            HOST,
            "nova-compute",
        ],
    );
    assert_eq!(service(&admin).unwrap()["Status"], "disabled");

    // Killed, it turns down; started again without a token, it is back (still disabled:
    // the admin's choice outlives the host's reports).
    agent.kill().unwrap();
    agent.wait().unwrap();
    wait_state(&admin, "down", Duration::from_secs(10));
    let mut agent = join(&url, None, &host_dir);
    let back = wait_state(&admin, "up", Duration::from_secs(10));
    assert_eq!(back["Status"], "disabled");

    // Deleted, it is gone, and its agent stops saying how to join again.
    let id = back["ID"].as_str().unwrap().to_owned();
    ok(&admin, &["compute", "service", "delete", &id]);
    assert!(service(&admin).is_none());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = agent.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the removed host's agent still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    agent
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("join-token"), "{stderr}");
    assert!(service(&admin).is_none(), "no report brought it back");
    drop(server);
}
