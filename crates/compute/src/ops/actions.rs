//! Server actions (`POST /servers/{id}/action`, read into a `ServerAction` by
//! `api::action_body`): each checks the state Nova requires, then records the task for the
//! host agent, or — for those that touch only records — does it.

use std::collections::BTreeMap;

use onestack_api::AuthContext;
use onestack_db::now_micros;
use onestack_image::Snapshot;
use onestack_network::ops::port_input::PortUpdate;
use serde_json::{Value, json};

use super::action_input::{RebuildRequest, ServerAction};
use super::create::reference;
use crate::error::{Error, Result};
use crate::microversion::Version;
use crate::model::{FlavorCopy, Server};
use crate::policy::Caller;
use crate::scheduler;
use crate::service::Computes;
use crate::states::{self, TaskState, VmState};
use crate::store;

/// What an action answers besides 202.
pub enum Outcome {
    Accepted,
    /// 200 with no body (evacuate from 2.14).
    Ok,
    /// 204: done at once (confirmResize).
    NoContent,
    Body(Value),
    /// createImage before 2.45: the image's URL in `Location`.
    Location(String, Value),
}

const RUNNING_OR_STOPPED: &[VmState] = &[VmState::Active, VmState::Stopped];

/// Tries of an action whose server changed under it (its host reporting work done).
const ACTION_TRIES: usize = 5;

impl Computes {
    /// Carries out `action`, from a fresh read of the server again when the server changed
    /// between the read and the write (its host's bookkeeping must not fail a request).
    /// `createImage` is not tried again: it has made its image before the write.
    pub async fn server_action(
        &self,
        ctx: &AuthContext,
        caller: &Caller,
        version: Version,
        id: &str,
        action: ServerAction,
    ) -> Result<Outcome> {
        let retryable = !matches!(action, ServerAction::CreateImage { .. });
        let mut tries = 1;
        loop {
            match self
                .try_server_action(ctx, caller, version, id, action.clone())
                .await
            {
                Err(Error::Stale(_)) if retryable && tries < ACTION_TRIES => tries += 1,
                outcome => return outcome,
            }
        }
    }

