//! Shared test fixtures: a whole onestack started in process on a random loopback port with a
//! temporary data directory, and a small JSON client for it.

#![allow(dead_code)]

use std::path::PathBuf;

use onestack::{Config, Running};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct Cloud {
    pub running: Option<Running>,
    pub url: String,
    pub http: reqwest::Client,
    pub admin_password: String,
    pub data_dir: PathBuf,
    /// The data directory, removed on drop; `None` for a second controller, which borrows
    /// its cloud's.
    _dir: Option<tempfile::TempDir>,
}

/// Whether a test that needs root runs: as root yes; otherwise it fails, unless the run
/// opts out with `ONESTACK_TEST_SKIP=root` (then the skip is counted; `onestack_testkit`).
pub fn root_or_skip() -> bool {
    onestack_testkit::require_root()
}

/// Runs a host command (which must exist) and returns what it did.
pub fn run(program: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Runs a host command that must succeed.
pub fn run_ok(program: &str, args: &[&str]) {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with one device in it, standing in for a guest or an outside host.
/// Deleted on drop, with whatever still runs in it.
pub struct Namespace {
    pub ns: String,
    pub dev: String,
}

impl Namespace {
    /// Runs `args` inside the namespace.
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        run("ip", &[&["netns", "exec", &self.ns], args].concat())
    }

    /// Runs `args` inside the namespace; it must succeed.
    pub fn exec_ok(&self, args: &[&str]) {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} in {}: {}",
            self.ns,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let pids = run("ip", &["netns", "pids", &self.ns]).stdout;
        for pid in String::from_utf8_lossy(&pids).split_whitespace() {
            let _ = run("kill", &["-9", pid]);
        }
        let _ = run("ip", &["netns", "del", &self.ns]);
    }
}

/// A host interface for `[network.physical_interfaces]` (one end of a veth pair) whose
/// other end is in a namespace standing in for a host on that physical network. Both go on
/// drop.
pub struct Uplink {
    pub uplink: String,
    pub outside: Namespace,
}

impl Uplink {
    pub fn new() -> Uplink {
        let pid = std::process::id();
        // Not `os…`: the agent must not take it for one of its own devices.
        let uplink = format!("pup{}", pid % 1_000_000);
        let peer = format!("pux{}", pid % 1_000_000);
        run_ok(
            "ip",
            &[
                "link", "add", &uplink, "type", "veth", "peer", "name", &peer,
            ],
        );
        run_ok("ip", &["link", "set", &uplink, "up"]);
        let ns = format!("ostest-{pid}-phys");
        run_ok("ip", &["netns", "add", &ns]);
        let outside = Namespace { ns, dev: peer };
        run_ok("ip", &["link", "set", &outside.dev, "netns", &outside.ns]);
        outside.exec_ok(&["ip", "link", "set", "lo", "up"]);
        outside.exec_ok(&["ip", "link", "set", &outside.dev, "up"]);
        Uplink { uplink, outside }
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.uplink]);
    }
}

/// A child process killed (and reaped) when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A second host on this machine: a namespace joined to this one by a veth pair, the
/// underlay its VXLAN and agent protocol run over (this end holds `CONTROLLER_IP`, the
/// namespace's `HOST_IP`). Both ends go with the namespace.
pub struct Underlay {
    pub host: Namespace,
}

impl Underlay {
    pub const CONTROLLER_IP: &'static str = "10.251.250.1";
    pub const HOST_IP: &'static str = "10.251.250.2";

