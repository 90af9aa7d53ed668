//! Server groups: affinity and anti-affinity (and their soft variants) that the scheduler
//! honours for the servers booted into them.

use std::collections::BTreeMap;

use onestack_api::Fields;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::microversion::Version;
use crate::model::ServerGroup;
use crate::policy::Caller;
use crate::service::{Computes, new_id};
use crate::store;

const POLICIES: &[&str] = &[
    "affinity",
    "anti-affinity",
    "soft-affinity",
    "soft-anti-affinity",
];

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

    pub async fn create_group(
        &self,
        caller: &Caller,
        version: Version,
        mut f: Fields,
    ) -> Result<ServerGroup> {
        caller.require_writer("os-server-groups:create")?;
        let name = f.string("name", 255).map_err(Error::from)?;
        super::check_name(&name, "Server group")?;
        let (policy, rules) = if version.at_least(64) {
            let policy = f.opt_string("policy")?.ok_or_else(|| {
                Error::BadRequest("Invalid input for field/attribute server_group. 'policy' is a required property".into())
            })?;
            let rules: BTreeMap<String, i64> = match f.take("rules") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(Value::Object(m)) => m
                    .into_iter()
                    .map(|(k, v)| match (k.as_str(), v.as_i64()) {
                        ("max_server_per_host", Some(n)) if n >= 1 && policy == "anti-affinity" => {
                            Ok((k, n))
                        }
                        _ => Err(Error::BadRequest(format!(
                            "Invalid input for field/attribute rules: {k}."
                        ))),
                    })
                    .collect::<Result<_>>()?,
                Some(_) => {
                    return Err(Error::BadRequest(
                        "Invalid input for field/attribute rules.".into(),
                    ));
                }
            };
            (policy, rules)
        } else {
            let policies = f.opt_string_list("policies", 255)?.unwrap_or_default();
            match policies.as_slice() {
                [one] => (one.clone(), BTreeMap::new()),
                _ => return Err(Error::BadRequest(
                    "Invalid input for field/attribute policies: exactly one policy is required."
                        .into(),
                )),
            }
        };
        if !POLICIES.contains(&policy.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute policy. Value: {policy}."
            )));
        }
        f.deny_unknown()?;
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
            name,
            project_id: caller.project_id.clone(),
            user_id: caller.user_id.clone(),
            policy,
            rules,
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