    async fn try_server_action(
        &self,
        ctx: &AuthContext,
        caller: &Caller,
        version: Version,
        id: &str,
        action: ServerAction,
    ) -> Result<Outcome> {
        let current = self.get_server(caller, id).await?;
        let revision = current.revision;
        let mut server = current.doc;
        let name = action.name().to_owned();
        caller.require_writer(&format!("servers:{name}"))?;
        // Admin-only actions are refused to others before a lock is looked at (Nova's order).
        match &action {
            ServerAction::Migrate { .. } => caller.require_admin("os-migrate-server:migrate")?,
            ServerAction::MigrateLive { .. } => {
                caller.require_admin("os-migrate-server:migrate_live")?
            }
            ServerAction::Evacuate { .. } => caller.require_admin("os-evacuate")?,
            _ => {}
        }
        if !matches!(
            action,
            ServerAction::Unlock | ServerAction::Lock { .. } | ServerAction::ConsoleOutput { .. }
        ) {
            self.check_lock(caller, &server)?;
        }
        let simple =
            |server: &mut Server, name: &str, states: &[VmState], next: TaskState| -> Result<()> {
                states::check(server, name, states, None)?;
                server.task_state = Some(next);
                Ok(())
            };
        let mut outcome = Outcome::Accepted;
        let mut record = name.clone();
        let resize = matches!(action, ServerAction::Resize { .. });
        let mut evacuate_to = None;
        let mut migrate_to = None;
        let mut live_to = None;
        // A cold migration's confirm or revert: who to wake, and what to tidy, afterwards.
        let mut settled_migration = None;
        match action {
            ServerAction::Stop => {
                simple(
                    &mut server,
                    "stop",
                    &[VmState::Active, VmState::Rescued, VmState::Error],
                    TaskState::PoweringOff,
                )?;
                record = "stop".into();
            }
            ServerAction::Start => {
                simple(
                    &mut server,
                    "start",
                    &[VmState::Stopped],
                    TaskState::PoweringOn,
                )?;
                record = "start".into();
            }
            ServerAction::Reboot { hard: false } => simple(
                &mut server,
                "reboot",
                &[VmState::Active],
                TaskState::Rebooting,
            )?,
            ServerAction::Reboot { hard: true } => {
                states::check(
                    &server,
                    "reboot",
                    &[
                        VmState::Active,
                        VmState::Stopped,
                        VmState::Paused,
                        VmState::Suspended,
                        VmState::Error,
                    ],
                    Some(&[TaskState::Rebooting, TaskState::RebootingHard]),
                )?;
                server.task_state = Some(TaskState::RebootingHard);
            }
            ServerAction::Pause => {
                simple(&mut server, "pause", &[VmState::Active], TaskState::Pausing)?
            }
            ServerAction::Unpause => simple(
                &mut server,
                "unpause",
                &[VmState::Paused],
                TaskState::Unpausing,
            )?,
            ServerAction::Suspend => simple(
                &mut server,
                "suspend",
                &[VmState::Active],
                TaskState::Suspending,
            )?,
            ServerAction::Resume => simple(
                &mut server,
                "resume",
                &[VmState::Suspended],
                TaskState::Resuming,
            )?,
            ServerAction::Lock { reason } => {
                if server.locked_by.as_deref() == Some("admin") && !caller.admin {
                    return Err(Error::Policy("os_compute_api:os-lock-server:lock".into()));
                }
                server.locked = true;
                server.locked_reason = reason;
                server.locked_by = Some(if caller.admin { "admin" } else { "owner" }.into());
            }
            ServerAction::Unlock => {
                // An admin's lock is the admin's to lift (Nova's `unlock:unlock_override`).
                if server.locked_by.as_deref() == Some("admin") && !caller.admin {
                    return Err(Error::Policy(
                        "os_compute_api:os-lock-server:unlock:unlock_override".into(),
                    ));
                }
                server.locked = false;
                server.locked_by = None;
                server.locked_reason = None;
            }
            ServerAction::Rescue {
                image_ref,
                admin_pass,
            } => {
                states::check(
                    &server,
                    "rescue",
                    &[VmState::Active, VmState::Stopped, VmState::Error],
                    None,
                )?;
                let image = self.rescue_image(ctx, version, &server, image_ref).await?;
                let password = admin_pass.unwrap_or_else(super::create::admin_password);
                server.pending_image = Some(image);
                server.previous_vm_state = Some(server.vm_state);
                server.task_state = Some(TaskState::Rescuing);
                outcome = Outcome::Body(json!({"adminPass": password}));
            }
            ServerAction::Unrescue => simple(
                &mut server,
                "unrescue",
                &[VmState::Rescued],
                TaskState::Unrescuing,
            )?,
            ServerAction::Resize { flavor_ref } => {
                self.resize(caller, &mut server, &flavor_ref).await?
            }
            ServerAction::ConfirmResize => {
                states::check(&server, "confirmResize", &[VmState::Resized], None)?;
                server.old_flavor = None;
                server.vm_state = server.previous_vm_state.take().unwrap_or(VmState::Active);
                // The host it left removes its copy on its next pass.
                settled_migration = server.migration.take();
                outcome = Outcome::NoContent;
            }
            ServerAction::RevertResize => {
                simple(
                    &mut server,
                    "revertResize",
                    &[VmState::Resized],
                    TaskState::ResizeReverting,
                )?;
                if let Some(migration) = &server.migration {
                    // Back to the host it left, which restarts the copy it kept; the host
                    // it moved to removes its own once the server is gone from its list.
                    server.host = Some(migration.source.clone());
                    settled_migration = Some(migration.clone());
                }
            }
            ServerAction::Migrate { host } => {
                states::check(
                    &server,
                    "migrate",
                    &[VmState::Active, VmState::Stopped],
                    None,
                )?;
                server.previous_vm_state = Some(server.vm_state);
                server.task_state = Some(TaskState::ResizeMigrating);
                migrate_to = Some(host);
            }
            ServerAction::MigrateLive { host } => {
                states::check(
                    &server,
                    "os-migrateLive",
                    &[VmState::Active, VmState::Paused],
                    None,
                )?;
                server.task_state = Some(TaskState::Migrating);
                live_to = Some(host);
            }
            ServerAction::Rebuild(request) => {
                let body = self.rebuild(ctx, caller, &mut server, request).await?;
                outcome = Outcome::Body(body);
            }
            ServerAction::CreateImage {
                name: image_name,
                metadata,
            } => {
                states::check(
                    &server,
                    "createImage",
                    &[
                        VmState::Active,
                        VmState::Stopped,
                        VmState::Paused,
                        VmState::Suspended,
                    ],
                    None,
                )?;
                let volume_backed = server.volume_backed();
                let image_id = if volume_backed {
                    self.snapshot_volume_backed(caller, &server, image_name, metadata)
                        .await?
                } else {
                    self.announce_snapshot(&server, image_name, metadata)
                        .await?
                };
                let answer = if version.at_least(45) {
                    Outcome::Body(json!({"image_id": image_id}))
                } else {
                    Outcome::Location(image_id.clone(), Value::Null)
                };
                if volume_backed {
                    // Done once the volumes' snapshots are asked for: the server itself is
                    // not changed (its host copies the volumes in the attachments' queue).
                    self.record_action(caller, id, &record).await;
                    return Ok(answer);
                }
                server.pending_image = Some(image_id);
                server.task_state = Some(TaskState::ImageSnapshot);
                outcome = answer;
            }
            ServerAction::ConsoleOutput { lines } => {
                if server.vm_state == VmState::Building {
                    return Err(Error::Conflict(format!(
                        "Instance {id} has not finished building yet."
                    )));
                }
                let output = self.console_output(&server, lines).await?;
                return Ok(Outcome::Body(json!({"output": output})));
            }
            ServerAction::AddSecurityGroup { name: group } => {
                self.change_security_group(caller, &mut server, &group, true)
                    .await?;
            }
            ServerAction::RemoveSecurityGroup { name: group } => {
                self.change_security_group(caller, &mut server, &group, false)
                    .await?;
            }
            ServerAction::ForceDelete => {
                self.delete_server(caller, id, true).await?;
                return Ok(Outcome::Accepted);
            }
            ServerAction::ResetState { state } => {
                caller.require_admin("admin_actions:reset_state")?;
                server.vm_state = state;
                server.task_state = None;
                // It ends any move: the server stays where it is placed, its ports bound
                // there; the other host lets go of it and of its room.
                settled_migration = server.migration.take();
            }
            ServerAction::Evacuate { host, admin_pass } => {
                states::check(
                    &server,
                    "evacuate",
                    &[VmState::Active, VmState::Stopped, VmState::Error],
                    None,
                )?;
                // It comes up as it was (Nova's 2.95, stopped, is beyond this API's versions).
                server.previous_vm_state = Some(server.vm_state);
                server.task_state = Some(TaskState::Rebuilding);
                evacuate_to = Some(host);
                let password = admin_pass.unwrap_or_else(super::create::admin_password);
                outcome = if version.at_least(14) {
                    Outcome::Ok
                } else {
                    Outcome::Body(json!({"adminPass": password}))
                };
            }
            ServerAction::Unknown(other) => {
                return Err(Error::BadRequest(format!(
                    "There is no such action: {other}"
                )));
            }
        }
        if server.task_state.is_some() {
            if server.host.is_none() {
                // Never placed: no host will ever carry the task out.
                return Err(Error::wrong_state(
                    &record,
                    id,
                    "vm_state",
                    server.vm_state.as_str(),
                ));
            }
            server.fault = None;
        }
        if resize {
            self.save_resize(caller, server, revision).await?;
            return Ok(outcome);
        }
        if let Some(target) = evacuate_to {
            self.save_evacuation(caller, server, revision, target.as_deref())
                .await?;
            return Ok(outcome);
        }
        if let Some(target) = live_to {
            self.save_live_migration(caller, server, revision, target.as_deref())
                .await?;
            return Ok(outcome);
        }
        if let Some(target) = migrate_to {
            self.save_migration(caller, server, revision, target.as_deref())
                .await?;
            return Ok(outcome);
        }
        let (nics, host) = (server.nics.clone(), server.host.clone().unwrap_or_default());
        self.save_with_action(caller, server, revision, &record)
            .await?;
        if let Some(migration) = settled_migration {
            self.settled(id, &migration, &nics, &host).await;
        }
        Ok(outcome)
    }