    pub fn new() -> Underlay {
        let pid = std::process::id();
        // Not `os…`: the agent must not take it for one of its own devices.
        let near = format!("pun{}", pid % 1_000_000);
        let far = format!("puf{}", pid % 1_000_000);
        run_ok(
            "ip",
            &["link", "add", &near, "type", "veth", "peer", "name", &far],
        );
        let host = Namespace {
            ns: format!("ostest-{pid}-host2"),
            dev: far,
        };
        run_ok("ip", &["netns", "add", &host.ns]);
        run_ok("ip", &["link", "set", &host.dev, "netns", &host.ns]);
        let near_ip = format!("{}/30", Self::CONTROLLER_IP);
        run_ok("ip", &["addr", "add", &near_ip, "dev", &near]);
        run_ok("ip", &["link", "set", &near, "up"]);
        host.exec_ok(&["ip", "link", "set", "lo", "up"]);
        let far_ip = format!("{}/30", Self::HOST_IP);
        host.exec_ok(&["ip", "addr", "add", &far_ip, "dev", &host.dev]);
        host.exec_ok(&["ip", "link", "set", &host.dev, "up"]);
        Underlay { host }
    }
}

/// The id of the cloud whose data directory is `data_dir`, once it has started.
pub fn cloud_id(data_dir: &std::path::Path) -> Option<String> {
    let id = std::fs::read_to_string(data_dir.join("cloud-id")).ok()?;
    Some(id.trim().to_owned())
}

/// The name of that cloud's security-group tables (both nft families).
pub fn cloud_table(data_dir: &std::path::Path) -> Option<String> {
    cloud_id(data_dir).map(|id| onestack::Owner::table_name(&id))
}

/// Deletes that cloud's security-group tables, if any.
pub fn delete_cloud_tables(data_dir: &std::path::Path) {
    let Some(table) = cloud_table(data_dir) else {
        return;
    };
    for family in ["bridge", "inet"] {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", family, &table])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Deletes the host links and namespaces that carry that cloud's mark (a network's
/// bridge and VXLAN device, a router's or DHCP server's namespace, left when the cloud
/// stopped with ports still bound: a real cloud keeps them for its guests, a test cloud
/// takes them along).
pub fn delete_cloud_links(data_dir: &std::path::Path) {
    let Some(id) = cloud_id(data_dir) else {
        return;
    };
    let mark = format!("onestack:{id}:");
    let run = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
    };
    let marked = |links: Option<std::process::Output>| -> Vec<String> {
        let links: Vec<serde_json::Value> = links
            .and_then(|out| serde_json::from_slice(&out.stdout).ok())
            .unwrap_or_default();
        links
            .iter()
            .filter(|l| l["ifalias"].as_str().is_some_and(|a| a.starts_with(&mark)))
            .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
            .collect()
    };
    let namespaces = run(&["-j", "netns", "list"])
        .and_then(|out| serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).ok())
        .unwrap_or_default();
    for ns in namespaces.iter().filter_map(|n| n["name"].as_str()) {
        let ours = ns.starts_with("os")
            && !marked(run(&["-n", ns, "-j", "link", "show", "lo"])).is_empty();
        if ours {
            if let Some(pids) = run(&["netns", "pids", ns]) {
                for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", pid])
                        .status();
                }
            }
            run(&["netns", "del", ns]);
        }
    }
    for name in marked(run(&["-j", "link", "show"])) {
        run(&["link", "del", &name]);
    }
}

/// A test configuration: random port, fast bcrypt.
/// Where a test cloud on PostgreSQL keeps the URL of its database (a restart reuses it).
const DATABASE_URL_FILE: &str = "test-database-url";

pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().expect("loopback address");
    config.data.dir = data_dir.to_path_buf();
    config.identity.password_hash_rounds = 4;
    // API tests leave the host alone; the data-plane tests turn the agent on.
    config.network.agent = false;
    // Compute API tests run their servers on the in-memory driver; the e2e suite boots QEMU.
    config.compute.driver = "fake".into();
    // ONESTACK_TEST_DATABASE=postgres: each cloud gets a database of its own on the test
    // process's PostgreSQL server, named in its data directory so that a restart finds it.
    if onestack_testkit::postgres::wanted() {
        let named = data_dir.join(DATABASE_URL_FILE);
        config.database.url = std::fs::read_to_string(&named).unwrap_or_else(|_| {
            let url = onestack_testkit::postgres::new_database();
            std::fs::write(&named, &url).expect("the test database's name is written");
            url
        });
    }
    config
}

