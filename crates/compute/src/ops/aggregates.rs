//! Host aggregates (`os-aggregates`), admin-only as in Nova: groups of hosts with metadata.
//! An aggregate whose metadata names an `availability_zone` is that zone for its hosts: each
//! host's record carries the zone (`Host::aggregate_zone`), written in the transaction that
//! changes the aggregate, so the scheduler and the zone listings read it from the host. A
//! host is in at most one zone, and a host with servers never changes zone (Nova's rules).

use std::collections::{BTreeMap, HashMap};

use onestack_db::now_micros;

use crate::error::{Error, Result};
use crate::model::{Aggregate, Host, ZONE_KEY};
use crate::policy::Caller;
use crate::service::{Computes, new_id};
use crate::store::{self, ServerFilter};

/// A change to an aggregate's metadata: `None` removes the key.
pub type MetadataChange = BTreeMap<String, Option<String>>;

/// What `POST /os-aggregates/{id}/action` asks.
#[derive(Debug)]
pub enum AggregateAction {
    AddHost(String),
    RemoveHost(String),
    SetMetadata(MetadataChange),
}

impl Computes {
    pub async fn aggregates(&self, caller: &Caller) -> Result<Vec<Aggregate>> {
        caller.require_admin("os-aggregates:index")?;
        store::aggregates(&self.pool).await
    }

    pub async fn aggregate(&self, caller: &Caller, id: i64) -> Result<Aggregate> {
        caller.require_admin("os-aggregates:show")?;
        find(store::aggregates(&self.pool).await?, id)
    }

    pub async fn create_aggregate(
        &self,
        caller: &Caller,
        name: String,
        zone: Option<String>,
    ) -> Result<Aggregate> {
        caller.require_admin("os-aggregates:create")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let existing = store::aggregates(&mut *tx).await?;
        if existing.iter().any(|a| a.name == name) {
            return Err(Error::Conflict(format!("Aggregate {name} already exists.")));
        }
        let aggregate = Aggregate {
            id: store::next_aggregate_id(&mut tx).await?,
            uuid: new_id(),
            name,
            hosts: Vec::new(),
            metadata: zone.map(|z| (ZONE_KEY.to_owned(), z)).into_iter().collect(),
            created_at: now_micros(),
            updated_at: None,
        };
        store::save_aggregate(&mut *tx, &aggregate).await?;
        tx.commit().await?;
        Ok(aggregate)
    }

    /// Renames an aggregate and/or sets its zone (`PUT /os-aggregates/{id}`).
    pub async fn update_aggregate(
        &self,
        caller: &Caller,
        id: i64,
        name: Option<String>,
        zone: Option<String>,
    ) -> Result<Aggregate> {
        caller.require_admin("os-aggregates:update")?;
        self.change_aggregate(id, "update", |aggregate, others| {
            if let Some(name) = name {
                if others.iter().any(|a| a.name == name) {
                    return Err(Error::Conflict(format!("Aggregate {name} already exists.")));
                }
                aggregate.name = name;
            }
            if let Some(zone) = zone {
                aggregate.metadata.insert(ZONE_KEY.to_owned(), zone);
            }
            Ok(())
        })
        .await
    }

