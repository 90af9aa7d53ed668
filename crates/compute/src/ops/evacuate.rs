//! `evacuate`: a server whose host is down is rebuilt on another host from its image (no
//! storage is shared between hosts here, so its local disk is not carried over), keeping
//! its ports and addresses (they are bound to the new host). The new host's agent builds
//! it afresh; the old host, back, finds the server gone from its list and removes the
//! guest it still has (Nova's cleanup of evacuated instances).

use super::migrate::{UnknownHost, refuse_volumes};
use crate::error::{Error, Result};
use crate::model::Server;
use crate::policy::Caller;
use crate::service::Computes;
use crate::store;

impl Computes {
    /// Places the server, marked for a rebuild, on `target` (or the scheduler's pick) and
    /// writes it with its action, in one write transaction: the host's room is claimed as
    /// for a boot. Its ports follow it.
    pub(super) async fn save_evacuation(
        &self,
        caller: &Caller,
        mut server: Server,
        revision: i64,
        target: Option<&str>,
    ) -> Result<()> {
        // Their host is down with the server.
        refuse_volumes(&server, "bring the host back, or detach them first")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let hosts = store::hosts(&mut *tx).await?;
        let liveness = self.config.liveness(onestack_db::now_micros());
        let source = server.host.clone().unwrap_or_default();
        if hosts.iter().any(|h| h.host == source && liveness.is_up(h)) {
            return Err(Error::BadRequest(format!(
                "Compute service of {source} is still in use."
            )));
        }
        let (destination, zone) = self
            .pick_other_host(&mut tx, &server, &source, target, UnknownHost::NotFound)
            .await?;
        server.availability_zone = zone;
        server.host = Some(destination.clone());
        server.fault = None;
        let nics = server.nics.clone();
        self.commit_with_action(tx, caller, server, revision, "evacuate")
            .await?;
        self.bind_ports(&nics, &destination).await;
        Ok(())
    }
}