/// A cloud whose agent ran leaves its security-group tables and runtime files behind when
/// it stops with ports still bound (as a real cloud's guests keep theirs); a test cloud
/// takes them along.
impl Drop for Cloud {
    fn drop(&mut self) {
        drop(self.running.take());
        if self._dir.is_none() {
            return;
        }
        if let Some(id) = cloud_id(&self.data_dir) {
            let _ = std::fs::remove_dir_all(std::path::Path::new(onestack::RUNTIME_DIR).join(id));
        }
        delete_cloud_tables(&self.data_dir);
        delete_cloud_links(&self.data_dir);
    }
}

impl Cloud {
    /// A connection pool to the cloud's own database (SQLite in its data directory, or its
    /// PostgreSQL database), for tests that look under the API.
    pub async fn database(&self) -> Result<onestack_db::Pool, onestack_db::DbError> {
        match std::fs::read_to_string(self.database_url_file()) {
            Ok(url) => onestack_db::open_postgres(&url).await,
            Err(_) => onestack_db::open_sqlite(&self.data_dir.join("onestack.db")).await,
        }
    }

    pub fn on_postgres(&self) -> bool {
        self.database_url_file().exists()
    }

    fn database_url_file(&self) -> std::path::PathBuf {
        self.data_dir.join(DATABASE_URL_FILE)
    }

    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        // The service's log in failing tests' output: RUST_LOG=onestack_agent=debug etc.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let running = onestack::start(config).await.expect("onestack starts");
        let admin_password =
            std::fs::read_to_string(dir.path().join("admin-password")).expect("password file");
        Cloud {
            url: format!("http://{}", running.addr),
            running: Some(running),
            http: reqwest::Client::new(),
            admin_password: admin_password.trim().to_owned(),
            data_dir: dir.path().to_path_buf(),
            _dir: Some(dir),
        }
    }

    /// Another controller process on this cloud's database and keys, with caches and pools
    /// of its own and no agents: what a second API server on another host is.
    pub async fn second_controller(&self) -> Cloud {
        let mut config = test_config(&self.data_dir);
        config.compute.agent = false;
        config.volume.agent = false;
        let running = onestack::start(config)
            .await
            .expect("a second controller starts");
        Cloud {
            url: format!("http://{}", running.addr),
            running: Some(running),
            http: reqwest::Client::new(),
            admin_password: self.admin_password.clone(),
            data_dir: self.data_dir.clone(),
            _dir: None,
        }
    }

    /// Stops the cloud and starts it again on the same data directory (a new port): what a
    /// host restart does to the control plane.
    pub async fn restart(&mut self) {
        drop(self.running.take());
        let running = onestack::start(test_config(&self.data_dir))
            .await
            .expect("onestack starts again");
        self.url = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    pub fn identity(&self, path: &str) -> String {
        format!("{}/identity/v3{path}", self.url)
    }

    /// Sends a request; returns status, headers and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, self.identity(path));
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.expect("request is sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str) -> Reply {
        self.call(Method::PUT, path, Some(token), None).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Password auth; returns the reply (token in `subject_token`).
    pub async fn auth(&self, user: &str, password: &str, project: Option<&str>) -> Reply {
        let mut body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}}});
        if let Some(project) = project {
            body["auth"]["scope"] =
                json!({"project": {"name": project, "domain": {"id": "default"}}});
        }
        self.call(Method::POST, "/auth/tokens", None, Some(body))
            .await
    }

    /// A project-scoped token for `user` in `project`; panics unless issued.
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let reply = self.auth(user, password, Some(project)).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "auth as {user}: {}",
            reply.body
        );
        reply.subject_token()
    }

    pub async fn admin_token(&self) -> String {
        self.token("admin", &self.admin_password.clone(), "admin")
            .await
    }

    /// Creates a project, a user with `password` and gives the user `role` on the project.
    /// Returns (project id, user id).
    pub async fn tenant(
        &self,
        admin: &str,
        name: &str,
        password: &str,
        role: &str,
    ) -> (String, String) {
        let project = self
            .post(
                "/projects",
                admin,
                json!({"project": {"name": name, "domain_id": "default"}}),
            )
            .await;
        assert_eq!(project.status, StatusCode::CREATED, "{}", project.body);
        let user = self
            .post(
                "/users",
                admin,
                json!({"user": {"name": name, "domain_id": "default", "password": password}}),
            )
            .await;
        assert_eq!(user.status, StatusCode::CREATED, "{}", user.body);
        let roles = self.get(&format!("/roles?name={role}"), admin).await;
        let role_id = roles.body["roles"][0]["id"]
            .as_str()
            .expect("role exists")
            .to_owned();
        let project_id = project.id("project");
        let user_id = user.id("user");
        let grant = self
            .put(
                &format!("/projects/{project_id}/users/{user_id}/roles/{role_id}"),
                admin,
            )
            .await;
        assert_eq!(grant.status, StatusCode::NO_CONTENT, "{}", grant.body);
        (project_id, user_id)
    }
}

