//! Servers as records: read, list with Nova's filters, update, delete; instance actions
//! and the lock that guards them.

use onestack_db::now_micros;

use super::create::reference;
use super::server_input::ServerUpdate;
use crate::error::{Error, Result};
use crate::model::{InstanceAction, Server};
use crate::policy::Caller;
use crate::service::Computes;
use crate::states::{self, TaskState, VmState};
use crate::store::{self, ServerFilter, Versioned};

impl Computes {
    pub(crate) async fn record_action(&self, caller: &Caller, server_id: &str, action: &str) {
        let record = self.action_record(caller, server_id, action);
        if let Err(error) = store::save_action(&self.pool, &record).await {
            tracing::warn!(%error, "cannot record instance action");
        }
    }

    /// A new instance action of `caller` on a server, started now.
    pub(crate) fn action_record(
        &self,
        caller: &Caller,
        server_id: &str,
        action: &str,
    ) -> InstanceAction {
        let now = now_micros();
        InstanceAction {
            request_id: caller.request_id.clone(),
            server_id: server_id.to_owned(),
            action: action.to_owned(),
            user_id: caller.user_id.clone(),
            project_id: caller.project_id.clone(),
            start_time: now,
            updated_at: now,
            message: None,
            events: Vec::new(),
        }
    }

    /// A server the caller may see (another project's is "not found").
    pub async fn get_server(&self, caller: &Caller, id: &str) -> Result<Versioned<Server>> {
        match store::server(&self.pool, id).await? {
            Some(s) if caller.owns(&s.doc.project_id) => Ok(s),
            _ => Err(Error::server_not_found(id)),
        }
    }

    /// The instance actions of a server the caller owns; with `deleted_too` (microversion
    /// 2.21 and later) also of one that was deleted, owned by the project that acted on it.
    pub async fn server_actions(
        &self,
        caller: &Caller,
        id: &str,
        deleted_too: bool,
    ) -> Result<Vec<InstanceAction>> {
        let live = store::server(&self.pool, id).await?;
        match live {
            Some(s) if caller.owns(&s.doc.project_id) => Ok(store::actions(&self.pool, id).await?),
            Some(_) => Err(Error::server_not_found(id)),
            None if deleted_too => {
                let actions = store::actions(&self.pool, id).await?;
                match actions.first() {
                    Some(a) if caller.owns(&a.project_id) => Ok(actions),
                    _ => Err(Error::server_not_found(id)),
                }
            }
            None => Err(Error::server_not_found(id)),
        }
    }