    /// Writes the server if it is still at `revision`, with the action's record in the same
    /// transaction: the commit wakes the agent, whose event belongs to the action, and a
    /// write that loses to another leaves no record behind.
    async fn save_with_action(
        &self,
        caller: &Caller,
        server: Server,
        revision: i64,
        record: &str,
    ) -> Result<()> {
        let tx = store::begin_write(&self.pool).await?;
        self.commit_with_action(tx, caller, server, revision, record)
            .await
    }

    /// The end of [`Self::save_with_action`], for a write transaction that checked more first.
    pub(super) async fn commit_with_action(
        &self,
        mut tx: onestack_db::Tx,
        caller: &Caller,
        mut server: Server,
        revision: i64,
        record: &str,
    ) -> Result<()> {
        store::save_action(&mut *tx, &self.action_record(caller, &server.id, record)).await?;
        server.updated_at = now_micros().max(server.updated_at);
        if !store::update_server(&mut *tx, &server, revision).await? {
            return Err(stale(&server.id));
        }
        tx.commit().await?;
        self.changed_on(server.host.as_deref());
        Ok(())
    }

    /// Records a resize whose new flavor is in `server.flavor` (the old one in
    /// `old_flavor`): the project's quota and the host's room for the larger flavor are
    /// checked, and the action and the server written, in one write transaction, so that
    /// concurrent resizes and boots never share the last of a quota or a host.
    async fn save_resize(&self, caller: &Caller, server: Server, revision: i64) -> Result<()> {
        let (Some(old), new) = (server.old_flavor.clone(), server.flavor.clone()) else {
            return Err(Error::Internal("a resize without the old flavor".into()));
        };
        let mut tx = store::begin_write(&self.pool).await?;
        let extra_cores = i64::from(new.vcpus) - i64::from(old.vcpus);
        let extra_ram = new.ram as i64 - old.ram as i64;
        if extra_cores > 0 || extra_ram > 0 {
            self.check_server_quota(&mut tx, &server.project_id, 0, 0, 0)
                .await?;
            let limits = self.quota_limits(&mut *tx, &server.project_id).await?;
            let (_, cores, ram) = store::project_usage(&mut tx, &server.project_id).await?;
            for (resource, used, extra) in [("cores", cores, extra_cores), ("ram", ram, extra_ram)]
            {
                let limit = limits.get(resource).copied().unwrap_or(-1);
                if extra > 0 && limit >= 0 && used + extra > limit {
                    return Err(Error::OverQuota {
                        resource,
                        requested: extra,
                        used,
                        limit,
                    });
                }
            }
        }
        // The new flavor must fit on the server's host next to everything else there.
        let hosts = store::hosts(&mut *tx).await?;
        let usage = store::host_usage(&mut *tx).await?;
        let fits = server
            .host
            .as_ref()
            .and_then(|h| hosts.iter().find(|x| &x.host == h))
            .is_some_and(|h| {
                let (cpu, ram, disk) = scheduler::free(h, &usage);
                cpu + f64::from(old.vcpus) >= f64::from(new.vcpus)
                    && ram + old.ram as f64 >= new.ram as f64
                    && disk + server.local_disk_gb(&old) as f64 >= server.local_disk_gb(&new) as f64
            });
        if !fits {
            return Err(Error::BadRequest(format!(
                "{} The host has no room for flavor {}.",
                scheduler::NO_VALID_HOST,
                new.name
            )));
        }
        self.commit_with_action(tx, caller, server, revision, "resize")
            .await
    }

