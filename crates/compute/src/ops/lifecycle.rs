//! What a host agent reads and writes: the servers placed on it, and the outcome of the
//! work it carried out (compare-and-set, so an API change made meanwhile is never lost).

use onestack_db::now_micros;

use crate::error::{Error, Result};
use crate::model::{ActionEvent, Server};
use crate::service::Computes;
use crate::states::TaskState;
use crate::store::{self, ServerFilter, Versioned};

impl Computes {
    pub async fn servers_on_host(&self, host: &str) -> Result<Vec<Versioned<Server>>> {
        store::servers(
            &self.pool,
            &ServerFilter {
                kept_on: Some(host.to_owned()),
                ..ServerFilter::default()
            },
        )
        .await
    }

    pub async fn server_record(&self, id: &str) -> Result<Option<Versioned<Server>>> {
        store::server(&self.pool, id).await
    }

    /// Applies `change` to the server as read at `revision`; `false` if it changed
    /// meanwhile (the agent re-reads it next pass).
    pub async fn finish(&self, mut server: Server, revision: i64) -> Result<bool> {
        server.updated_at = now_micros().max(server.updated_at);
        store::update_server(&self.pool, &server, revision).await
    }

    /// The request id of the server's latest action: the one a task starting now carries
    /// out (no action is accepted while a task runs).
    pub async fn latest_action(&self, server_id: &str) -> Option<String> {
        match store::actions(&self.pool, server_id).await {
            Ok(actions) => actions.first().map(|a| a.request_id.clone()),
            Err(error) => {
                tracing::warn!(%error, "cannot read the server's instance actions");
                None
            }
        }
    }

    /// Appends an event with its result to the action `request_id` of the server (taken
    /// when its task started: by the time the task ends the user may have asked for more).
    pub async fn record_event(
        &self,
        host: &str,
        server_id: &str,
        request_id: &str,
        event: &str,
        started: i64,
        ok: bool,
    ) {
        let result = async {
            let mut actions = store::actions(&self.pool, server_id).await?;
            if let Some(action) = actions.iter_mut().find(|a| a.request_id == request_id) {
                let now = now_micros();
                action.events.push(ActionEvent {
                    event: event.to_owned(),
                    start_time: started,
                    finish_time: Some(now),
                    result: Some(if ok { "Success" } else { "Error" }.into()),
                    host: Some(host.to_owned()),
                });
                action.updated_at = now;
                if !ok {
                    action.message = Some("Error".into());
                }
                store::save_action(&self.pool, action).await?;
            }
            Ok::<_, crate::error::Error>(())
        };
        if let Err(error) = result.await {
            tracing::warn!(%error, "cannot record an instance action event");
        }
    }

    /// Removes a deleted server's records once its host has torn the guest down.
    pub async fn purge(&self, server: &Server) -> Result<()> {
        self.release_ports(&server.nics).await;
        self.release_volumes(server).await;
        self.remove_from_group(server).await?;
        store::delete_server(&self.pool, &server.id).await?;
        if server.migration.is_some() {
            self.remove_migration_disk(&server.id).await;
        }
        Ok(())
    }

    /// One of `host`'s servers (`None`: gone, or placed on another host), or one a live
    /// migration brings to `host` (its new host takes part before the server is placed there).
    pub async fn server_on_host(&self, host: &str, id: &str) -> Result<Option<Versioned<Server>>> {
        let record = store::server(&self.pool, id).await?;
        Ok(record.filter(|r| r.doc.host.as_deref() == Some(host) || live_arriving(&r.doc, host)))
    }

    /// Writes the outcome a joined host reports for one of its servers, if the server is
    /// still at `revision` (`false` if it changed meanwhile). Only what a host decides is
    /// taken from the report ([`host_outcome`]): a host cannot move, rename or re-own a server.
    pub async fn finish_from_host(
        &self,
        host: &str,
        reported: Server,
        revision: i64,
    ) -> Result<bool> {
        // Only the host a server is placed on (not one it is live-migrating to).
        let placed = store::server(&self.pool, &reported.id)
            .await?
            .filter(|r| r.doc.host.as_deref() == Some(host));
        let Some(stored) = placed else {
            return Err(Error::NotFound(format!(
                "server {} is not on host {host}",
                reported.id
            )));
        };
        if stored.revision != revision {
            return Ok(false);
        }
        let next = host_outcome(&stored.doc, reported)?;
        self.finish(next, revision).await
    }

