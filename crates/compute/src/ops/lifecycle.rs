//! What a host agent reads and writes: the servers placed on it, and the outcome of the
//! work it carried out (compare-and-set, so an API change made meanwhile is never lost).

use onestack_db::now_micros;

use crate::error::Result;
use crate::model::{ActionEvent, Server};
use crate::service::Computes;
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
                    host: Some(self.host.clone()),
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
}
