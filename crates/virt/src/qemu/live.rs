//! Live migration between two hosts' QEMUs, with the guest's disks copied on the way (no
//! shared storage): the new host's QEMU waits for the migration stream and serves the
//! guest's disks over NBD; the old host's mirrors its disks into them, sends the guest's
//! memory, and at the switch (guest stopped) finishes the mirrors before it lets the new
//! host run the guest. Both channels are TLS with a pre-shared key that only the two hosts
//! hold (made for this migration by the controller), so nothing else on the network can
//! feed a guest's memory or disk to the listening QEMU, or read them.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{POLL, Qemu, exists, hard_stop, load_spec, remove_if_exists, running_pid};
use crate::cmdline::{self, Start};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::qmp::{MigrationInfo, Qmp};
use crate::validate;

/// The TLS credentials object both QEMUs name.
const TLS_ID: &str = "mig-tls";
/// The PSK user name (QEMU's default).
const TLS_USER: &str = "qemu";
/// How often the migration's state is asked: the new host resumes the guest this soon
/// after the stream ends.
const FAST_POLL: Duration = Duration::from_millis(5);
/// Memory goes as fast as the link takes it (QEMU's default caps it at 128 MiB/s).
const BANDWIDTH: u64 = 10 << 30;

/// Where the new host's QEMU listens for a live migration, and the key both ends hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationChannel {
    /// The new host's underlay address.
    pub address: IpAddr,
    /// The migration stream's port.
    pub migration_port: u16,
    /// The NBD server's port (the guest's disks).
    pub nbd_port: u16,
    /// The TLS pre-shared key, 64 hex digits.
    pub key: String,
}

/// What a finished live migration took.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveMigrationStats {
    pub total_ms: u64,
    /// How long the guest was stopped for the switch, by QEMU's count.
    pub downtime_ms: u64,
    pub ram_bytes: u64,
}

impl MigrationChannel {
    fn tcp_uri(&self) -> String {
        match self.address {
            IpAddr::V4(a) => format!("tcp:{a}:{}", self.migration_port),
            IpAddr::V6(a) => format!("tcp:[{a}]:{}", self.migration_port),
        }
    }

    fn nbd_server(&self) -> serde_json::Value {
        json!({"type": "inet", "host": self.address.to_string(), "port": self.nbd_port.to_string()})
    }

    fn checked_key(&self) -> Result<&str> {
        if self.key.len() == 64 && self.key.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(&self.key)
        } else {
            Err(Error::invalid("migration key", "not 64 hex digits"))
        }
    }
}

impl Qemu {
    /// Starts the guest made by `create` waiting for a live migration on two free ports of
    /// `address`: paused, its disks served (writable) over NBD for the old host to fill.
    /// Returns where it listens once it does. A QEMU already running for the guest is
    /// stopped first (a retry).
    pub async fn listen_for_migration(
        &self,
        uuid: &str,
        address: IpAddr,
        key: &str,
    ) -> Result<MigrationChannel> {
        let (migration_port, nbd_port) = free_ports(address)?;
        let channel = &MigrationChannel {
            address,
            migration_port,
            nbd_port,
            key: key.to_owned(),
        };
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        let spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        if let Some(pid) = running_pid(&layout, uuid) {
            hard_stop(&layout, uuid, pid).await?;
        }
        let tls = write_key(&layout, channel).await?;
        let pid = self.launch(&layout, &spec, Start::Migration).await?;
        let listening = async {
            let mut qmp = self.qmp(&layout).await?;
            add_tls(&mut qmp, "server", &tls).await?;
            let nbd = json!({
                "addr": {"type": "inet", "data": {"host": channel.address.to_string(), "port": channel.nbd_port.to_string()}},
                "tls-creds": TLS_ID,
            });
            qmp.execute("nbd-server-start", Some(nbd)).await?;
            for node in cmdline::own_disk_nodes(&spec) {
                let export = json!({"device": node, "writable": true});
                qmp.execute("nbd-server-add", Some(export)).await?;
            }
            qmp.execute("migrate-set-parameters", Some(json!({"tls-creds": TLS_ID})))
                .await?;
            qmp.execute("migrate-incoming", Some(json!({"uri": channel.tcp_uri()})))
                .await?;
            Ok(())
        }
        .await;
        if listening.is_err() {
            let _ = hard_stop(&layout, uuid, pid).await;
            let _ = remove_dir(&layout).await;
        }
        listening.map(|()| channel.clone())
    }

