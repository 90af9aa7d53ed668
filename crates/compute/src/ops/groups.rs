//! Server groups: affinity and anti-affinity (and their soft variants) that the scheduler
//! honours for the servers booted into them.

use super::resource_input::NewServerGroup;
use crate::error::{Error, Result};
use crate::model::ServerGroup;
use crate::policy::Caller;
use crate::service::{Computes, new_id};
use crate::store;

impl Computes {
    pub async fn list_groups(
        &self,
        caller: &Caller,
        all_projects: bool,
    ) -> Result<Vec<ServerGroup>> {
        if all_projects && caller.admin {
            store::groups(&self.pool, None).await
        } else {
            store::groups(&self.pool, Some(&caller.project_id)).await
        }
    }

    pub async fn get_group(&self, caller: &Caller, id: &str) -> Result<ServerGroup> {
        store::group(&self.pool, id)
            .await?
            .filter(|g| caller.owns(&g.project_id))
            .ok_or_else(|| Error::NotFound(format!("Instance group {id} could not be found.")))
    }

    pub async fn create_group(&self, caller: &Caller, new: NewServerGroup) -> Result<ServerGroup> {
        caller.require_writer("os-server-groups:create")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let limit = self
            .quota_limits(&mut *tx, &caller.project_id)
            .await?
            .get("server_groups")
            .copied()
            .unwrap_or(-1);
        if limit >= 0 && store::count_groups(&mut tx, &caller.project_id).await? >= limit {
            return Err(Error::Forbidden(
                "Quota exceeded, too many server groups.".into(),
            ));
        }
        let group = ServerGroup {
            id: new_id(),
            name: new.name,
            project_id: caller.project_id.clone(),
            user_id: caller.user_id.clone(),
            policy: new.policy,
            rules: new.rules,
            members: Vec::new(),
        };
        store::save_group(&mut *tx, &group).await?;
        tx.commit().await?;
        Ok(group)
    }

    pub async fn delete_group(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_writer("os-server-groups:delete")?;
        let group = self.get_group(caller, id).await?;
        store::delete_group(&self.pool, &group.id).await
    }
}
