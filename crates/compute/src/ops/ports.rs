//! A server's networks and ports: the networks, ports and security groups a request names
//! resolved; ports made on its networks (or taken over when given), bound to its host,
//! released with it; interfaces attached and detached later.

use onestack_api::ApiError;
use onestack_network::error::Error as NetworkError;
use onestack_network::model::Port;
use onestack_network::ops::port_input::{IpRequest, NewPort};

use super::server_input::{NetworkChoice, NetworkRequest};
use crate::error::{Error, Result};
use crate::model::{Nic, Server};
use crate::policy::Caller;
use crate::service::Computes;
use crate::states::{self, VmState};
use crate::store;
use crate::views::FloatingAddresses;

impl Computes {
    /// The networks asked for, resolved: each port found and free, each network visible;
    /// `auto` and no choice pick the project's one network.
    pub(super) async fn network_requests(
        &self,
        caller: &Caller,
        choice: NetworkChoice,
    ) -> Result<Vec<NetworkRequest>> {
        let visible = || async {
            let all = self.networks.list_networks(caller).await?;
            Ok::<_, Error>(
                all.into_iter()
                    .filter(|n| !n.external || n.shared)
                    .filter(|n| n.project_id == caller.project_id || n.shared)
                    .collect::<Vec<_>>(),
            )
        };
        let several = || {
            Error::Conflict(
                "Multiple possible networks found, use a Network ID to be more specific.".into(),
            )
        };
        let one = |id: &str| NetworkRequest::Network {
            id: id.to_owned(),
            fixed_ip: None,
        };
        match choice {
            NetworkChoice::None => Ok(Vec::new()),
            NetworkChoice::Auto => match visible().await?.as_slice() {
                [only] => Ok(vec![one(&only.id)]),
                [] => Err(Error::BadRequest(
                    "Unable to automatically allocate a network for project: create a network and a subnet first.".into(),
                )),
                _ => Err(several()),
            },
            NetworkChoice::Unspecified => match visible().await?.as_slice() {
                [] => Ok(Vec::new()),
                [only] => Ok(vec![one(&only.id)]),
                _ => Err(several()),
            },
            NetworkChoice::Listed(list) => {
                let mut out = Vec::new();
                for request in list {
                    out.push(self.resolve_network(caller, request).await?);
                }
                Ok(out)
            }
        }
    }

    /// One listed port (found, and held by no device) or network (visible to the caller).
    async fn resolve_network(
        &self,
        caller: &Caller,
        request: NetworkRequest,
    ) -> Result<NetworkRequest> {
        match request {
            NetworkRequest::Port(p) => {
                let port =
                    self.networks.get_port(caller, &p).await.map_err(|_| {
                        Error::BadRequest(format!("Port id {p} could not be found."))
                    })?;
                if !port.device_id.is_empty() {
                    return Err(Error::Conflict(format!("Port {p} is still in use.")));
                }
                Ok(NetworkRequest::Port(port.id))
            }
            NetworkRequest::Network { id: n, fixed_ip } => {
                let network =
                    self.networks.get_network(caller, &n).await.map_err(|_| {
                        Error::BadRequest(format!("Network {n} could not be found."))
                    })?;
                if !(network.project_id == caller.project_id || network.shared || caller.admin) {
                    return Err(Error::BadRequest(format!(
                        "Network {n} could not be found."
                    )));
                }
                Ok(NetworkRequest::Network {
                    id: network.id,
                    fixed_ip,
                })
            }
        }
    }

