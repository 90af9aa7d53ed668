//! A PostgreSQL server of the test process's own, for runs that put the control database on
//! PostgreSQL (`ONESTACK_TEST_DATABASE=postgres`): one cluster per test binary, made with
//! Debian's `initdb` in a temporary directory, listening only on a Unix socket there, and a
//! fresh database for every cloud a test starts. A watcher stops the server and removes its
//! directory when the test process is gone, however it ends. As root, the server runs as
//! the `postgres` user (PostgreSQL refuses root).

// Test support that drives PostgreSQL's own programs (initdb, postgres, psql, pg_isready),
// each with fixed arguments, never through a user's string.
#![expect(
    clippy::disallowed_methods,
    reason = "the test database server is a host process of the tests' own"
)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::is_root;

/// The variable that moves the integration suite's control database to PostgreSQL.
pub const DATABASE_VAR: &str = "ONESTACK_TEST_DATABASE";

/// Whether this run keeps the control database in PostgreSQL.
pub fn wanted() -> bool {
    std::env::var(DATABASE_VAR).is_ok_and(|v| v == "postgres")
}

struct Cluster {
    socket_dir: PathBuf,
    bin: PathBuf,
    user: Option<(u32, u32)>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// A new, empty database on this process's PostgreSQL server (started on first use), as a
/// URL for `database.url`. Panics, saying what to install, when PostgreSQL is missing.
pub fn new_database() -> String {
    let cluster = match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(why) => panic!("cannot start the test PostgreSQL server: {why}"),
    };
    let name = format!(
        "onestack_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    let created = cluster
        .command("psql")
        .args(["-X", "-q", "-h"])
        .arg(&cluster.socket_dir)
        .args(["-p", PORT, "-U", "postgres", "-d", "postgres", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
    assert!(
        created.status.success(),
        "cannot create the test database {name}: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    format!(
        "postgres://postgres@localhost/{name}?host={}&port={PORT}",
        cluster.socket_dir.display()
    )
}

/// The port only names the socket file: the server listens on no TCP address.
const PORT: &str = "5432";

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }
}

fn start() -> Result<Cluster, String> {
    let bin = find_bin().ok_or_else(|| {
        "no PostgreSQL server (initdb, postgres) in /usr/lib/postgresql/*/bin or on PATH; \
         install it with scripts/install-deps.sh (Debian's postgresql)"
            .to_owned()
    })?;
    let user = if is_root() {
        Some(postgres_user().ok_or("running as root needs the postgres user to run the server")?)
    } else {
        None
    };
    let dir = std::env::temp_dir().join(format!("onestack-test-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("cannot hand {} to postgres: {e}", dir.display()))?;
    }
    let cluster = Cluster {
        socket_dir: dir.clone(),
        bin,
        user,
    };
    let data = dir.join("data");
    let made = cluster
        .command("initdb")
        .args(["-D"])
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !made.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&made.stderr)
        ));
    }
    // The server, and a watcher that stops it and removes its files once this process is
    // gone (a test binary has no hook that runs at its end); the process's start time tells
    // it apart from a later one given the same pid.
    let script = format!(
        "{postgres} -D {data} -k {dir} -p {PORT} -c listen_addresses= -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 \
         > {dir}/server.log 2>&1 &\n\
         server=$!\n\
         born() {{ cut -d' ' -f22 /proc/{test}/stat 2>/dev/null; }}\n\
         while [ \"$(born)\" = \"{started}\" ] && kill -0 $server 2>/dev/null; do sleep 1; done\n\
         kill -INT $server 2>/dev/null; wait $server; rm -rf {dir}\n",
        postgres = cluster.bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        test = std::process::id(),
        started = own_start_time()?,
    );
    let mut watcher = Command::new("sh");
    watcher
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((uid, gid)) = user {
        watcher.uid(uid).gid(gid);
    }
    watcher
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    wait_ready(&cluster, &dir)?;
    Ok(cluster)
}

fn wait_ready(cluster: &Cluster, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = cluster
            .command("pg_isready")
            .arg("-h")
            .arg(dir)
            .args(["-p", PORT, "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!("the server did not start within 30 s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Debian keeps the server's programs out of PATH, one directory per major version.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("postgres").exists() && d.join("initdb").exists())
    })
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres") && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

/// This process's start time (`/proc/self/stat` field 22, in clock ticks since boot).
fn own_start_time() -> Result<String, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // The name (field 2) is in parentheses and may hold spaces: count after it.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .map(str::to_owned)
        .ok_or_else(|| "cannot read this process's start time".to_owned())
}