    pub async fn delete_aggregate(&self, caller: &Caller, id: i64) -> Result<()> {
        caller.require_admin("os-aggregates:delete")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let aggregate = find(store::aggregates(&mut *tx).await?, id)?;
        if !aggregate.hosts.is_empty() {
            return Err(Error::BadRequest(format!(
                "Cannot perform action 'delete' on aggregate {id}. Reason: Host aggregate is \
                 not empty."
            )));
        }
        store::delete_aggregate(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn aggregate_action(
        &self,
        caller: &Caller,
        id: i64,
        action: AggregateAction,
    ) -> Result<Aggregate> {
        match action {
            AggregateAction::AddHost(host) => self.add_aggregate_host(caller, id, &host).await,
            AggregateAction::RemoveHost(host) => {
                self.remove_aggregate_host(caller, id, &host).await
            }
            AggregateAction::SetMetadata(change) => {
                self.set_aggregate_metadata(caller, id, change).await
            }
        }
    }

    async fn add_aggregate_host(&self, caller: &Caller, id: i64, host: &str) -> Result<Aggregate> {
        caller.require_admin("os-aggregates:add_host")?;
        self.change_aggregate(id, "add_host", |aggregate, _| {
            if aggregate.hosts.iter().any(|h| h == host) {
                return Err(Error::Conflict(format!(
                    "Aggregate {id} already has host {host}."
                )));
            }
            aggregate.hosts.push(host.to_owned());
            Ok(())
        })
        .await
    }

    async fn remove_aggregate_host(
        &self,
        caller: &Caller,
        id: i64,
        host: &str,
    ) -> Result<Aggregate> {
        caller.require_admin("os-aggregates:remove_host")?;
        self.change_aggregate(id, "remove_host", |aggregate, _| {
            let before = aggregate.hosts.len();
            aggregate.hosts.retain(|h| h != host);
            if aggregate.hosts.len() == before {
                return Err(Error::NotFound(format!(
                    "Aggregate {id} has no host {host}."
                )));
            }
            Ok(())
        })
        .await
    }

    async fn set_aggregate_metadata(
        &self,
        caller: &Caller,
        id: i64,
        change: MetadataChange,
    ) -> Result<Aggregate> {
        caller.require_admin("os-aggregates:set_metadata")?;
        self.change_aggregate(id, "set_metadata", |aggregate, _| {
            for (key, value) in change {
                match value {
                    Some(value) => aggregate.metadata.insert(key, value),
                    None => aggregate.metadata.remove(&key),
                };
            }
            Ok(())
        })
        .await
    }

    /// Reads every aggregate and host under the write lock, applies `change` to aggregate
    /// `id`, checks the zones that follow, and writes the aggregate and the hosts whose zone
    /// changed, all or nothing.
    async fn change_aggregate(
        &self,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Aggregate, &[Aggregate]) -> Result<()>,
    ) -> Result<Aggregate> {
        let mut tx = store::begin_write(&self.pool).await?;
        let (mut mine, others): (Vec<Aggregate>, Vec<Aggregate>) = store::aggregates(&mut *tx)
            .await?
            .into_iter()
            .partition(|a| a.id == id);
        let mut aggregate = mine
            .pop()
            .ok_or_else(|| Error::NotFound(format!("Aggregate {id} could not be found.")))?;
        change(&mut aggregate, &others)?;
        aggregate.updated_at = Some(now_micros());
        let hosts: HashMap<String, Host> = store::hosts(&mut *tx)
            .await?
            .into_iter()
            .map(|h| (h.host.clone(), h))
            .collect();
        if let Some(missing) = aggregate.hosts.iter().find(|h| !hosts.contains_key(*h)) {
            return Err(Error::NotFound(format!(
                "Compute host {missing} could not be found."
            )));
        }
        let refused = |reason: String| {
            Error::Conflict(format!(
                "Cannot perform action '{action}' on aggregate {id}. Reason: {reason}."
            ))
        };
        let all: Vec<&Aggregate> = others.iter().chain([&aggregate]).collect();
        for host in hosts.values() {
            let zones: Vec<&str> = all
                .iter()
                .filter(|a| a.hosts.contains(&host.host))
                .filter_map(|a| a.availability_zone())
                .collect();
            if zones.windows(2).any(|w| w[0] != w[1]) {
                return Err(refused(format!(
                    "host {} would be in more than one availability zone ({})",
                    host.host,
                    zones.join(", ")
                )));
            }
            let zone = zones.first().map(|z| (*z).to_owned());
            if zone == host.aggregate_zone {
                continue;
            }
            let on_host = ServerFilter {
                host: Some(host.host.clone()),
                ..ServerFilter::default()
            };
            if !store::servers(&mut *tx, &on_host).await?.is_empty() {
                return Err(refused(format!(
                    "host {} has servers, and would change availability zone",
                    host.host
                )));
            }
            let mut moved = host.clone();
            moved.aggregate_zone = zone;
            store::save_host(&mut *tx, &moved).await?;
        }
        store::save_aggregate(&mut *tx, &aggregate).await?;
        tx.commit().await?;
        Ok(aggregate)
    }
}

fn find(aggregates: Vec<Aggregate>, id: i64) -> Result<Aggregate> {
    aggregates
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| Error::NotFound(format!("Aggregate {id} could not be found.")))
}