    /// Security group names (or ids) → (name, id), in the caller's project.
    pub(crate) async fn security_groups(
        &self,
        caller: &Caller,
        requested: &[String],
    ) -> Result<Vec<(String, String)>> {
        let groups = self.networks.list_groups(caller).await?;
        let mut out = Vec::new();
        for wanted in requested {
            let wanted = wanted.as_str();
            let found = groups
                .iter()
                .map(|(g, _)| g)
                // Names resolve in the caller's project only (an admin sees every project's
                // `default`); other projects' groups only by id, and only for admins.
                .filter(|g| g.project_id == caller.project_id || (caller.admin && g.id == wanted))
                .find(|g| g.id == wanted || g.name == wanted)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Unable to find security_group with name or id '{wanted}'"
                    ))
                })?;
            if !out.iter().any(|(_, id)| id == &found.id) {
                out.push((found.name.clone(), found.id.clone()));
            }
        }
        Ok(out)
    }

    /// The floating addresses carried by the fixed addresses of `servers`' ports.
    pub async fn floating_addresses(&self, servers: &[&Server]) -> Result<FloatingAddresses> {
        let port_ids: Vec<String> = servers
            .iter()
            .flat_map(|s| s.nics.iter().map(|n| n.port_id.clone()))
            .collect();
        if port_ids.is_empty() {
            return Ok(FloatingAddresses::new());
        }
        let mut out = FloatingAddresses::new();
        for fip in self.networks.floating_ips_of_ports(&port_ids).await? {
            if let (Some(port), Some(fixed)) = (fip.port_id, fip.fixed_ip_address) {
                out.entry((port, fixed.to_string()))
                    .or_default()
                    .push(fip.floating_ip_address.to_string());
            }
        }
        Ok(out)
    }

    pub(crate) async fn make_ports_for(
        &self,
        caller: &Caller,
        server_id: &str,
        requests: &[NetworkRequest],
        groups: &[(String, String)],
        zone: &str,
    ) -> Result<Vec<Nic>> {
        let device_owner = format!("compute:{zone}");
        let mut nics: Vec<Nic> = Vec::new();
        for request in requests {
            let outcome = match request {
                NetworkRequest::Network { id, fixed_ip } => {
                    let mut port = NewPort::on(id);
                    port.device_id = server_id.to_owned();
                    port.device_owner = device_owner.clone();
                    port.security_groups = Some(groups.iter().map(|(_, id)| id.clone()).collect());
                    port.fixed_ips = fixed_ip.map(|ip| {
                        vec![IpRequest::Address {
                            subnet_id: None,
                            ip,
                        }]
                    });
                    self.networks
                        .create_port(caller, port)
                        .await
                        .map(|p| (p, true))
                }
                NetworkRequest::Port(id) => self
                    .networks
                    .claim_port(caller, id, server_id, &device_owner)
                    .await
                    .map(|p| (p, false)),
            };
            match outcome {
                Ok((port, owned)) => {
                    let network_name = self
                        .networks
                        .get_network(caller, &port.network_id)
                        .await
                        .map(|n| n.name)
                        .unwrap_or_default();
                    nics.push(Nic {
                        port_id: port.id.clone(),
                        network_id: port.network_id.clone(),
                        network_name,
                        mac: port.mac_address.clone(),
                        ips: port
                            .fixed_ips
                            .iter()
                            .map(|f| f.ip_address.to_string())
                            .collect(),
                        owned,
                    });
                }
                Err(e) => {
                    self.release_ports(&nics).await;
                    return Err(port_error(e));
                }
            }
        }
        Ok(nics)
    }

    /// Binds ports to the host their server runs on, so its agent plugs them in.
    pub(crate) async fn bind_ports(&self, nics: &[Nic], host: &str) {
        for nic in nics {
            if let Err(error) = self.networks.bind_port(&nic.port_id, host).await {
                tracing::warn!(port = %nic.port_id, %error, "cannot bind port to host");
            }
        }
    }

    /// Frees ports bound to a server that does not exist. A stop between making a server's
    /// ports and recording the server (or between releasing a deleted server's ports and
    /// removing its record) leaves them. They are unbound, not deleted, because whether the
    /// user brought the port is recorded only with the server. Run at start, before the API
    /// serves, when no server is half-made. Returns how many were freed.
    pub async fn release_orphan_ports(&self) -> Result<usize> {
        let ports = self
            .networks
            .list_ports(&Caller::service())
            .await
            .map_err(port_error)?;
        let servers = store::server_ids(&self.pool).await?;
        let mut freed = 0;
        for port in ports {
            if !port.device_owner.starts_with("compute:") || servers.contains(&port.device_id) {
                continue;
            }
            tracing::warn!(port = %port.id, "freeing a port bound to a server that does not exist");
            self.release_port(&port.id, false).await;
            freed += 1;
        }
        Ok(freed)
    }

    /// Deletes the ports made for a server and frees the ones it was given.
    pub(crate) async fn release_ports(&self, nics: &[Nic]) {
        for nic in nics {
            self.release_port(&nic.port_id, nic.owned).await;
        }
    }

    async fn release_port(&self, port_id: &str, made: bool) {
        if let Err(error) = self.networks.release_port(port_id, made).await {
            tracing::debug!(port = %port_id, %error, "port release");
        }
    }
}

