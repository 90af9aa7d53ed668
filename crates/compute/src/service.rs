//! The compute service: its database, settings, the services it calls (network, image,
//! volume), and the signal that tells this host's agent that desired state changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use onestack_db::{Pool, Tx, now_micros};
use onestack_image::Images;
use onestack_network::Networks;
use onestack_volume::Volumes;
use tokio::sync::{Notify, watch};

use crate::config::{ComputeConfig, QUOTA_RESOURCES};
use crate::error::{Error, Result};
use crate::model::{Flavor, Host};
use crate::store;

pub struct Computes {
    pub pool: Pool,
    pub config: ComputeConfig,
    pub networks: Arc<Networks>,
    pub images: Arc<Images>,
    pub volumes: Arc<Volumes>,
    /// This host's name (the same one ports are bound to).
    pub host: String,
    /// Where this host keeps its guests (console logs are read from here).
    pub instances_dir: std::path::PathBuf,
    changed: Arc<Notify>,
    /// Counts changes, for joined hosts waiting on the agent protocol (the count is this
    /// process's, so a new process starts again at 0).
    generation: watch::Sender<u64>,
    /// Per host, the count at the last change to one of its servers: a host's wait is
    /// answered only for those, so a boot wakes one host, not all fifty.
    touched: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// Console logs asked of joined hosts, and their count (which wakes the hosts' waits
    /// without a pass over their servers).
    pub(crate) consoles: crate::ops::consoles::ConsoleRequests,
    console_asks: watch::Sender<u64>,
}

impl Computes {
    pub fn new(
        config: ComputeConfig,
        networks: Arc<Networks>,
        images: Arc<Images>,
        volumes: Arc<Volumes>,
        instances_dir: std::path::PathBuf,
    ) -> Self {
        Self {
            instances_dir,
            pool: networks.pool.clone(),
            host: networks.host.clone(),
            config,
            networks,
            images,
            volumes,
            changed: Arc::new(Notify::new()),
            generation: watch::Sender::new(0),
            touched: Default::default(),
            consoles: Default::default(),
            console_asks: watch::Sender::new(0),
        }
    }

    /// Woken after every change a host agent must act on.
    pub fn changes(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// The count of changes so far, to wait on for the next one.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The count of changes at the last one to a server on `host` (0: none since this
    /// process started).
    pub fn host_generation(&self, host: &str) -> u64 {
        let touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        touched.get(host).copied().unwrap_or(0)
    }

    /// The count of console logs asked of joined hosts so far, to wait on for the next one.
    pub fn watch_console_asks(&self) -> watch::Receiver<u64> {
        self.console_asks.subscribe()
    }

    /// Wakes this host's agent, and the joined hosts among `hosts` (those of the servers
    /// changed) waiting on the agent protocol.
    pub(crate) fn changed_on<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) {
        self.changed.notify_one();
        // The hosts' counts are written before the count wakes their waits, which then read
        // them; one lock keeps concurrent changes' counts in order.
        let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        let next = self.generation.borrow().wrapping_add(1);
        for host in hosts {
            touched.insert(host.to_owned(), next);
        }
        self.generation.send_replace(next);
    }

    /// Answers the joined hosts' long polls with a console log asked of one of them.
    pub(crate) fn console_asked(&self) {
        self.console_asks.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Creates DevStack's flavors on first start, when configured to.
    pub async fn seed_flavors(&self) -> Result<()> {
        if !self.config.default_flavors || !store::flavors(&self.pool).await?.is_empty() {
            return Ok(());
        }
        let defaults: [(&str, &str, u32, u64, u64); 5] = [
            ("1", "m1.tiny", 1, 512, 1),
            ("2", "m1.small", 1, 2048, 20),
            ("3", "m1.medium", 2, 4096, 40),
            ("4", "m1.large", 4, 8192, 80),
            ("5", "m1.xlarge", 8, 16384, 160),
        ];
        let now = now_micros();
        for (id, name, vcpus, ram, disk) in defaults {
            let flavor = Flavor {
                id: id.into(),
                name: name.into(),
                vcpus,
                ram,
                disk,
                ephemeral: 0,
                swap: 0,
                rxtx_factor: 1.0,
                is_public: true,
                disabled: false,
                description: None,
                extra_specs: BTreeMap::new(),
                created_at: now,
            };
            store::insert_flavor(&self.pool, &flavor).await?;
        }
        Ok(())
    }

    /// Records this host's capacity (the agent calls it at start and on every sync);
    /// what the API set (disabled, reason) is kept.
    /// The hosts that belong to the cloud (joining, credentials), on this database.
    pub fn membership(&self) -> crate::ops::membership::Membership {
        crate::ops::membership::Membership::new(self.pool.clone(), self.host.clone())
    }

    pub async fn register_host(&self, mut measured: Host) -> Result<Host> {
        // Under the write lock, so that an admin's `service set` in between is kept.
        let mut tx = store::begin_write(&self.pool).await?;
        if let Some(old) = store::host(&mut *tx, &measured.host).await? {
            measured.service_id = old.service_id;
            measured.hypervisor_id = old.hypervisor_id;
            measured.disabled = old.disabled;
            measured.disabled_reason = old.disabled_reason;
            measured.forced_down = old.forced_down;
            measured.aggregate_zone = old.aggregate_zone;
        }
        measured.updated_at = now_micros();
        store::save_host(&mut *tx, &measured).await?;
        tx.commit().await?;
        Ok(measured)
    }

    /// The limits of a project: overrides, else the configured defaults.
    pub async fn quota_limits<'c, E>(&self, e: E, project_id: &str) -> Result<BTreeMap<String, i64>>
    where
        E: sqlx::Executor<'c, Database = onestack_db::Any>,
    {
        let mut limits: BTreeMap<String, i64> = QUOTA_RESOURCES
            .iter()
            .filter_map(|r| Some(((*r).to_owned(), self.config.default_quota(r)?)))
            .collect();
        for (resource, limit) in store::QUOTAS.limits(e, project_id).await? {
            limits.insert(resource, limit);
        }
        Ok(limits)
    }

    /// Fails with Nova's quota error if adding `wanted` servers of `vcpus`/`ram` each
    /// would exceed the project's limits.
    pub(crate) async fn check_server_quota(
        &self,
        tx: &mut Tx,
        project_id: &str,
        wanted: i64,
        vcpus: i64,
        ram: i64,
    ) -> Result<()> {
        let limits = self.quota_limits(&mut **tx, project_id).await?;
        let (instances, cores, used_ram) = store::project_usage(tx, project_id).await?;
        for (resource, used, per) in [
            ("instances", instances, 1),
            ("cores", cores, vcpus),
            ("ram", used_ram, ram),
        ] {
            let limit = limits.get(resource).copied().unwrap_or(-1);
            if limit >= 0 && used + wanted * per > limit {
                return Err(Error::OverQuota {
                    resource,
                    requested: wanted * per,
                    used,
                    limit,
                });
            }
        }
        Ok(())
    }
}

pub(crate) use onestack_db::ids::uuid as new_id;