    /// Waits up to `timeout` for the migration [`Self::listen_for_migration`] waits for to
    /// arrive, stops serving the disks, and resumes the guest if `resume`. Fails (and
    /// stops this QEMU) when the stream breaks off or never comes.
    pub async fn finish_incoming(&self, uuid: &str, resume: bool, timeout: Duration) -> Result<()> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        let pid = running_pid(&layout, uuid).ok_or_else(|| Error::WrongState {
            uuid: uuid.into(),
            op: "finish a live migration",
            state: crate::spec::PowerState::Shutdown,
            needs: "waiting for the migration",
        })?;
        let mut qmp = match self.qmp(&layout).await {
            Ok(qmp) => qmp,
            Err(error) => {
                let _ = hard_stop(&layout, uuid, pid).await;
                return Err(error);
            }
        };
        let waited = wait_for(
            &mut qmp,
            &["completed"],
            timeout,
            "the incoming live migration",
        )
        .await;
        let _ = remove_dir(&layout).await;
        if let Err(error) = waited {
            let _ = hard_stop(&layout, uuid, pid).await;
            return Err(error);
        }
        // The guest is here now and nowhere else: what follows may fail without undoing
        // that. It may leave again, or be suspended (a migration to a file), without this
        // host's credentials.
        let finishing = async {
            qmp.execute("nbd-server-stop", None).await?;
            if resume {
                qmp.cont().await?;
            }
            forget_tls(&mut qmp).await
        };
        if let Err(error) = finishing.await {
            tracing::warn!(uuid, %error, "a live-migrated guest arrived, but finishing its start failed");
        }
        Ok(())
    }

    /// Moves the running or paused guest to the QEMU listening at `channel`, its own disks
    /// mirrored there first, and ends this QEMU once the new host has it. On failure the
    /// guest goes on here as it was. `timeout` bounds the whole move.
    pub async fn migrate_live(
        &self,
        uuid: &str,
        channel: &MigrationChannel,
        timeout: Duration,
    ) -> Result<LiveMigrationStats> {
        let layout = self.layout(uuid)?;
        let _guard = self.lock(uuid).await;
        let spec = load_spec(&layout)
            .await?
            .ok_or_else(|| Error::NotFound(uuid.into()))?;
        let Some(pid) = running_pid(&layout, uuid) else {
            return Err(Error::WrongState {
                uuid: uuid.into(),
                op: "live-migrate",
                state: crate::spec::PowerState::Shutdown,
                needs: "running or paused",
            });
        };
        let tls = write_key(&layout, channel).await?;
        let mut qmp = self.qmp(&layout).await?;
        let was_running = qmp.query_status().await?.running;
        let nodes = cmdline::own_disk_nodes(&spec);
        let root_on_image = matches!(spec.root, crate::spec::RootDisk::Image { .. });
        let deadline = Instant::now() + timeout;
        let moved = send(&mut qmp, channel, &tls, &nodes, root_on_image, deadline).await;
        let stats = match moved {
            Ok(stats) => stats,
            Err(error) => {
                take_back(&mut qmp, &nodes, was_running).await;
                let _ = remove_dir(&layout).await;
                return Err(error);
            }
        };
        drop(qmp);
        // The guest runs on the new host now: tidying here cannot fail the move.
        if let Err(error) = hard_stop(&layout, uuid, pid).await {
            tracing::warn!(uuid, %error, "cannot stop the QEMU a guest live-migrated away from");
        }
        if let Err(error) = remove_dir(&layout).await {
            tracing::warn!(uuid, %error, "cannot remove a live migration's TLS key");
        }
        Ok(stats)
    }
}