impl Cloud {
    /// PUT with a JSON body.
    pub async fn put_json(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn head(&self, path: &str, token: &str) -> Reply {
        self.call(Method::HEAD, path, Some(token), None).await
    }

    /// POST /auth/tokens with an arbitrary body, without X-Auth-Token.
    pub async fn auth_body(&self, body: Value) -> Reply {
        self.call(Method::POST, "/auth/tokens", None, Some(body))
            .await
    }

    /// A request on /auth/tokens about `subject` (X-Subject-Token), made with `token`.
    pub async fn subject(&self, method: Method, token: Option<&str>, subject: &str) -> Reply {
        let mut request = self
            .http
            .request(method, self.identity("/auth/tokens"))
            .header("X-Subject-Token", subject);
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        Reply::from(request.send().await.expect("request is sent")).await
    }

    /// Sends raw bytes as a JSON body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, self.identity(path))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        Reply::from(request.send().await.expect("request is sent")).await
    }

    /// The id of the global role named `name`.
    pub async fn role_id(&self, admin: &str, name: &str) -> String {
        let roles = self.get(&format!("/roles?name={name}"), admin).await;
        assert_eq!(roles.status, StatusCode::OK, "{}", roles.body);
        roles.body["roles"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no role {name}"))
            .to_owned()
    }

    /// Whether `token` is accepted as X-Auth-Token (GET of the caller's own user).
    pub async fn token_works(&self, token: &str, user_id: &str) -> bool {
        let reply = self.get(&format!("/users/{user_id}"), token).await;
        match reply.status {
            StatusCode::OK => true,
            StatusCode::UNAUTHORIZED => {
                reply.assert_error(StatusCode::UNAUTHORIZED);
                false
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
}

/// The values of `field` of every item of the collection `key`, sorted.
pub fn field_of(body: &Value, key: &str, field: &str) -> Vec<String> {
    let mut out: Vec<String> = body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} array in {body}"))
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

/// Asserts a Keystone collection: the items under `key` and `links.self`.
pub fn assert_collection(reply: &Reply, key: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body[key].is_array(), "{}", reply.body);
    assert!(reply.body["links"]["self"].is_string(), "{}", reply.body);
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body is read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn subject_token(&self) -> String {
        self.headers
            .get("x-subject-token")
            .expect("X-Subject-Token")
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    pub fn id(&self, kind: &str) -> String {
        self.body[kind]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no {kind}.id in {}", self.body))
            .to_owned()
    }

    /// Asserts only the status (HEAD replies have no body).
    pub fn assert_eq_status(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
    }

    /// Asserts a Keystone error body with this status.
    pub fn assert_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["error"]["code"],
            json!(status.as_u16()),
            "{}",
            self.body
        );
        assert!(self.body["error"]["message"].is_string(), "{}", self.body);
        assert!(self.body["error"]["title"].is_string(), "{}", self.body);
    }
}
