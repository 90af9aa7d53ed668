//! The network service: its database, settings, and the signal that tells this host's agent
//! that desired state changed. The operations live in `ops/`, one module per resource.

use std::sync::Arc;

use onestack_db::{Pool, now_micros};
use tokio::sync::{Notify, watch};

use crate::config::NetworkConfig;
use crate::model::Standard;

pub struct Networks {
    pub pool: Pool,
    pub config: NetworkConfig,
    /// This host's name, as ports are bound to it.
    pub host: String,
    /// Where the searches for a free VXLAN id (in `vni_min..=vni_max`) and a free conntrack
    /// zone start. Both are the host's, so two clouds on one host (a test cloud beside a
    /// real one) that both started at the bottom would take the same ones; a start drawn
    /// from the cloud's id keeps them apart unless the space is nearly full.
    pub id_offset: u32,
    /// The cloud's id, which marks what every host's agent builds (empty in tests that
    /// never run an agent).
    pub cloud_id: String,
    changed: Arc<Notify>,
    /// A count of changes, for joined hosts' agents waiting on the agent protocol.
    generation: watch::Sender<u64>,
}

impl Networks {
    pub fn new(pool: Pool, config: NetworkConfig) -> Self {
        let host = config.host_name();
        Self {
            pool,
            config,
            host,
            id_offset: 0,
            cloud_id: String::new(),
            changed: Arc::new(Notify::new()),
            generation: watch::Sender::new(0),
        }
    }

    /// Starts the id searches at a place drawn from `cloud_id` (hex; see `id_offset`).
    pub fn with_cloud_id(mut self, cloud_id: &str) -> Self {
        self.id_offset = cloud_id
            .get(..8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        cloud_id.clone_into(&mut self.cloud_id);
        self
    }

    /// Woken after every committed change (the agent in this process waits on it).
    pub fn changes(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// The count of changes so far, moving on with each (joined hosts' long polls).
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// A host's network agent reports in over the agent protocol. A new or changed
    /// tunnel address wakes every agent: their forwarding entries change with it.
    pub async fn record_agent(
        &self,
        host: &str,
        tunnel_ip: Option<&str>,
    ) -> crate::error::Result<()> {
        if crate::desired::heartbeat(&self.pool, host, tunnel_ip, now_micros()).await? {
            self.changed();
        }
        Ok(())
    }

    pub(crate) fn changed(&self) {
        self.changed.notify_one();
        self.generation.send_modify(|g| *g += 1);
    }
}

/// Standard attributes of a resource created now.
pub(crate) fn new_standard() -> Standard {
    let now = now_micros();
    Standard {
        tags: Vec::new(),
        revision_number: 1,
        created_at: now,
        updated_at: now,
    }
}

/// Marks a resource changed: a new revision and update time.
pub(crate) fn touch(std: &mut Standard) -> i64 {
    let previous = std.revision_number;
    std.revision_number += 1;
    std.updated_at = now_micros().max(std.updated_at);
    previous
}

pub(crate) use onestack_db::ids::uuid as new_id;
