//! Per-project quotas (volumes, snapshots, gigabytes, per-volume gigabytes, backups and
//! backup gigabytes are enforced; groups are kept for when they exist), checked inside the
//! write transaction that takes the resources, so concurrent requests cannot overrun a
//! limit.

use std::collections::BTreeMap;

use onestack_db::Tx;

use crate::config::QUOTA_RESOURCES;
use crate::error::{Error, Result};
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store::{self, Usage};

/// One resource's limit and what the project holds of it.
#[derive(Debug, Clone, Copy)]
pub struct QuotaUsage {
    pub limit: i64,
    pub in_use: i64,
}

/// What the project holds of `resource`.
fn in_use(used: Usage, resource: &str) -> i64 {
    match resource {
        "volumes" => used.volumes,
        "snapshots" => used.snapshots,
        "gigabytes" => used.gigabytes,
        "backups" => used.backups,
        "backup_gigabytes" => used.backup_gigabytes,
        _ => 0,
    }
}

fn over(limit: i64, wanted: i64) -> bool {
    limit >= 0 && wanted > limit
}

impl Volumes {
    /// The limits in force for `project`: its own where set, the defaults elsewhere.
    pub(crate) async fn limits_of(
        &self,
        e: impl sqlx::Executor<'_, Database = onestack_db::Any>,
        project: &str,
    ) -> Result<BTreeMap<&'static str, i64>> {
        let set: BTreeMap<String, i64> = store::QUOTAS
            .limits(e, project)
            .await?
            .into_iter()
            .collect();
        Ok(QUOTA_RESOURCES
            .into_iter()
            .map(|r| {
                let default = self.config.default_quota(r).unwrap_or(-1);
                (r, set.get(r).copied().unwrap_or(default))
            })
            .collect())
    }

    /// Refuses `volumes` more volumes of `size` GiB each beyond the project's quotas.
    pub(crate) async fn check_quota(
        &self,
        tx: &mut Tx,
        project: &str,
        volumes: i64,
        size: u64,
    ) -> Result<()> {
        let limits = self.limits_of(&mut **tx, project).await?;
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let per_volume = limits["per_volume_gigabytes"];
        if over(per_volume, size) {
            return Err(Error::OverQuota {
                class: "VolumeSizeExceedsLimit",
                message: format!(
                    "Requested volume size {size}G is larger than maximum allowed limit {per_volume}G."
                ),
            });
        }
        let used = store::usage(tx, project).await?;
        let max_volumes = limits["volumes"];
        if over(max_volumes, used.volumes + volumes) {
            return Err(Error::OverQuota {
                class: "VolumeLimitExceeded",
                message: format!(
                    "Maximum number of volumes allowed ({max_volumes}) exceeded for quota 'volumes'."
                ),
            });
        }
        self.check_gigabytes(limits["gigabytes"], used, size.saturating_mul(volumes))
    }

    /// Refuses taking a volume of `volume_gb` with `snapshots` snapshots of `snapshot_gb` in
    /// all beyond the project's quotas (all counted together).
    pub(crate) async fn check_transfer_quota(
        &self,
        tx: &mut Tx,
        project: &str,
        volume_gb: u64,
        snapshots: usize,
        snapshot_gb: u64,
    ) -> Result<()> {
        self.check_quota(tx, project, 1, volume_gb).await?;
        let count = i64::try_from(snapshots).unwrap_or(i64::MAX);
        self.check_snapshots_quota(tx, project, count, volume_gb.saturating_add(snapshot_gb))
            .await
    }

    /// Refuses `count` more snapshots, and `gigabytes` more GiB, beyond the project's quotas.
    pub(crate) async fn check_snapshots_quota(
        &self,
        tx: &mut Tx,
        project: &str,
        count: i64,
        gigabytes: u64,
    ) -> Result<()> {
        let limits = self.limits_of(&mut **tx, project).await?;
        let used = store::usage(tx, project).await?;
        let max = limits["snapshots"];
        if over(max, used.snapshots.saturating_add(count)) {
            return Err(Error::OverQuota {
                class: "SnapshotLimitExceeded",
                message: format!("Maximum number of snapshots allowed ({max}) exceeded"),
            });
        }
        self.check_gigabytes(
            limits["gigabytes"],
            used,
            i64::try_from(gigabytes).unwrap_or(i64::MAX),
        )
    }

    /// Refuses one more backup of `size` GiB beyond the project's quotas.
    pub(crate) async fn check_backup_quota(
        &self,
        tx: &mut Tx,
        project: &str,
        size: u64,
    ) -> Result<()> {
        let limits = self.limits_of(&mut **tx, project).await?;
        let used = store::usage(tx, project).await?;
        let max = limits["backups"];
        if over(max, used.backups + 1) {
            return Err(Error::OverQuota {
                class: "BackupLimitExceeded",
                message: format!("Maximum number of backups allowed ({max}) exceeded"),
            });
        }
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let limit = limits["backup_gigabytes"];
        if over(limit, used.backup_gigabytes.saturating_add(size)) {
            return Err(Error::OverQuota {
                class: "VolumeBackupSizeExceedsAvailableQuota",
                message: format!(
                    "Requested backup exceeds allowed Backup gigabytes quota. Requested {size}G, quota is {limit}G and {}G has been consumed.",
                    used.backup_gigabytes
                ),
            });
        }
        Ok(())
    }

    /// Refuses growing a volume from `old` to `new` GiB beyond the project's quotas.
    pub(crate) async fn check_extend_quota(
        &self,
        tx: &mut Tx,
        project: &str,
        old: u64,
        new: u64,
    ) -> Result<()> {
        let limits = self.limits_of(&mut **tx, project).await?;
        let new_gb = i64::try_from(new).unwrap_or(i64::MAX);
        let per_volume = limits["per_volume_gigabytes"];
        if over(per_volume, new_gb) {
            return Err(Error::OverQuota {
                class: "VolumeSizeExceedsLimit",
                message: format!(
                    "Requested volume size {new_gb}G is larger than maximum allowed limit {per_volume}G."
                ),
            });
        }
        let used = store::usage(tx, project).await?;
        let grow = new_gb.saturating_sub(i64::try_from(old).unwrap_or(0));
        self.check_gigabytes(limits["gigabytes"], used, grow)
    }

    fn check_gigabytes(&self, limit: i64, used: Usage, more: i64) -> Result<()> {
        if over(limit, used.gigabytes.saturating_add(more)) {
            return Err(Error::OverQuota {
                class: "VolumeSizeExceedsAvailableQuota",
                message: format!(
                    "Requested volume or snapshot exceeds allowed gigabytes quota. Requested {more}G, quota is {limit}G and {}G has been consumed.",
                    used.gigabytes
                ),
            });
        }
        Ok(())
    }

    /// A project's quotas with their usage: the project's own members and admins may look.
    pub async fn quota_usage(
        &self,
        caller: &Caller,
        project: &str,
    ) -> Result<BTreeMap<&'static str, QuotaUsage>> {
        if !caller.owns(project) {
            return Err(Error::Policy("volume_extension:quotas:show".into()));
        }
        let limits = self.limits_of(&self.pool, project).await?;
        let mut conn = self.pool.acquire().await?;
        let used = store::usage_on(&mut conn, project).await?;
        Ok(limits
            .into_iter()
            .map(|(resource, limit)| {
                (
                    resource,
                    QuotaUsage {
                        limit,
                        in_use: in_use(used, resource),
                    },
                )
            })
            .collect())
    }

    pub fn default_quotas(&self) -> BTreeMap<&'static str, i64> {
        QUOTA_RESOURCES
            .into_iter()
            .map(|r| (r, self.config.default_quota(r).unwrap_or(-1)))
            .collect()
    }

    /// Sets limits (admins only); none may fall below what the project holds.
    pub async fn update_quotas(
        &self,
        caller: &Caller,
        project: &str,
        limits: BTreeMap<String, i64>,
    ) -> Result<BTreeMap<&'static str, i64>> {
        caller.require_admin("volume_extension:quotas:update")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let used = store::usage(&mut tx, project).await?;
        for (resource, limit) in &limits {
            let in_use = in_use(used, resource);
            if *limit >= 0 && *limit < in_use {
                return Err(Error::Invalid(format!(
                    "Quota {resource} limit must be equal or greater than existing resources. Current usage is {in_use} and the requested limit is {limit}."
                )));
            }
            store::QUOTAS
                .set(&mut *tx, project, resource, *limit)
                .await?;
        }
        let result = self.limits_of(&mut *tx, project).await?;
        tx.commit().await?;
        Ok(result)
    }

    pub async fn reset_quotas(&self, caller: &Caller, project: &str) -> Result<()> {
        caller.require_admin("volume_extension:quotas:delete")?;
        Ok(store::QUOTAS.reset(&self.pool, project).await?)
    }
}
