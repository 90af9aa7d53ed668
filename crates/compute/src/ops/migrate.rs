//! `migrate` (cold migration, admin): the server moves to another host with its disk. No
//! storage is shared between hosts here, so the disk travels through the controller:
//!
//! 1. The API claims room on the new host in the write transaction (the server holds room
//!    on both hosts until the move is settled) and sets the task `resize_migrating`.
//! 2. The old host stops the guest, keeps it, and hands its root disk over (a standalone
//!    qcow2) to the controller, which then places the server on the new host
//!    (`resize_finish`) and binds its ports there ([`Computes::hand_over`]).
//! 3. The new host builds the guest from that disk (checked as strictly as an image) and
//!    starts it if it ran: the server is `VERIFY_RESIZE`.
//! 4. `confirmResize` lets the old host remove its copy; `revertResize` places the server
//!    back on the old host, which restarts its copy, and the new host removes its own.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::model::{Migration, Nic, Server};
use crate::policy::Caller;
use crate::scheduler;
use crate::service::Computes;
use crate::states::TaskState;
use crate::store;

/// How the target host of a move is refused when no such host exists: evacuate answers
/// 404, migrate 400 (as Nova does).
pub(super) enum UnknownHost {
    NotFound,
    BadRequest,
}

/// A server with volumes does not move: they are served by the host that keeps their
/// files (`what_to_do` says how to go on).
pub(super) fn refuse_volumes(server: &Server, what_to_do: &str) -> Result<()> {
    if server.volumes.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "Instance {} has volumes, which stay with their host: {what_to_do}.",
        server.id
    )))
}

/// A move begun by [`Computes::begin_move`].
pub(super) struct Move {
    /// The write transaction the new host's room is claimed in.
    pub tx: onestack_db::Tx,
    pub source: String,
    pub dest: String,
    /// Every host's record, as read in `tx`.
    pub hosts: Vec<crate::model::Host>,
}

impl Computes {
    /// The host a server moves to from `source`: `target` if given and it fits, else the
    /// scheduler's pick among the other hosts that are up.
    pub(super) async fn pick_other_host(
        &self,
        tx: &mut onestack_db::Tx,
        server: &Server,
        source: &str,
        target: Option<&str>,
        unknown: UnknownHost,
    ) -> Result<(String, String)> {
        let hosts = store::hosts(&mut **tx).await?;
        let usage = store::host_usage(&mut **tx).await?;
        let liveness = self.config.liveness(onestack_db::now_micros());
        if let Some(target) = target {
            if target == source {
                return Err(Error::BadRequest(
                    "The target host can't be the same one.".into(),
                ));
            }
            if !hosts.iter().any(|h| h.host == target) {
                let message = format!("Compute host {target} could not be found.");
                return Err(match unknown {
                    UnknownHost::NotFound => Error::NotFound(message),
                    UnknownHost::BadRequest => Error::BadRequest(message),
                });
            }
        }
        let candidates: Vec<_> = hosts
            .iter()
            .filter(|h| h.host != source && target.is_none_or(|t| h.host == t))
            .cloned()
            .collect();
        let request = scheduler::Request {
            vcpus: u64::from(server.flavor.vcpus),
            ram_mb: server.flavor.ram,
            disk_gb: server.local_disk_gb(&server.flavor),
            zone: None,
            group: None,
            max_per_host: None,
            needs_ports: !server.nics.is_empty(),
            needs_volumes: false,
        };
        let Some(destination) = scheduler::pick(&candidates, &usage, &request, liveness) else {
            return Err(Error::BadRequest(format!(
                "{} No other host that is up has room for the server{}.",
                scheduler::NO_VALID_HOST,
                target
                    .map(|t| format!(" ({t} was asked for)"))
                    .unwrap_or_default()
            )));
        };
        let zone = hosts
            .iter()
            .find(|h| h.host == destination)
            .map(|h| h.availability_zone().to_owned())
            .unwrap_or_else(|| server.availability_zone.clone());
        Ok((destination, zone))
    }