/// Nova's answers to what Neutron refused while making or claiming a server's port.
fn port_error(error: NetworkError) -> Error {
    match error {
        NetworkError::OverQuota(_) => Error::Forbidden("Maximum number of ports exceeded".into()),
        NetworkError::Conflict { .. } => Error::Conflict(error.to_string()),
        NetworkError::Db(_) | NetworkError::Doc(_) | NetworkError::Internal(_) => {
            Error::Network(error)
        }
        other => Error::BadRequest(ApiError::from(other).message),
    }
}

/// One of a server's interfaces: its NIC, with its port as the network service has it now
/// (`None` when the port is gone).
#[derive(Debug)]
pub struct Interface {
    pub nic: Nic,
    pub port: Option<Port>,
}

impl Computes {
    pub async fn interfaces(&self, caller: &Caller, id: &str) -> Result<Vec<Interface>> {
        let server = self.get_server(caller, id).await?.doc;
        let mut out = Vec::new();
        for nic in server.nics {
            out.push(self.interface(caller, nic).await);
        }
        Ok(out)
    }

    async fn interface(&self, caller: &Caller, nic: Nic) -> Interface {
        let port = self.networks.get_port(caller, &nic.port_id).await.ok();
        Interface { nic, port }
    }

    /// Attaches a port (given, or made on a network) to a server; a running guest gets it
    /// when its agent next reconciles.
    pub async fn attach_interface(
        &self,
        caller: &Caller,
        id: &str,
        request: NetworkRequest,
    ) -> Result<Interface> {
        caller.require_writer("os-attach-interfaces:create")?;
        let current = self.get_server(caller, id).await?;
        let mut server = current.doc;
        self.check_lock(caller, &server)?;
        states::check(
            &server,
            "attach_interface",
            &[VmState::Active, VmState::Paused, VmState::Stopped],
            None,
        )?;
        self.require_plugs(&server, super::hosts::Plug::Ports)
            .await?;
        if let NetworkRequest::Port(p) = &request {
            let port = self
                .networks
                .get_port(caller, p)
                .await
                .map_err(|_| Error::NotFound(format!("Port {p} could not be found.")))?;
            if !port.device_id.is_empty() {
                return Err(Error::Conflict(format!("Port {p} is still in use.")));
            }
        }
        // A port made here gets the server's security groups; a port given keeps its own.
        let groups: Vec<(String, String)> = if matches!(request, NetworkRequest::Network { .. }) {
            self.security_groups(caller, &server.security_groups)
                .await?
        } else {
            Vec::new()
        };
        let plan_nets = vec![request];
        let nics = self
            .make_ports_for(
                caller,
                &server.id,
                &plan_nets,
                &groups,
                &server.availability_zone,
            )
            .await?;
        if let Some(host) = &server.host {
            self.bind_ports(&nics, host).await;
        }
        server.nics.extend(nics.iter().cloned());
        if let Err(e) = self.save(server, current.revision).await {
            self.release_ports(&nics).await;
            return Err(e);
        }
        self.record_action(caller, id, "attach_interface").await;
        let nic = nics
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("no port attached".into()))?;
        Ok(self.interface(caller, nic).await)
    }

    pub async fn detach_interface(&self, caller: &Caller, id: &str, port_id: &str) -> Result<()> {
        caller.require_writer("os-attach-interfaces:delete")?;
        let current = self.get_server(caller, id).await?;
        let mut server = current.doc;
        self.check_lock(caller, &server)?;
        states::check(
            &server,
            "detach_interface",
            &[VmState::Active, VmState::Paused, VmState::Stopped],
            None,
        )?;
        let position = server
            .nics
            .iter()
            .position(|n| n.port_id == port_id)
            .ok_or_else(|| Error::NotFound(format!("Port {port_id} is not attached")))?;
        let nic = server.nics.remove(position);
        self.save(server, current.revision).await?;
        self.release_ports(&[nic]).await;
        self.record_action(caller, id, "detach_interface").await;
        Ok(())
    }
}
