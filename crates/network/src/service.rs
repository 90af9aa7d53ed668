//! The network service: its database, settings, and the signal that tells this host's agent
//! that desired state changed. The operations live in `ops/`, one module per resource.

use std::sync::Arc;

use onestack_db::{Pool, now_micros};
use tokio::sync::Notify;

use crate::config::NetworkConfig;
use crate::model::Standard;

pub struct Networks {
    pub pool: Pool,
    pub config: NetworkConfig,
    /// This host's name, as ports are bound to it.
    pub host: String,
    changed: Arc<Notify>,
}

impl Networks {
    pub fn new(pool: Pool, config: NetworkConfig) -> Self {
        let host = config.host_name();
        Self {
            pool,
            config,
            host,
            changed: Arc::new(Notify::new()),
        }
    }

    /// Woken after every committed change (the agent in this process waits on it).
    pub fn changes(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    pub(crate) fn changed(&self) {
        self.changed.notify_one();
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

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
