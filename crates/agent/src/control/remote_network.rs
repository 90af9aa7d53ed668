//! A joined host's network agent's view of the cloud: [`NetworkController`] over the agent
//! protocol.

use std::time::Duration;

use onestack_db::Pool;
use onestack_network::desired::{HostState, Reported};
use reqwest::Method;

use super::client::{ControlClient, ControlError};
use super::{NetworkChanges, NetworkHeartbeat, StatusReport};
use crate::network::Error;
use crate::network::controller::NetworkController;

pub struct RemoteNetwork {
    client: ControlClient,
    host: String,
}

impl RemoteNetwork {
    pub fn new(client: ControlClient, host: &str) -> Self {
        Self {
            client,
            host: host.to_owned(),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1/hosts/{}/network{rest}", self.host)
    }

    /// The controller's count of network changes once it is not `seen` any more, or
    /// after `wait`; `None` for `seen` answers at once.
    pub async fn wait_for_change(
        &self,
        seen: Option<u64>,
        wait: Duration,
    ) -> Result<NetworkChanges, ControlError> {
        let query = match seen {
            Some(after) => format!("/changes?after={after}&wait={}", wait.as_secs()),
            None => format!("/changes?after={}&wait=0", u64::MAX),
        };
        let request = self
            .client
            .request(Method::GET, &self.path(&query))
            .timeout(wait + Duration::from_secs(10));
        self.client.send(request).await?.json_body().await
    }
}

impl NetworkController for RemoteNetwork {
    /// What a controller repairs is not a joined host's business.
    async fn prepare(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn heartbeat(&self, tunnel_ip: Option<&str>) -> Result<(), Error> {
        let body = NetworkHeartbeat {
            tunnel_ip: tunnel_ip.and_then(|ip| ip.parse().ok()),
        };
        let request = self
            .client
            .request(Method::PUT, &self.path("/heartbeat"))
            .json(&body);
        self.client.send(request).await?;
        Ok(())
    }

    async fn desired(&self) -> Result<HostState, Error> {
        let request = self.client.request(Method::GET, &self.path(""));
        Ok(self.client.send(request).await?.json_body().await?)
    }

    async fn report_status(&self, what: Reported, id: &str, up: bool) -> Result<(), Error> {
        let body = StatusReport {
            what,
            id: id.to_owned(),
            up,
        };
        let request = self
            .client
            .request(Method::PUT, &self.path("/status"))
            .json(&body);
        match self.client.send(request).await {
            Ok(_) => Ok(()),
            // Moved off this host or deleted since this pass read it: nothing to report.
            Err(ControlError::Refused { status: 404, .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    fn metadata_pool(&self) -> Option<Pool> {
        None
    }
}