    pub async fn list_servers(
        &self,
        caller: &Caller,
        params: &[(String, String)],
    ) -> Result<Vec<Server>> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let all_tenants = get("all_tenants").is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "off" | "no"
            )
        });
        if all_tenants && !caller.admin {
            return Err(Error::Policy(
                "os_compute_api:servers:index:get_all_tenants".into(),
            ));
        }
        let mut filter = ServerFilter::default();
        if !(all_tenants && caller.admin) {
            filter.project_id = Some(caller.project_id.clone());
        }
        if caller.admin
            && let Some(p) = get("project_id").or_else(|| get("tenant_id"))
        {
            filter.project_id = Some(p.to_owned());
        }
        if caller.admin
            && let Some(h) = get("host").or_else(|| get("node"))
        {
            filter.host = Some(h.to_owned());
        }
        if let Some(t) = get("changes-since") {
            filter.changes_since = Some(crate::views::parse_time(t).ok_or_else(|| {
                Error::BadRequest(format!("Invalid input for query parameters changes-since. Value: {t}. It is not a valid date-time."))
            })?);
        }
        if let Some(t) = get("changes-before") {
            filter.changes_before = Some(crate::views::parse_time(t).ok_or_else(|| {
                Error::BadRequest(format!("Invalid input for query parameters changes-before. Value: {t}. It is not a valid date-time."))
            })?);
        }
        let regex = |key: &str| -> Result<Option<regex::Regex>> {
            get(key)
                .map(|p| regex::Regex::new(p).map_err(|_| Error::BadRequest(format!("Invalid input for query parameters {key}. Value: {p}. It is not a valid regular expression."))))
                .transpose()
        };
        let name = regex("name")?;
        let ip = regex("ip")?;
        let ip6 = regex("ip6")?;
        let statuses: Option<Vec<VmState>> = get("status").map(states::vm_states_for_status);
        let image = get("image").map(reference);
        let flavor = get("flavor").map(reference);
        let zone = get("availability_zone");
        let key_name = get("key_name");
        let locked = get("locked").map(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let (tags, tags_any, not_tags, not_tags_any) = (
            list("tags"),
            list("tags-any"),
            list("not-tags"),
            list("not-tags-any"),
        );
        let rows = store::servers(&self.pool, &filter).await?;
        Ok(rows
            .into_iter()
            .map(|v| v.doc)
            .filter(|s| name.as_ref().is_none_or(|r| r.is_match(&s.name)))
            .filter(|s| statuses.as_ref().is_none_or(|st| st.contains(&s.vm_state)))
            .filter(|s| image.is_none_or(|i| s.image_id == i))
            .filter(|s| flavor.is_none_or(|f| s.flavor.id == f))
            .filter(|s| zone.is_none_or(|z| s.availability_zone == z))
            .filter(|s| key_name.is_none_or(|k| s.key_name.as_deref() == Some(k)))
            .filter(|s| locked.is_none_or(|l| s.locked == l))
            .filter(|s| {
                ip.as_ref().is_none_or(|r| {
                    s.nics
                        .iter()
                        .flat_map(|n| n.ips.iter())
                        .any(|a| !a.contains(':') && r.is_match(a))
                })
            })
            .filter(|s| {
                ip6.as_ref().is_none_or(|r| {
                    s.nics
                        .iter()
                        .flat_map(|n| n.ips.iter())
                        .any(|a| a.contains(':') && r.is_match(a))
                })
            })
            .filter(|s| tags.iter().all(|t| s.tags.contains(t)))
            .filter(|s| tags_any.is_empty() || tags_any.iter().any(|t| s.tags.contains(t)))
            .filter(|s| not_tags.is_empty() || !not_tags.iter().all(|t| s.tags.contains(t)))
            .filter(|s| !not_tags_any.iter().any(|t| s.tags.contains(t)))
            .collect())
    }

    pub async fn update_server(
        &self,
        caller: &Caller,
        id: &str,
        change: ServerUpdate,
    ) -> Result<Server> {
        caller.require_writer("servers:update")?;
        let current = self.get_server(caller, id).await?;
        let mut server = current.doc;
        if let Some(name) = change.name {
            server.name = name;
        }
        if let Some(description) = change.description {
            server.description = description;
        }
        if let Some(hostname) = change.hostname {
            server.hostname = hostname;
        }
        if let Some(a) = change.access_ipv4 {
            server.access_ipv4 = a;
        }
        if let Some(a) = change.access_ipv6 {
            server.access_ipv6 = a;
        }
        self.save(server, current.revision).await
    }

    /// Writes a server changed by the API (compare-and-set: a concurrent change is a 409).
    pub(crate) async fn save(&self, mut server: Server, revision: i64) -> Result<Server> {
        server.updated_at = now_micros().max(server.updated_at);
        if store::update_server(&self.pool, &server, revision).await? {
            self.changed_on(server.host.as_deref());
            Ok(server)
        } else {
            Err(Error::Conflict(format!(
                "Instance {} was changed by another request meanwhile; retry.",
                server.id
            )))
        }
    }

    pub async fn delete_server(&self, caller: &Caller, id: &str, force: bool) -> Result<()> {
        caller.require_writer("servers:delete")?;
        let current = self.get_server(caller, id).await?;
        let server = current.doc;
        self.check_lock(caller, &server)?;
        // A delete accepted before its host went down is carried out here too.
        let host_down = self.host_is_down(server.host.as_deref()).await?;
        if server.task_state == Some(TaskState::Deleting) && !force && !host_down {
            return Ok(());
        }
        if server.host.is_none() || host_down {
            self.record_action(caller, id, "delete").await;
            // Never placed, or on a host that is down (Nova's local delete): nothing there
            // will carry the delete out. A down host's agent removes the guest when it is
            // back (a guest without a server is removed by its first pass).
            if let Some(image) = &server.pending_image {
                // A snapshot that never ran leaves no queued image behind.
                let _ = self.images.discard(image).await;
            }
            return self.purge(&server).await;
        }
        // The agent may be recording a finished task at this moment: a delete wins over
        // it, so re-read and retry rather than answer 409.
        // Deletes racing each other: the one that marks the server records the action, the
        // others find it being deleted and answer as Nova does for a repeated delete.
        let mut record = (server, current.revision);
        for _ in 0..10 {
            let (mut server, revision) = record;
            server.task_state = Some(TaskState::Deleting);
            server.updated_at = now_micros().max(server.updated_at);
            if store::update_server(&self.pool, &server, revision).await? {
                self.record_action(caller, id, "delete").await;
                self.changed_on(server.host.as_deref());
                return Ok(());
            }
            let fresh = self.get_server(caller, id).await?;
            if fresh.doc.task_state == Some(TaskState::Deleting) && !force {
                return Ok(());
            }
            record = (fresh.doc, fresh.revision);
        }
        Err(Error::Conflict(format!(
            "Instance {id} is changing too often to delete; retry."
        )))
    }

    /// Whether the server's host is down (or gone): it has not reported within
    /// `service_down_time`, or an admin forced it down.
    pub(crate) async fn host_is_down(&self, host: Option<&str>) -> Result<bool> {
        let Some(host) = host else {
            return Ok(false);
        };
        let liveness = self.config.liveness(now_micros());
        Ok(store::host(&self.pool, host)
            .await?
            .is_none_or(|h| !liveness.is_up(&h)))
    }

    pub(crate) async fn remove_from_group(&self, server: &Server) -> Result<()> {
        if let Some(gid) = &server.server_group
            && let Some(mut g) = store::group(&self.pool, gid).await?
        {
            g.members.retain(|m| m != &server.id);
            store::save_group(&self.pool, &g).await?;
        }
        Ok(())
    }

    /// Locked servers refuse changes from anyone but admins (Nova's `InstanceIsLocked`).
    pub(crate) fn check_lock(&self, caller: &Caller, server: &Server) -> Result<()> {
        if server.locked && !caller.admin {
            return Err(Error::Conflict(format!("Instance {} is locked", server.id)));
        }
        Ok(())
    }

    /// Changes a server's own record (metadata, tags, name) with `change`, keeping its
    /// metadata within the project's quota.
    pub async fn change_server(
        &self,
        caller: &Caller,
        id: &str,
        change: impl FnOnce(&mut Server) -> Result<()>,
    ) -> Result<Server> {
        caller.require_writer("server-metadata:update")?;
        let current = self.get_server(caller, id).await?;
        let mut server = current.doc;
        self.check_lock(caller, &server)?;
        change(&mut server)?;
        let limit = self
            .quota_limits(&self.pool, &server.project_id)
            .await?
            .get("metadata_items")
            .copied()
            .unwrap_or(-1);
        self.metadata_limit_check(&server.metadata, limit)?;
        self.save(server, current.revision).await
    }
}
