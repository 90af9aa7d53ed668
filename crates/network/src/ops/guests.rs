//! What compute asks of the network service for its servers, as typed calls beyond the port
//! operations themselves: binding a port to the host its guest runs on, releasing it with
//! the server, and reading the networking a guest is told about (config drive, metadata).

use std::net::IpAddr;

use onestack_db::Pool;

use crate::error::Result;
use crate::model::{Network, Port, Subnet};
use crate::ops::port_input::PortUpdate;
use crate::policy::Caller;
use crate::service::Networks;
use crate::store::{self, Table};

/// The `binding:profile` key naming the host a port's guest is moving to (Neutron's).
pub const MIGRATING_TO: &str = "migrating_to";

/// The networking a guest needs to know: its ports with their networks and subnets.
#[derive(Debug, Default)]
pub struct GuestNetworking {
    pub ports: Vec<(Port, Network, Vec<Subnet>)>,
    /// Floating addresses carried by these ports' fixed addresses.
    pub floating: Vec<IpAddr>,
}

impl Networks {
    /// Binds a port to `host`, so that host's agent plugs it in (and no other host: a
    /// binding ends any `migrating_to`, see `update_port`).
    pub async fn bind_port(&self, port_id: &str, host: &str) -> Result<()> {
        let change = PortUpdate {
            host_id: Some(host.to_owned()),
            ..PortUpdate::default()
        };
        self.update_port(&Caller::service(), port_id, change)
            .await
            .map(drop)
    }

    /// Plugs a port in on `host` too, for a guest about to arrive there by live migration
    /// (Neutron's `binding:profile` `migrating_to`); it stays bound where it is until
    /// [`Self::bind_port`] moves it.
    pub async fn expect_port_on(&self, port_id: &str, host: &str) -> Result<()> {
        let service = Caller::service();
        let mut profile = self.get_port(&service, port_id).await?.profile;
        profile.insert(MIGRATING_TO.into(), host.into());
        let change = PortUpdate {
            profile: Some(profile),
            ..PortUpdate::default()
        };
        self.update_port(&service, port_id, change).await.map(drop)
    }

    /// Releases a server's port: deletes it when it was `made` for the server, else frees it
    /// (no device, no host) for its owner to use again.
    pub async fn release_port(&self, port_id: &str, made: bool) -> Result<()> {
        let service = Caller::service();
        if made {
            return self.delete_port(&service, port_id).await;
        }
        let change = PortUpdate {
            device_id: Some(String::new()),
            device_owner: Some(String::new()),
            host_id: Some(String::new()),
            ..PortUpdate::default()
        };
        self.update_port(&service, port_id, change).await.map(drop)
    }
}

/// The ports `port_ids` (in that order; gone ones skipped) with their networks, subnets and
/// floating addresses. A free function: the agent's metadata service has the pool only.
pub async fn guest_networking(pool: &Pool, port_ids: &[String]) -> Result<GuestNetworking> {
    let mut out = GuestNetworking::default();
    for port_id in port_ids {
        let Some(port) = store::get::<Port, _>(pool, Table::Ports, port_id).await? else {
            continue;
        };
        let Some(network) =
            store::get::<Network, _>(pool, Table::Networks, &port.network_id).await?
        else {
            continue;
        };
        let mut subnets: Vec<Subnet> = Vec::new();
        for fixed in &port.fixed_ips {
            if subnets.iter().any(|s| s.id == fixed.subnet_id) {
                continue;
            }
            if let Some(s) = store::get(pool, Table::Subnets, &fixed.subnet_id).await? {
                subnets.push(s);
            }
        }
        for fixed in &port.fixed_ips {
            if let Some(f) = store::floating_ip_of(pool, &port.id, fixed.ip_address).await? {
                out.floating.push(f.floating_ip_address);
            }
        }
        out.ports.push((port, network, subnets));
    }
    Ok(out)
}

/// The port that holds `address` on one of `subnets`: who a metadata request comes from.
pub async fn port_holding(
    pool: &Pool,
    subnets: &[String],
    address: IpAddr,
) -> Result<Option<Port>> {
    match store::port_holding(pool, subnets, address).await? {
        Some(port_id) => store::get(pool, Table::Ports, &port_id).await,
        None => Ok(None),
    }
}
