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
                host: Some(host.to_owned()),
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
        Ok(())
    }

    /// One of `host`'s servers (`None`: gone, or placed on another host).
    pub async fn server_on_host(&self, host: &str, id: &str) -> Result<Option<Versioned<Server>>> {
        let record = store::server(&self.pool, id).await?;
        Ok(record.filter(|r| r.doc.host.as_deref() == Some(host)))
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
        let Some(stored) = self.server_on_host(host, &reported.id).await? else {
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
/// rescue only dropped; the flavor only put back to the one before a resize. Everything
/// else (owner, name, host, ports, volumes, metadata) stays as stored.
pub fn host_outcome(stored: &Server, reported: Server) -> Result<Server> {
    let refused = |what: &str| {
        Err(Error::BadRequest(format!(
            "a host may not change a server's {what}"
        )))
    };
    if reported.task_state.is_some() && reported.task_state != stored.task_state {
        return refused("task other than by finishing it");
    }
    if reported.pending_image.is_some() && reported.pending_image != stored.pending_image {
        return refused("pending image");
    }
    let reverted = stored.old_flavor.as_ref() == Some(&reported.flavor);
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
    next.fault = reported.fault;
    next.progress = reported.progress.min(100);
    next.launched_at = reported.launched_at;
    next.pending_image = reported.pending_image;
    next.previous_vm_state = reported.previous_vm_state;
    next.flavor = reported.flavor;
    next.old_flavor = reported.old_flavor;
    Ok(next)
}