    /// Purges a server its host tore down: only a server being deleted, on that host.
    pub async fn purge_from_host(&self, host: &str, id: &str) -> Result<()> {
        match self.server_on_host(host, id).await? {
            Some(record) if record.doc.task_state == Some(TaskState::Deleting) => {
                self.purge(&record.doc).await
            }
            Some(_) => Err(Error::Conflict(format!("server {id} is not being deleted"))),
            None => Ok(()),
        }
    }
}

/// `stored` with the outcome of its host's work taken from `reported`: states, fault,
/// progress and launch time; the task only cleared; the image of a rebuild, snapshot or
/// rescue only dropped; the flavor only put back to the one before a resize, while a resize
/// is being carried out or reverted. Everything else (owner, name, host, ports, volumes,
/// metadata) stays as stored. A fault is always a 500 (whose details only admins see), its
/// words cut to size; a launch time, once set, stays.
pub fn host_outcome(stored: &Server, reported: Server) -> Result<Server> {
    let refused = |what: &str| {
        Err(Error::BadRequest(format!(
            "a host may not change a server's {what}"
        )))
    };
    if reported.task_state.is_some() && reported.task_state != stored.task_state {
        return refused("task other than by finishing it");
    }
    if stored.task_state == Some(TaskState::Migrating) && reported.task_state.is_none() {
        // Its steps (`live_migration_step`) end it, binding its ports where it runs.
        return refused("live migration other than by its steps");
    }
    if reported.pending_image.is_some() && reported.pending_image != stored.pending_image {
        return refused("pending image");
    }
    let resizing = matches!(
        stored.task_state,
        Some(TaskState::ResizePrep | TaskState::ResizeReverting)
    );
    let reverted = resizing && stored.old_flavor.as_ref() == Some(&reported.flavor);
    if reported.flavor != stored.flavor && !reverted {
        return refused("flavor other than by reverting a resize");
    }
    if reported.old_flavor.is_some() && reported.old_flavor != stored.old_flavor {
        return refused("flavor before a resize");
    }
    let mut next = stored.clone();
    next.vm_state = reported.vm_state;
    next.task_state = reported.task_state;
    next.power_state = reported.power_state;
    next.fault = reported.fault.map(|mut fault| {
        fault.code = 500;
        fault.message = cut(fault.message, 255);
        fault.details = cut(fault.details, 64 * 1024);
        fault
    });
    next.progress = reported.progress.min(100);
    next.launched_at = stored.launched_at.or(reported.launched_at);
    next.pending_image = reported.pending_image;
    next.previous_vm_state = reported.previous_vm_state;
    next.flavor = reported.flavor;
    next.old_flavor = reported.old_flavor;
    // A migration ends with its revert, or with the hand-over failing (the server stays).
    if matches!(
        stored.task_state,
        Some(TaskState::ResizeReverting | TaskState::ResizeMigrating)
    ) && reported.task_state.is_none()
    {
        next.migration = None;
    }
    Ok(next)
}

