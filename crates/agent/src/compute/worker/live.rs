//! A live migration's two halves (`onestack_compute::ops::live_migrate`): the new host
//! builds the guest's disks and waits for it; the old host sends it. Each host reports its
//! steps itself, naming the migration, so that a failure ends only the attempt it belongs to.

use std::time::Duration;

use onestack_compute::model::{LiveChannel, Server};
use onestack_compute::ops::live_migrate::{LiveReport, LiveStep};
use onestack_compute::states::{TaskState, VmState};
use onestack_virt::MigrationChannel;

use super::Worker;
use crate::compute::controller::Controller;
use crate::compute::{Error, Result};

/// How often the new host checks that the old one has not given up.
const ABANDON_CHECK: Duration = Duration::from_millis(500);
/// How long to wait before telling the controller again that the guest moved.
const MOVED_RETRY: Duration = Duration::from_secs(2);

/// The longest a live migration may take, from the new host listening to the switch: 15
/// minutes, and 2 more per GiB of memory and disk to copy (at TCG's pace, with a guest
/// writing all the while).
fn time_allowed(server: &Server) -> Duration {
    let gib = server.flavor.ram.div_ceil(1024) + server.local_disk_gb(&server.flavor);
    Duration::from_secs(15 * 60 + 120 * gib)
}

impl<C: Controller> Worker<C> {
    /// This host's half of the server's live migration. A failure before the switch is
    /// reported here: the server stays on its old host.
    pub(super) async fn live_migrate(&self, server: &Server) -> Result<()> {
        let migration = server
            .migration
            .as_ref()
            .ok_or_else(|| Error::Other("a live migration without its record".into()))?;
        let live = migration
            .live
            .as_ref()
            .ok_or_else(|| Error::Other("a live migration without its channel".into()))?;
        let id = &server.id;
        let outcome = if server.host.as_deref() == Some(self.controller.host()) {
            self.send(server, &migration.id, live).await
        } else {
            self.receive(server, &migration.id, live).await
        };
        if let Err(error) = &outcome {
            let step = LiveStep::Failed {
                details: error.to_string(),
            };
            if let Err(error) = self.report(id, &migration.id, step).await {
                tracing::warn!(server = %id, %error, "cannot record a failed live migration");
            }
        }
        outcome
    }

    async fn report(&self, id: &str, migration_id: &str, step: LiveStep) -> Result<()> {
        let report = LiveReport {
            migration_id: migration_id.to_owned(),
            step,
        };
        self.controller.live_migration(id, report).await
    }

    /// The new host: builds the guest's disks on the same image (an overlay the old host's
    /// mirror fills with the guest's own data), plugs in its ports and config drive, starts
    /// QEMU waiting for it, says where, and resumes it once it has arrived.
    async fn receive(&self, server: &Server, migration_id: &str, live: &LiveChannel) -> Result<()> {
        let id = &server.id;
        if self.driver.spec(id).await?.is_some() {
            // A restart cut the last attempt short.
            self.driver.delete(id).await?;
        }
        let (root, cdrom, kernel, ramdisk) = self.image_boot(server).await?;
        let spec = self
            .build_spec(server, root, cdrom, kernel, ramdisk)
            .await?;
        self.driver.create(&spec).await?;
        self.refresh_config_drive(server).await?;
        let channel = self
            .driver
            .listen_for_migration(id, live.address, &live.key)
            .await?;
        let step = LiveStep::Listening {
            migration_port: channel.migration_port,
            nbd_port: channel.nbd_port,
        };
        if let Err(error) = self.report(id, migration_id, step).await {
            self.driver.destroy(id).await?;
            return Err(error);
        }
        let resume = server.vm_state == VmState::Active;
        tokio::select! {
            arrived = self.driver.finish_incoming(id, resume, time_allowed(server)) => arrived?,
            () = self.abandoned(id, migration_id) => {
                self.driver.destroy(id).await?;
                return Err(Error::Other("the old host gave the live migration up".into()));
            }
        }
        self.moved(id, migration_id, LiveStep::Arrived).await;
        Ok(())
    }

    /// Returns once the migration `migration_id` of the server is over without this host
    /// (failed, another one, or the server gone).
    async fn abandoned(&self, id: &str, migration_id: &str) {
        loop {
            tokio::time::sleep(ABANDON_CHECK).await;
            match self.controller.server(id).await {
                Ok(Some(record))
                    if record.server.task_state == Some(TaskState::Migrating)
                        && record
                            .server
                            .migration
                            .as_ref()
                            .is_some_and(|m| m.id == migration_id) => {}
                Ok(Some(record))
                    if record.server.host.as_deref() == Some(self.controller.host()) =>
                {
                    // Placed here by the old host's word: the wait for the guest ends by itself.
                    std::future::pending::<()>().await;
                }
                Ok(_) => return,
                // The controller out of reach says nothing about the migration.
                Err(_) => {}
            }
        }
    }

    /// The old host: sends the guest to where the new host listens; once the new host has
    /// it, the server is placed there.
    async fn send(&self, server: &Server, migration_id: &str, live: &LiveChannel) -> Result<()> {
        let id = &server.id;
        let (migration_port, nbd_port) = live
            .ports
            .ok_or_else(|| Error::Other("the new host does not listen yet".into()))?;
        let channel = MigrationChannel {
            address: live.address,
            migration_port,
            nbd_port,
            key: live.key.clone(),
        };
        let stats = self
            .driver
            .migrate_live(id, &channel, time_allowed(server))
            .await?;
        tracing::info!(
            server = %id,
            total_ms = stats.total_ms,
            downtime_ms = stats.downtime_ms,
            ram_bytes = stats.ram_bytes,
            "guest live-migrated"
        );
        self.moved(id, migration_id, LiveStep::Sent).await;
        Ok(())
    }

    /// Tells the controller that the guest runs on the new host now, until it has heard
    /// (from this host or the other): the server must follow its guest, and no failure may
    /// be reported after the switch.
    async fn moved(&self, id: &str, migration_id: &str, step: LiveStep) {
        loop {
            let error = match self.report(id, migration_id, step.clone()).await {
                Ok(()) => return,
                Err(error) => error,
            };
            match self.controller.server(id).await {
                // Placed by the other host's word, or no longer this migration's.
                Ok(None) => return,
                Ok(Some(record))
                    if record.server.migration.as_ref().map(|m| m.id.as_str())
                        != Some(migration_id) =>
                {
                    return;
                }
                _ => {}
            }
            tracing::warn!(server = %id, %error, "cannot tell the controller a guest moved; retrying");
            tokio::time::sleep(MOVED_RETRY).await;
        }
    }
}
