//! Who is asking: the server behind a metadata request, found from what the guest cannot
//! forge, the subnets of the namespace the request arrived in and its source address.

use std::net::IpAddr;

use onestack_compute::metadata::{self, GuestNetworking};
use onestack_compute::model::Server;
use onestack_db::Pool;
use onestack_network::model::Port;
use onestack_network::store::{self as net_store, Table};

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Network(#[from] onestack_network::error::Error),
    #[error(transparent)]
    Compute(#[from] onestack_compute::error::Error),
}

/// The server whose port holds `source` on one of `subnets`, with its networking; `None`
/// unless the port is plugged into a server that lists it and both are in one project.
pub async fn identify(
    pool: &Pool,
    subnets: &[String],
    source: IpAddr,
) -> Result<Option<(Server, GuestNetworking)>, LookupError> {
    let Some(port_id) = net_store::port_holding(pool, subnets, source).await? else {
        return Ok(None);
    };
    let Some(port) = net_store::get::<Port, _>(pool, Table::Ports, &port_id).await? else {
        return Ok(None);
    };
    if !port.device_owner.starts_with("compute:") || port.device_id.is_empty() {
        return Ok(None);
    }
    let Some(server) = onestack_compute::store::server(pool, &port.device_id).await? else {
        return Ok(None);
    };
    let server = server.doc;
    let plugged = server.nics.iter().any(|n| n.port_id == port.id);
    if !plugged || server.project_id != port.project_id {
        return Ok(None);
    }
    let net = metadata::networking(pool, &server).await?;
    Ok(Some((server, net)))
}
