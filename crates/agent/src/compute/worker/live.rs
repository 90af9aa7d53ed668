//! A live migration's two halves (`onestack_compute::ops::live_migrate`): the new host
//! builds the guest's disks and waits for it; the old host sends it.

use std::time::Duration;

use onestack_compute::model::{LiveChannel, Server};
use onestack_compute::ops::live_migrate::LiveStep;
use onestack_compute::states::{TaskState, VmState};
use onestack_virt::MigrationChannel;

use super::Worker;
use crate::compute::controller::Controller;
use crate::compute::{Error, Result};

/// The longest a live migration may take, from the new host listening to the switch.
const LIVE_MIGRATION_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How often the new host checks that the old one has not given up.
const ABANDON_CHECK: Duration = Duration::from_millis(500);
/// How long the old host keeps telling the controller it sent the guest (which runs on
/// the new host by then) while the controller does not answer.
const SENT_RETRY: Duration = Duration::from_secs(300);

impl<C: Controller> Worker<C> {
    /// This host's half of the server's live migration.
    pub(super) async fn live_migrate(&self, server: &Server) -> Result<()> {
        let migration = server
            .migration
            .as_ref()
            .ok_or_else(|| Error::Other("a live migration without its record".into()))?;
        let live = migration
            .live
            .as_ref()
            .ok_or_else(|| Error::Other("a live migration without its channel".into()))?;
        if server.host.as_deref() == Some(self.controller.host()) {
            self.send(server, live).await
        } else {
            self.receive(server, live).await
        }
    }

    /// The new host: builds the guest's disks on the same image (an overlay the old host's
    /// mirror fills with the guest's own data), plugs in its ports and config drive, starts
    /// QEMU waiting for it, says where, and resumes it once it has arrived.
    async fn receive(&self, server: &Server, live: &LiveChannel) -> Result<()> {
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
        self.controller.live_migration(id, step).await?;
        let resume = server.vm_state == VmState::Active;
        tokio::select! {
            arrived = self.driver.finish_incoming(id, resume, LIVE_MIGRATION_TIMEOUT) => Ok(arrived?),
            () = self.abandoned(id) => {
                self.driver.destroy(id).await?;
                Err(Error::Other("the old host gave the live migration up".into()))
            }
        }
    }

    /// Returns once the server's live migration is over without this host (failed, or the
    /// server gone).
    async fn abandoned(&self, id: &str) {
        loop {
            tokio::time::sleep(ABANDON_CHECK).await;
            match self.controller.server(id).await {
                Ok(Some(record)) if record.server.task_state == Some(TaskState::Migrating) => {}
                Ok(Some(record))
                    if record.server.host.as_deref() == Some(self.controller.host()) =>
                {
                    // Placed here: the guest has arrived; the wait for it ends by itself.
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
    async fn send(&self, server: &Server, live: &LiveChannel) -> Result<()> {
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
            .migrate_live(id, &channel, LIVE_MIGRATION_TIMEOUT)
            .await?;
        tracing::info!(
            server = %id,
            total_ms = stats.total_ms,
            downtime_ms = stats.downtime_ms,
            ram_bytes = stats.ram_bytes,
            "guest live-migrated"
        );
        // The guest runs on the new host now: keep saying so until the controller hears.
        let deadline = tokio::time::Instant::now() + SENT_RETRY;
        loop {
            match self.controller.live_migration(id, LiveStep::Sent).await {
                Ok(()) => return Ok(()),
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(server = %id, %error, "cannot tell the controller a guest moved; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}
