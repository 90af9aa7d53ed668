//! Per-project quotas: configured defaults, overridden per project by admins.

use std::collections::BTreeMap;

use onestack_db::Tx;

use crate::config::QUOTA_RESOURCES;
use crate::error::{Error, Result};
use crate::policy::Caller;
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

/// A project's limits (or its default ones), and what it uses of each resource.
pub type Limits = BTreeMap<String, i64>;

/// A project reads its own quota; admins read anyone's.
fn may_read(caller: &Caller, project_id: &str) -> Result<()> {
    if caller.owns(project_id) {
        Ok(())
    } else {
        Err(Error::Policy("rule:get_quota".into()))
    }
}

impl Networks {
    /// The effective limits of a project.
    pub(crate) async fn limits_in<'c, E>(&self, e: E, project_id: &str) -> Result<Limits>
    where
        E: sqlx::Executor<'c, Database = onestack_db::Any>,
    {
        let mut limits = self.default_limits();
        for (_, resource, limit) in store::quota_overrides(e, Some(project_id)).await? {
            limits.insert(resource, limit);
        }
        Ok(limits)
    }

    fn default_limits(&self) -> Limits {
        QUOTA_RESOURCES
            .iter()
            .filter_map(|r| Some((r.to_string(), self.config.default_quota(r)?)))
            .collect()
    }

    /// The limits of every project with limits of its own (admins only).
    pub async fn quotas(&self, caller: &Caller) -> Result<Vec<(String, Limits)>> {
        caller.require_admin("get_quota")?;
        let projects: std::collections::BTreeSet<String> = store::quota_overrides(&self.pool, None)
            .await?
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        let mut out = Vec::new();
        for project in projects {
            let limits = self.limits_in(&self.pool, &project).await?;
            out.push((project, limits));
        }
        Ok(out)
    }

    pub async fn quota(&self, caller: &Caller, project_id: &str) -> Result<Limits> {
        may_read(caller, project_id)?;
        self.limits_in(&self.pool, project_id).await
    }

    pub async fn default_quota(&self, caller: &Caller, project_id: &str) -> Result<Limits> {
        may_read(caller, project_id)?;
        Ok(self.default_limits())
    }

    /// A project's limits and what it uses of each resource.
    pub async fn quota_usage(&self, caller: &Caller, project_id: &str) -> Result<(Limits, Limits)> {
        may_read(caller, project_id)?;
        let limits = self.limits_in(&self.pool, project_id).await?;
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
        Ok((limits, used))
    }

    /// Sets some of a project's limits (admins only); returns all of them.
    pub async fn set_quota(
        &self,
        caller: &Caller,
        project_id: &str,
        limits: &[(String, i64)],
    ) -> Result<Limits> {
        caller.require_admin("update_quota")?;
        let mut tx = store::begin_write(&self.pool).await?;
        for (resource, limit) in limits {
            store::set_quota(&mut tx, project_id, resource, *limit).await?;
        }
        let all = self.limits_in(&mut *tx, project_id).await?;
        tx.commit().await?;
        Ok(all)
    }

    pub async fn reset_quota(&self, caller: &Caller, project_id: &str) -> Result<()> {
        caller.require_admin("delete_quota")?;
        store::reset_quotas(&self.pool, project_id).await
    }
}