    async fn resize(&self, caller: &Caller, server: &mut Server, flavor_ref: &str) -> Result<()> {
        states::check(server, "resize", RUNNING_OR_STOPPED, None)?;
        let flavor = self
            .visible_flavor(caller, reference(flavor_ref))
            .await
            .map_err(|_| Error::BadRequest(format!("Flavor {flavor_ref} could not be found.")))?;
        if flavor.id == server.flavor.id {
            return Err(Error::BadRequest(
                "When resizing, instances must change flavor!".into(),
            ));
        }
        // A root volume's size is the block storage service's: the flavor's disk is moot.
        let volume_backed = server.volume_backed();
        if !volume_backed && flavor.disk == 0 && server.flavor.disk != 0 {
            return Err(Error::BadRequest(
                "Resize to zero disk flavor is not allowed.".into(),
            ));
        }
        if !volume_backed && flavor.disk < server.flavor.disk {
            return Err(Error::BadRequest(
                "Resize error: Unable to resize disk down.".into(),
            ));
        }
        let new = FlavorCopy::from(&flavor);
        server.previous_vm_state = Some(server.vm_state);
        server.old_flavor = Some(std::mem::replace(&mut server.flavor, new));
        server.task_state = Some(TaskState::ResizePrep);
        Ok(())
    }