    /// The start of a move of a server without volumes away from its host, which must be
    /// up (`source_down` refuses it otherwise): a write transaction with the room on the new
    /// host (`target`, or the scheduler's pick) claimed in it.
    pub(super) async fn begin_move(
        &self,
        server: &Server,
        target: Option<&str>,
        source_down: impl FnOnce(&str) -> Error,
    ) -> Result<Move> {
        refuse_volumes(server, "detach them first")?;
        let source = server.host.clone().unwrap_or_default();
        let mut tx = store::begin_write(&self.pool).await?;
        let liveness = self.config.liveness(onestack_db::now_micros());
        let hosts = store::hosts(&mut *tx).await?;
        if !hosts.iter().any(|h| h.host == source && liveness.is_up(h)) {
            return Err(source_down(&source));
        }
        let (dest, _) = self
            .pick_other_host(&mut tx, server, &source, target, UnknownHost::BadRequest)
            .await?;
        Ok(Move {
            tx,
            source,
            dest,
            hosts,
        })
    }

    /// Records a cold migration of the server (its task set by the caller) to `target` or
    /// the scheduler's pick, with its action, in one write transaction.
    pub(super) async fn save_migration(
        &self,
        caller: &Caller,
        mut server: Server,
        revision: i64,
        target: Option<&str>,
    ) -> Result<()> {
        let Move {
            tx, source, dest, ..
        } = self
            .begin_move(&server, target, |source| {
                Error::Conflict(format!(
                    "Compute service of {source} is down: it cannot hand the server over. Evacuate it instead."
                ))
            })
            .await?;
        server.old_flavor = Some(server.flavor.clone());
        server.migration = Some(Migration {
            id: onestack_db::ids::uuid(),
            source,
            dest,
            live: None,
        });
        self.commit_with_action(tx, caller, server, revision, "migrate")
            .await
    }

    /// Places a moving server on `host`, in that host's availability zone.
    pub(super) async fn place_on(&self, server: &mut Server, host: &str) -> Result<()> {
        if let Some(zone) = store::hosts(&self.pool)
            .await?
            .iter()
            .find(|h| h.host == host)
            .map(|h| h.availability_zone().to_owned())
        {
            server.availability_zone = zone;
        }
        server.host = Some(host.to_owned());
        Ok(())
    }

    /// Where the controller keeps a migrating server's root disk between its two hosts.
    pub fn migration_disk(&self, server_id: &str) -> PathBuf {
        self.instances_dir
            .with_file_name("migrating")
            .join(format!("{server_id}.qcow2"))
    }

    /// The old host has stopped the guest and handed its disk over: the server is placed
    /// on the new host, to build it from that disk. Only for the host a migration leaves,
    /// while it is the server's host and the task is `resize_migrating`.
    pub async fn hand_over(&self, host: &str, server_id: &str) -> Result<()> {
        for _ in 0..5 {
            let Some(record) = self.server_on_host(host, server_id).await? else {
                return Err(Error::NotFound(format!(
                    "server {server_id} is not on host {host}"
                )));
            };
            let mut server = record.doc;
            let migration = match &server.migration {
                Some(m)
                    if m.source == host
                        && server.task_state == Some(TaskState::ResizeMigrating) =>
                {
                    m.clone()
                }
                _ => {
                    return Err(Error::Conflict(format!(
                        "server {server_id} is not being migrated from host {host}"
                    )));
                }
            };
            self.place_on(&mut server, &migration.dest).await?;
            server.task_state = Some(TaskState::ResizeFinish);
            let nics = server.nics.clone();
            if self.finish(server, record.revision).await? {
                self.bind_ports(&nics, &migration.dest).await;
                self.changed_on([migration.dest.as_str()]);
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "server {server_id} kept changing; the host will hand it over again"
        )))
    }

    /// After a migration's confirm or revert (already written): the ports follow the
    /// server to `host` (back to the old host on a revert), both hosts are woken (one
    /// removes its copy, the other keeps or restarts its own), and the disk that travelled
    /// is removed.
    pub(super) async fn settled(
        &self,
        server_id: &str,
        migration: &Migration,
        nics: &[Nic],
        host: &str,
    ) {
        self.bind_ports(nics, host).await;
        self.changed_on([migration.source.as_str(), migration.dest.as_str()]);
        self.remove_migration_disk(server_id).await;
    }

    /// Removes the disk a migration carried, if the controller still has it.
    pub async fn remove_migration_disk(&self, server_id: &str) {
        let path = self.migration_disk(server_id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot remove a migrated disk");
            }
        }
    }
}