/// The old host's half: mirrors, memory, and the switch. `nodes` are the guest's own disks,
/// the root disk first.
async fn send(
    qmp: &mut Qmp,
    channel: &MigrationChannel,
    tls: &str,
    nodes: &[String],
    root_on_image: bool,
    deadline: Instant,
) -> Result<LiveMigrationStats> {
    add_tls(qmp, "client", tls).await?;
    for (i, node) in nodes.iter().enumerate() {
        // Only a root disk made on an image has a backing file the new host has too (it
        // makes its disk on the same image): its overlay's own data is enough. Every other
        // disk is copied whole.
        let sync = if i == 0 && root_on_image {
            "top"
        } else {
            "full"
        };
        let target = json!({
            "driver": "nbd",
            "node-name": mirror_node(node),
            "server": channel.nbd_server(),
            "export": node,
            "tls-creds": TLS_ID,
        });
        qmp.execute("blockdev-add", Some(target)).await?;
        // Kept once ended (`auto-dismiss` off), so that how it ended can be read.
        let mirror = json!({"job-id": mirror_node(node), "device": node,
            "target": mirror_node(node), "sync": sync, "auto-dismiss": false});
        qmp.execute("blockdev-mirror", Some(mirror)).await?;
    }
    wait_mirrors_ready(qmp, nodes, deadline).await?;
    // The return path tells this host when the new one fails to load the guest.
    let capabilities = json!({"capabilities": [
        {"capability": "pause-before-switchover", "state": true},
        {"capability": "return-path", "state": true},
    ]});
    qmp.execute("migrate-set-capabilities", Some(capabilities))
        .await?;
    let parameters = json!({"tls-creds": TLS_ID, "max-bandwidth": BANDWIDTH});
    qmp.execute("migrate-set-parameters", Some(parameters))
        .await?;
    qmp.migrate(&channel.tcp_uri()).await?;
    let left = deadline.saturating_duration_since(Instant::now());
    wait_for(qmp, &["pre-switchover"], left, "the live migration").await?;
    // The guest is stopped: the mirrors copy what is left and end (a ready mirror ends,
    // not cancelled, on `block-job-cancel`), so the new host's disks are whole before the
    // guest runs there.
    for node in nodes {
        qmp.execute(
            "block-job-cancel",
            Some(json!({"device": mirror_node(node)})),
        )
        .await?;
    }
    wait_mirrors_ended(qmp, nodes, deadline).await?;
    qmp.execute("migrate-continue", Some(json!({"state": "pre-switchover"})))
        .await?;
    let left = deadline.saturating_duration_since(Instant::now());
    let info = wait_for(qmp, &["completed"], left, "the live migration").await?;
    Ok(LiveMigrationStats {
        total_ms: info.total_time_ms.unwrap_or_default(),
        downtime_ms: info.downtime_ms.unwrap_or_default(),
        ram_bytes: info.ram.map(|r| r.transferred).unwrap_or_default(),
    })
}

/// After a failed move: the migration and the mirrors stop, their nodes go, and the guest
/// runs again here if it ran.
async fn take_back(qmp: &mut Qmp, nodes: &[String], was_running: bool) {
    let _ = qmp.execute("migrate_cancel", None).await;
    // The cancel ends in the background; the parameters can change only after it.
    let settle_by = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settle_by {
        match qmp.query_migrate().await.map(|i| i.status) {
            Ok(Some(status))
                if matches!(
                    status.as_str(),
                    "setup" | "active" | "cancelling" | "pre-switchover" | "device"
                ) =>
            {
                tokio::time::sleep(POLL).await;
            }
            _ => break,
        }
    }
    for node in nodes {
        let job = json!({"device": mirror_node(node), "force": true});
        let _ = qmp.execute("block-job-cancel", Some(job)).await;
    }
    let _ = wait_mirrors_ended(qmp, nodes, Instant::now() + Duration::from_secs(10)).await;
    for node in nodes {
        let _ = qmp
            .execute(
                "blockdev-del",
                Some(json!({"node-name": mirror_node(node)})),
            )
            .await;
    }
    let unpause = json!({"capabilities": [
        {"capability": "pause-before-switchover", "state": false},
        {"capability": "return-path", "state": false},
    ]});
    let _ = qmp.execute("migrate-set-capabilities", Some(unpause)).await;
    let _ = forget_tls(qmp).await;
    if was_running
        && qmp.query_status().await.is_ok_and(|s| !s.running)
        && let Err(error) = qmp.cont().await
    {
        tracing::warn!(%error, "cannot resume a guest whose live migration failed");
    }
}

/// Two free TCP ports on `address` (the migration stream's and the NBD server's). QEMU
/// binds them a moment later; another process taking one meanwhile fails the migration,
/// which leaves the guest where it was.
fn free_ports(address: IpAddr) -> Result<(u16, u16)> {
    let bind = || {
        std::net::TcpListener::bind((address, 0)).map_err(|e| {
            Error::Protocol(format!(
                "cannot listen on {address} for a live migration: {e}"
            ))
        })
    };
    // Both held until both are known, so that they differ.
    let (a, b) = (bind()?, bind()?);
    let port = |l: &std::net::TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| Error::Protocol(format!("cannot read a listening port: {e}")))
    };
    Ok((port(&a)?, port(&b)?))
}

/// The NBD node (and mirror job) that carries `node` to the new host.
fn mirror_node(node: &str) -> String {
    format!("mig-{node}")
}

async fn add_tls(qmp: &mut Qmp, endpoint: &str, dir: &str) -> Result<()> {
    // One left behind by an earlier attempt that could not tidy up.
    let _ = qmp.execute("object-del", Some(json!({"id": TLS_ID}))).await;
    let mut object =
        json!({"qom-type": "tls-creds-psk", "id": TLS_ID, "endpoint": endpoint, "dir": dir});
    if endpoint == "client" {
        object["username"] = TLS_USER.into();
    }
    qmp.execute("object-add", Some(object)).await.map(drop)
}