    async fn rebuild(
        &self,
        ctx: &AuthContext,
        caller: &Caller,
        server: &mut Server,
        request: RebuildRequest,
    ) -> Result<Value> {
        states::check(
            server,
            "rebuild",
            &[VmState::Active, VmState::Stopped, VmState::Error],
            None,
        )?;
        let image_ref = &request.image_ref;
        let image = self
            .images
            .find(ctx, reference(image_ref))
            .await
            .map_err(|_| Error::BadRequest(format!("Image {image_ref} could not be found.")))?;
        let root_volume = server.volumes.iter().find(|v| v.is_root()).cloned();
        if let Some(root) = &root_volume {
            // Before 2.93 Nova rebuilds such a server only with the image its boot volume
            // was made from, and leaves the volume as it is.
            let volume = self.volumes.get_volume(caller, &root.volume_id).await?;
            if volume.image_metadata.get("image_id") != Some(&image.id) {
                return Err(Error::BadRequest(format!(
                    "Image {} is unacceptable: Unable to rebuild with a different image for a volume-backed server.",
                    image.id
                )));
            }
        }
        let size = image.virtual_size.or(image.size).unwrap_or(0);
        if root_volume.is_none()
            && server.flavor.disk > 0
            && size > (server.flavor.disk as i64) << 30
        {
            return Err(Error::BadRequest(
                "Flavor's disk is too small for requested image.".into(),
            ));
        }
        if let Some(name) = request.name {
            server.name = name;
        }
        if let Some(metadata) = request.metadata {
            server.metadata = metadata;
        }
        if let Some(user_data) = request.user_data {
            server.user_data = user_data;
        }
        match request.key_name {
            Some(Some(k)) => {
                let pair = store::keypair(&self.pool, &caller.user_id, &k)
                    .await?
                    .ok_or_else(|| Error::BadRequest("Invalid key_name provided.".into()))?;
                server.key_name = Some(pair.name);
                server.key_data = Some(pair.public_key);
            }
            Some(None) => {
                server.key_name = None;
                server.key_data = None;
            }
            None => {}
        }
        if let Some(description) = request.description {
            server.description = description;
        }
        if let Some(hostname) = request.hostname {
            server.hostname = hostname;
        }
        let password = request
            .admin_pass
            .unwrap_or_else(super::create::admin_password);
        if root_volume.is_none() {
            server.image_id = image.id.clone();
        }
        server.pending_image = Some(image.id);
        server.previous_vm_state = Some(server.vm_state);
        server.task_state = Some(TaskState::Rebuilding);
        Ok(json!({"adminPass": password}))
    }

