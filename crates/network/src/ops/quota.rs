//! Per-project quotas: configured defaults, overridden per project by admins.

use std::collections::BTreeMap;

use onestack_db::Tx;

use crate::config::QUOTA_RESOURCES;
use crate::error::{Error, Result};
use crate::service::Networks;
use crate::store::{self, Table};

/// Fails with `OverQuota` when the project already has its limit of `resource`.
pub async fn check(
    networks: &Networks,
    tx: &mut Tx,
    project_id: &str,
    resource: &'static str,
    table: Table,
) -> Result<()> {
    let limit = networks.limits_in(&mut **tx, project_id).await?;
    let limit = limit.get(resource).copied().unwrap_or(-1);
    if limit >= 0 && store::count(tx, table, project_id).await? >= limit {
        return Err(Error::OverQuota(resource));
    }
    Ok(())
}

impl Networks {
    /// The effective limits of a project.
    pub async fn limits_in<'c, E>(&self, e: E, project_id: &str) -> Result<BTreeMap<String, i64>>
    where
        E: sqlx::Executor<'c, Database = onestack_db::Any>,
    {
        let mut limits: BTreeMap<String, i64> = QUOTA_RESOURCES
            .iter()
            .filter_map(|r| Some((r.to_string(), self.config.default_quota(r)?)))
            .collect();
        for (_, resource, limit) in store::quota_overrides(e, Some(project_id)).await? {
            limits.insert(resource, limit);
        }
        Ok(limits)
    }

    pub fn default_limits(&self) -> BTreeMap<String, i64> {
        QUOTA_RESOURCES
            .iter()
            .filter_map(|r| Some((r.to_string(), self.config.default_quota(r)?)))
            .collect()
    }

    /// Projects with limits of their own.
    pub async fn projects_with_quotas(&self) -> Result<Vec<String>> {
        let projects: std::collections::BTreeSet<String> = store::quota_overrides(&self.pool, None)
            .await?
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        Ok(projects.into_iter().collect())
    }

    /// What a project uses of each resource.
    pub async fn usage(&self, project_id: &str) -> Result<BTreeMap<String, i64>> {
        let mut tx = self.pool.begin().await?;
        let mut used = BTreeMap::new();
        for (resource, table) in [
            ("network", Table::Networks),
            ("subnet", Table::Subnets),
            ("port", Table::Ports),
            ("security_group", Table::SecurityGroups),
            ("security_group_rule", Table::Rules),
            ("router", Table::Routers),
            ("floatingip", Table::FloatingIps),
        ] {
            used.insert(
                resource.to_string(),
                store::count(&mut tx, table, project_id).await?,
            );
        }
        tx.commit().await?;
        Ok(used)
    }

    pub async fn set_limits(&self, project_id: &str, limits: &[(String, i64)]) -> Result<()> {
        let mut tx = store::begin_write(&self.pool).await?;
        for (resource, limit) in limits {
            store::set_quota(&mut tx, project_id, resource, *limit).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn reset_limits(&self, project_id: &str) -> Result<()> {
        store::reset_quotas(&self.pool, project_id).await
    }
}
