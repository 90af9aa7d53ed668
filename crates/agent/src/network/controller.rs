//! What the network agent asks of the cloud: its host's desired state, and where it reports
//! its host alive and its ports and floating IPs up or down. On a controller the agent
//! reads the database in process ([`InProcess`]); on a joined host it asks the controller
//! over the agent protocol (`control::remote::RemoteNetwork`), which tells a host only
//! what it builds and takes status reports only for what it carries.

use std::future::Future;

use onestack_db::{Pool, now_micros};
use onestack_network::desired::{self, HostState, Reported};

use super::Error;

pub trait NetworkController: Send + Sync + 'static {
    /// Once, before the first pass: what only a controller repairs in the database.
    fn prepare(&self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Reports the host's agent alive, reachable for VXLAN at `tunnel_ip`.
    fn heartbeat(&self, tunnel_ip: Option<&str>) -> impl Future<Output = Result<(), Error>> + Send;

    /// What the host must build.
    fn desired(&self) -> impl Future<Output = Result<HostState, Error>> + Send;

    /// Records a port or floating IP `ACTIVE` (carried here) or `DOWN`.
    fn report_status(
        &self,
        what: Reported,
        id: &str,
        up: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The database, for the metadata service a controller runs in its router and DHCP
    /// namespaces; `None` on a joined host (those namespaces are on controllers).
    fn metadata_pool(&self) -> Option<Pool>;
}

/// A controller's own agent: the database in this process.
pub struct InProcess {
    pub pool: Pool,
    pub host: String,
}

impl NetworkController for InProcess {
    async fn prepare(&self) -> Result<(), Error> {
        // Networks recorded before conntrack zones existed get theirs now.
        onestack_network::Networks::assign_conntrack_zones(&self.pool).await?;
        Ok(())
    }

    async fn heartbeat(&self, tunnel_ip: Option<&str>) -> Result<(), Error> {
        desired::heartbeat(&self.pool, &self.host, tunnel_ip, now_micros()).await?;
        Ok(())
    }

    async fn desired(&self) -> Result<HostState, Error> {
        Ok(desired::for_host(&self.pool, &self.host).await?)
    }

    async fn report_status(&self, what: Reported, id: &str, up: bool) -> Result<(), Error> {
        desired::report_status(&self.pool, what, id, up).await?;
        Ok(())
    }

    fn metadata_pool(&self) -> Option<Pool> {
        Some(self.pool.clone())
    }
}
