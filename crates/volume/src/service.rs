//! The block storage service: its database, settings, this host's name, and the signal
//! that tells this host's volume agent that there is work.

use std::sync::Arc;

use onestack_db::{Pool, now_micros};
use onestack_image::Images;
use tokio::sync::Notify;

use crate::config::VolumeConfig;
use crate::error::Result;
use crate::model::{BackendReport, VolumeType};
use crate::store::{self, TypeKey};

pub struct Volumes {
    pub pool: Pool,
    pub config: VolumeConfig,
    /// This host's name; its volumes are `<host>@file#file`.
    pub host: String,
    /// Where volumes made from images read them (through its typed calls).
    pub images: Arc<Images>,
    /// Compute, for the block storage API's own attach calls (set once compute exists).
    pub(crate) attacher:
        std::sync::OnceLock<std::sync::Weak<dyn crate::ops::server_attach::ServerAttacher>>,
    /// What this host's volume agent last reported about its backend.
    pub(crate) report: std::sync::Mutex<Option<BackendReport>>,
    changed: Arc<Notify>,
}

/// The backend and pool part of a volume's host (`host@backend#pool`).
pub(crate) const BACKEND: &str = "file";

impl Volumes {
    pub fn new(pool: Pool, config: VolumeConfig, host: String, images: Arc<Images>) -> Self {
        Self {
            pool,
            config,
            host,
            images,
            attacher: std::sync::OnceLock::new(),
            report: std::sync::Mutex::new(None),
            changed: Arc::new(Notify::new()),
        }
    }

    /// This host's backend, in Cinder's `host@backend` form (its volume service's host).
    pub fn backend_host(&self) -> String {
        format!("{}@{BACKEND}", self.host)
    }

    /// The volume agent's report after each pass: the backend's space, and that it runs.
    pub fn report_backend(&self, report: BackendReport) {
        if let Ok(mut last) = self.report.lock() {
            *last = Some(report);
        }
    }

    /// Where this host's new volumes live, in Cinder's `host@backend#pool` form.
    pub fn volume_host(&self) -> String {
        format!("{}@{BACKEND}#{BACKEND}", self.host)
    }

    /// Woken after every change the volume agent must act on.
    pub fn changes(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    pub(crate) fn changed(&self) {
        self.changed.notify_one();
    }

    /// Makes the configured default type on first start (Cinder's `__DEFAULT__`).
    pub async fn seed_default_type(&self) -> Result<()> {
        let name = &self.config.default_type;
        if store::volume_type(&self.pool, TypeKey::Name, name)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let default = VolumeType {
            id: onestack_db::ids::uuid(),
            name: name.clone(),
            description: Some("Default Volume Type".into()),
            is_public: true,
            extra_specs: Default::default(),
            created_at: now_micros(),
            projects: Default::default(),
        };
        let mut tx = store::begin_write(&self.pool).await?;
        store::insert_type(&mut tx, &default).await?;
        tx.commit().await?;
        Ok(())
    }
}