/// Drops the migration's TLS credentials, so that a later migration (another move, or a
/// suspend's save to a file) neither finds them nor asks for them.
async fn forget_tls(qmp: &mut Qmp) -> Result<()> {
    qmp.execute("migrate-set-parameters", Some(json!({"tls-creds": ""})))
        .await?;
    qmp.execute("object-del", Some(json!({"id": TLS_ID})))
        .await?;
    Ok(())
}

/// Polls `query-migrate` until it reaches one of `wanted`; a failed or cancelled migration,
/// or the deadline, is an error.
async fn wait_for(
    qmp: &mut Qmp,
    wanted: &[&str],
    timeout: Duration,
    what: &str,
) -> Result<MigrationInfo> {
    let deadline = Instant::now() + timeout;
    loop {
        let info = qmp.query_migrate().await?;
        match info.status.as_deref() {
            Some(status) if wanted.contains(&status) => return Ok(info),
            Some(status @ ("failed" | "cancelled")) => {
                return Err(Error::Qmp {
                    command: "migrate".into(),
                    class: status.into(),
                    desc: info
                        .error_desc
                        .unwrap_or_else(|| format!("{what} {status}")),
                });
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "{what} (after {}s)",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(FAST_POLL).await;
    }
}

/// One block job, as `query-block-jobs` tells it (only what we use).
#[derive(Debug, Deserialize)]
struct BlockJob {
    device: String,
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    status: String,
    /// Why it ended, when it failed.
    #[serde(default)]
    error: Option<String>,
}

/// Waits until every disk's mirror has caught up (then it follows each write).
async fn wait_mirrors_ready(qmp: &mut Qmp, nodes: &[String], deadline: Instant) -> Result<()> {
    loop {
        let jobs: Vec<BlockJob> = qmp.execute_as("query-block-jobs", None).await?;
        let mut all_ready = true;
        for node in nodes {
            match jobs.iter().find(|j| j.device == mirror_node(node)) {
                Some(job) if job.ready => {}
                Some(job) if matches!(job.status.as_str(), "aborting" | "concluded" | "null") => {
                    return Err(Error::Protocol(format!(
                        "copying disk {node} to the new host stopped ({})",
                        job.status
                    )));
                }
                Some(_) => all_ready = false,
                None => {
                    return Err(Error::Protocol(format!(
                        "copying disk {node} to the new host stopped"
                    )));
                }
            }
        }
        if all_ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout("copying the disks to the new host".into()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every disk's mirror has ended, removes the jobs, and fails if one of them
/// ended in an error (its disk on the new host is not whole).
async fn wait_mirrors_ended(qmp: &mut Qmp, nodes: &[String], deadline: Instant) -> Result<()> {
    loop {
        let jobs: Vec<BlockJob> = qmp.execute_as("query-block-jobs", None).await?;
        let ours: Vec<&BlockJob> = jobs
            .iter()
            .filter(|j| nodes.iter().any(|n| j.device == mirror_node(n)))
            .collect();
        if ours.iter().all(|j| j.status == "concluded") {
            let failed = ours.iter().find_map(|j| j.error.clone());
            for job in &ours {
                let _ = qmp
                    .execute("job-dismiss", Some(json!({"id": job.device})))
                    .await;
            }
            return match failed {
                None => Ok(()),
                Some(error) => Err(Error::Protocol(format!(
                    "copying a disk to the new host failed: {error}"
                ))),
            };
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout("finishing the disk copies".into()));
        }
        tokio::time::sleep(FAST_POLL).await;
    }
}

/// Writes the channel's key where QEMU reads it (`<dir>/keys.psk`, readable by root only)
/// and returns the directory.
async fn write_key(layout: &Layout, channel: &MigrationChannel) -> Result<String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let key = channel.checked_key()?;
    let dir = layout.migration_tls();
    let path = dir.join("keys.psk");
    let text = format!("{TLS_USER}:{key}\n");
    let dir_for_blocking = dir.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if !dir_for_blocking.exists() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir_for_blocking)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        std::io::Write::write_all(&mut file, text.as_bytes())
    })
    .await
    .map_err(|e| Error::io(&dir, std::io::Error::other(e)))?
    .map_err(|e| Error::io(&dir, e))?;
    Ok(validate::path(&dir)?.to_owned())
}

async fn remove_dir(layout: &Layout) -> Result<()> {
    let dir = layout.migration_tls();
    if exists(&dir).await? {
        remove_if_exists(&dir.join("keys.psk")).await?;
        tokio::fs::remove_dir(&dir)
            .await
            .map_err(|e| Error::io(&dir, e))?;
    }
    Ok(())
}
