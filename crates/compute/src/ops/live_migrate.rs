//! `os-migrateLive` (admin): the running or paused server moves to another host without
//! stopping, its disks copied on the way (no storage is shared between hosts here).
//!
//! 1. The API claims room on the new host in the write transaction, makes the TLS key the
//!    two QEMUs share, reads the new host's address (`host_ip`, its `local_ip`), sets the task `migrating`,
//!    and has the new host plug the server's ports in (`binding:profile` `migrating_to`).
//! 2. The new host builds the guest's disks on the same image, starts its QEMU waiting for
//!    the guest, and says where it listens ([`LiveStep::Listening`]).
//! 3. The old host mirrors the disks there, sends the memory, and at the switch finishes
//!    the mirrors; the new host resumes the guest as soon as it has it. Both say so
//!    ([`LiveStep::Sent`], [`LiveStep::Arrived`]): the first word places the server on the
//!    new host and binds its ports there (either host may have restarted meanwhile).
//!
//! Either host giving up before that ([`LiveStep::Failed`]) leaves the server where it
//! was, running; the new host removes its copy.

use serde::{Deserialize, Serialize};

use super::migrate::Move;
use crate::error::{Error, Result};
use crate::model::{LiveChannel, Migration, Server};
use crate::policy::Caller;
use crate::service::Computes;
use crate::states::TaskState;

/// A host's word on a live migration it takes part in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum LiveStep {
    /// The new host's QEMU waits for the guest on these ports.
    Listening { migration_port: u16, nbd_port: u16 },
    /// The old host has sent the guest, which runs on the new host now.
    Sent,
    /// The new host has the guest.
    Arrived,
    /// A host gave the migration up before the switch; the guest stays on the old host.
    Failed { details: String },
}

/// A [`LiveStep`] of one migration (`Migration::id`): a late word from an earlier attempt
/// changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveReport {
    pub migration_id: String,
    #[serde(flatten)]
    pub step: LiveStep,
}

impl Computes {
    /// Records a live migration of the server (its task set by the caller) to `target` or
    /// the scheduler's pick, with its action, in one write transaction; then the new host
    /// plugs the server's ports in and is woken.
    pub(super) async fn save_live_migration(
        &self,
        caller: &Caller,
        mut server: Server,
        revision: i64,
        target: Option<&str>,
    ) -> Result<()> {
        let Move {
            tx,
            source,
            dest,
            hosts,
        } = self
            .begin_move(&server, target, |source| {
                Error::BadRequest(format!(
                    "Compute service of {source} is unavailable at this time: it cannot send the server. Evacuate it instead."
                ))
            })
            .await?;
        let address = hosts
            .iter()
            .find(|h| h.host == dest)
            .and_then(|h| h.host_ip.parse().ok());
        let Some(address) = address else {
            return Err(Error::Conflict(format!(
                "Host {dest} reports no address of its own ([network] local_ip), which a live migration to it needs."
            )));
        };
        server.migration = Some(Migration {
            id: onestack_db::ids::uuid(),
            source,
            dest: dest.clone(),
            live: Some(LiveChannel {
                key: hex::encode(rand::random::<[u8; 32]>()),
                address,
                ports: None,
            }),
        });
        let nics = server.nics.clone();
        self.commit_with_action(tx, caller, server, revision, "live-migration")
            .await?;
        for nic in &nics {
            if let Err(error) = self.networks.expect_port_on(&nic.port_id, &dest).await {
                tracing::warn!(port = %nic.port_id, %error, "cannot plug a port in on the host a server moves to");
            }
        }
        self.changed_on([dest.as_str()]);
        Ok(())
    }

    /// A host's step in the live migration of one of its servers: only the new host
    /// listens and has the guest arrive, only the old one sends, either may fail it before
    /// the switch, and only while the task is `migrating` for that migration. Once the
    /// server is placed on the new host, the other host's word that it moved is a no-op.
    pub async fn live_migration_step(
        &self,
        host: &str,
        server_id: &str,
        report: LiveReport,
    ) -> Result<()> {
        let LiveReport { migration_id, step } = report;
        let moved = matches!(step, LiveStep::Sent | LiveStep::Arrived);
        for _ in 0..5 {
            let Some(record) = self.server_on_host(host, server_id).await? else {
                return Err(Error::NotFound(format!(
                    "server {server_id} is not on host {host}"
                )));
            };
            let mut server = record.doc;
            let current = server.migration.clone().filter(|m| {
                m.id == migration_id && server.task_state == Some(TaskState::Migrating)
            });
            let Some((migration, live)) = current.and_then(|m| Some((m.clone(), m.live?))) else {
                if moved && server.host.as_deref() == Some(host) && server.migration.is_none() {
                    // The new host's own word after the old one's placed it there.
                    return Ok(());
                }
                return Err(not_live(server_id, host));
            };
            let (source, dest) = (migration.source.as_str(), migration.dest.as_str());
            let woken: Vec<&str> = match &step {
                LiveStep::Listening {
                    migration_port,
                    nbd_port,
                } if host == dest && live.ports.is_none() => {
                    let ports = Some((*migration_port, *nbd_port));
                    if let Some(m) = server.migration.as_mut() {
                        m.live = Some(LiveChannel { ports, ..live });
                    }
                    vec![source]
                }
                LiveStep::Sent | LiveStep::Arrived
                    if live.ports.is_some()
                        && host == if step == LiveStep::Sent { source } else { dest } =>
                {
                    self.place_on(&mut server, dest).await?;
                    server.task_state = None;
                    server.migration = None;
                    vec![source, dest]
                }
                LiveStep::Failed { details } if host == source || host == dest => {
                    let details: String = details.chars().take(2000).collect();
                    tracing::warn!(server = %server_id, %host, %details, "a live migration failed; the server stays on {source}");
                    server.task_state = None;
                    server.migration = None;
                    vec![source, dest]
                }
                _ => {
                    return Err(Error::Conflict(format!(
                        "server {server_id}'s live migration does not wait for that from host {host}"
                    )));
                }
            };
            let nics = server.nics.clone();
            let placed = server.host.clone().unwrap_or_default();
            if !self.finish(server, record.revision).await? {
                continue;
            }
            if !matches!(step, LiveStep::Listening { .. }) {
                // Bound where the guest runs now, and no longer plugged in on the other host.
                self.bind_ports(&nics, &placed).await;
            }
            self.changed_on(woken);
            return Ok(());
        }
        Err(Error::Conflict(format!(
            "server {server_id} kept changing; the host will say it again"
        )))
    }
}

fn not_live(server_id: &str, host: &str) -> Error {
    Error::Conflict(format!(
        "server {server_id} is not being live-migrated to or from host {host}"
    ))
}