    /// The image a rescue boots: the one asked for, or the server's own. A server that
    /// boots from a volume is rescued only as Nova does from 2.87, with an image that asks
    /// for stable device rescue (its own disks keep their places).
    async fn rescue_image(
        &self,
        ctx: &AuthContext,
        version: Version,
        server: &Server,
        image_ref: Option<String>,
    ) -> Result<String> {
        let wanted = image_ref.clone().unwrap_or_else(|| server.image_id.clone());
        let volume_backed = server.volume_backed();
        let not_rescuable = || {
            Error::BadRequest(format!(
                "Instance {} cannot be rescued: Cannot rescue a volume-backed instance",
                server.id
            ))
        };
        if wanted.is_empty() {
            return Err(not_rescuable());
        }
        let image = self
            .images
            .find(ctx, reference(&wanted))
            .await
            .map_err(|_| {
                Error::BadRequest(format!(
                    "Requested rescue image '{wanted}' is not supported"
                ))
            })?;
        if image_ref.is_some() && image.properties.contains_key("block_device_mapping") {
            // Nova cannot rescue from a snapshot of a server that boots from volumes.
            return Err(Error::BadRequest(format!(
                "Requested rescue image '{wanted}' is not supported"
            )));
        }
        if volume_backed && !(version.at_least(87) && asks_stable_rescue(&image)) {
            return Err(not_rescuable());
        }
        Ok(image.id)
    }

    /// Records the snapshot's image (queued) so clients can follow it; the agent fills it.
    async fn announce_snapshot(
        &self,
        server: &Server,
        name: String,
        metadata: BTreeMap<String, String>,
    ) -> Result<String> {
        let mut properties: serde_json::Map<String, Value> = metadata
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        properties.insert("image_type".into(), json!("snapshot"));
        properties.insert("instance_uuid".into(), json!(server.id));
        properties.insert("base_image_ref".into(), json!(server.image_id));
        properties.insert("user_id".into(), json!(server.user_id));
        let snapshot = Snapshot {
            name,
            owner: server.project_id.clone(),
            min_disk: server.flavor.disk as i64,
            properties,
        };
        Ok(self.images.create_snapshot(snapshot).await?)
    }

    async fn change_security_group(
        &self,
        caller: &Caller,
        server: &mut Server,
        name: &str,
        add: bool,
    ) -> Result<()> {
        let groups = self.networks.list_groups(caller).await?;
        let group = groups
            .iter()
            .map(|(g, _)| g)
            .filter(|g| g.project_id == server.project_id || (caller.admin && g.id == name))
            .find(|g| g.name == name || g.id == name)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "Security group {name} not found for project {}.",
                    server.project_id
                ))
            })?;
        if add && server.security_groups.contains(&group.name) {
            return Err(Error::BadRequest(format!(
                "Security group {name} is already associated with the instance {}",
                server.id
            )));
        }
        if !add && !server.security_groups.contains(&group.name) {
            return Err(Error::BadRequest(format!(
                "Security group {name} not associated with the instance {}",
                server.id
            )));
        }
        for nic in &server.nics {
            let port = self.networks.get_port(caller, &nic.port_id).await?;
            let mut ids = port.security_groups.clone();
            if add {
                if !ids.contains(&group.id) {
                    ids.push(group.id.clone());
                }
            } else {
                ids.retain(|g| g != &group.id);
            }
            let change = PortUpdate {
                security_groups: Some(ids),
                ..PortUpdate::default()
            };
            self.networks
                .update_port(caller, &nic.port_id, change)
                .await?;
        }
        if add {
            server.security_groups.push(group.name.clone());
        } else {
            server.security_groups.retain(|g| g != &group.name);
        }
        Ok(())
    }

    pub fn metadata_limit_check(
        &self,
        metadata: &BTreeMap<String, String>,
        limit: i64,
    ) -> Result<()> {
        if limit >= 0 && metadata.len() as i64 > limit {
            return Err(Error::Forbidden(format!(
                "Quota exceeded for metadata_items: Requested {}, but already used 0 of {limit} metadata_items",
                metadata.len()
            )));
        }
        Ok(())
    }
}

/// Whether a rescue image asks for Nova's stable device rescue: it names the bus and the
/// device type of the rescue disk, which is then attached last instead of first.
pub fn asks_stable_rescue(image: &onestack_image::model::Image) -> bool {
    ["hw_rescue_bus", "hw_rescue_device"]
        .iter()
        .all(|k| image.properties.contains_key(*k))
}

fn stale(id: &str) -> Error {
    Error::Stale(format!(
        "Instance {id} was changed by another request meanwhile; retry."
    ))
}