/// Whether a live migration is bringing the server to `host`.
pub fn live_arriving(server: &Server, host: &str) -> bool {
    server.task_state == Some(TaskState::Migrating)
        && server
            .migration
            .as_ref()
            .is_some_and(|m| m.live.is_some() && m.dest == host)
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::host_outcome;
    use crate::model::{FlavorCopy, Server};
    use crate::states::{PowerState, TaskState, VmState};

    fn flavor(ram: u64) -> FlavorCopy {
        serde_json::from_value(serde_json::json!({"id": "1", "name": "f", "vcpus": 1,
            "ram": ram, "disk": 1, "ephemeral": 0, "swap": 0, "extra_specs": {}}))
        .unwrap_or_else(|e| panic!("flavor: {e}"))
    }

    fn stored() -> Server {
        let mut s: Server = serde_json::from_value(serde_json::json!({
            "id": "4f0e8a9c-1111-4222-8333-444455556666", "project_id": "p1", "user_id": "u1",
            "name": "vm1", "hostname": "vm1", "instance_name": "instance-00000001",
            "reservation_id": "r-1", "launch_index": 0, "image_id": "img",
            "flavor": {"id": "1", "name": "f", "vcpus": 1, "ram": 512, "disk": 1,
                       "ephemeral": 0, "swap": 0, "extra_specs": {}},
            "metadata": {}, "tags": [], "security_groups": [], "availability_zone": "nova",
            "host": "host-2", "nics": [], "vm_state": "building", "task_state": "spawning",
            "power_state": 0, "config_drive": false, "locked": false, "access_ipv4": "",
            "access_ipv6": "", "progress": 0, "created_at": 0, "updated_at": 0,
        }))
        .unwrap_or_else(|e| panic!("server: {e}"));
        s.pending_image = Some("snap".into());
        s
    }

    #[test]
    fn a_host_writes_back_only_what_a_host_decides() {
        let stored = stored();
        let mut reported = stored.clone();
        reported.vm_state = VmState::Active;
        reported.task_state = None;
        reported.power_state = PowerState::Running;
        reported.progress = 250;
        reported.pending_image = None;
        // What a host may not change is ignored, whatever it sends.
        reported.name = "renamed".into();
        reported.project_id = "p2".into();
        reported.host = Some("host-3".into());
        reported.image_id = "other".into();
        let next = host_outcome(&stored, reported).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next.vm_state, VmState::Active);
        assert_eq!(next.task_state, None);
        assert_eq!(next.power_state, PowerState::Running);
        assert_eq!(next.progress, 100);
        assert_eq!(next.pending_image, None);
        assert_eq!(
            (
                next.name.as_str(),
                next.project_id.as_str(),
                next.image_id.as_str()
            ),
            ("vm1", "p1", "img")
        );
        assert_eq!(next.host.as_deref(), Some("host-2"));

        // A fault is a 500 whatever the host says (only admins see its details), cut to size.
        let mut failed = stored.clone();
        failed.task_state = None;
        failed.fault = Some(crate::model::Fault {
            code: 400,
            message: "é".repeat(200),
            details: "x".repeat(1 << 20),
            created: 0,
        });
        let fault = host_outcome(&stored, failed)
            .unwrap_or_else(|e| panic!("{e}"))
            .fault
            .unwrap_or_else(|| panic!("a fault"));
        assert_eq!(fault.code, 500);
        assert!(fault.message.len() <= 255 && fault.details.len() <= 64 * 1024);

        // A host starts no task, picks no image and no flavor of its own.
        let mut task = stored.clone();
        task.task_state = Some(TaskState::Deleting);
        assert!(host_outcome(&stored, task).is_err());
        let mut image = stored.clone();
        image.pending_image = Some("another".into());
        assert!(host_outcome(&stored, image).is_err());
        let mut bigger = stored.clone();
        bigger.flavor = flavor(4096);
        assert!(host_outcome(&stored, bigger).is_err());

        // It puts the flavor back when it reverts a resize.
        let mut resized = stored.clone();
        resized.old_flavor = Some(flavor(256));
        let mut early = resized.clone();
        early.flavor = flavor(256);
        assert!(
            host_outcome(&resized, early).is_err(),
            "only while a resize is carried out or reverted"
        );
        resized.task_state = Some(TaskState::ResizeReverting);
        let mut reverted = resized.clone();
        reverted.flavor = flavor(256);
        reverted.old_flavor = None;
        reverted.task_state = None;
        let next = host_outcome(&resized, reverted).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next.flavor, flavor(256));
        assert_eq!(next.old_flavor, None);
    }
}
