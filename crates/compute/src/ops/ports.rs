//! A server's ports: made on its networks (or taken over when given), bound to its host,
//! released with it; interfaces attached and detached later.

use onestack_api::Fields;
use serde_json::{Value, json};

use super::create::NetworkRequest;
use crate::error::{Error, Result};
use crate::model::{Nic, Server};
use crate::policy::Caller;
use crate::service::Computes;
use crate::states::{self, VmState};
use crate::store;
use crate::views::FloatingAddresses;

impl Computes {
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
        let net_caller = caller.network();
        let mut nics: Vec<Nic> = Vec::new();
        for request in requests {
            let outcome = match request {
                NetworkRequest::Network { id, fixed_ip } => {
                    let mut body = json!({
                        "network_id": id,
                        "device_id": server_id,
                        "device_owner": format!("compute:{zone}"),
                        "security_groups": groups.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
                    });
                    if let Some(ip) = fixed_ip {
                        body["fixed_ips"] = json!([{"ip_address": ip}]);
                    }
                    let fields = Fields::from_object(body, "port")?;
                    self.networks
                        .create_port(&net_caller, fields)
                        .await
                        .map(|p| (p, true))
                }
                NetworkRequest::Port(id) => self
                    .networks
                    .claim_port(&net_caller, id, server_id, &format!("compute:{zone}"))
                    .await
                    .map(|p| (p, false)),
            };
            match outcome {
                Ok((port, owned)) => {
                    let network_name = self
                        .networks
                        .get_network(&net_caller, &port.network_id)
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
                    self.release_ports(caller, &nics).await;
                    return Err(port_error(e));
                }
            }
        }
        Ok(nics)
    }

    /// Binds ports to the host their server runs on, so its agent plugs them in.
    pub(crate) async fn bind_ports(&self, nics: &[Nic], host: &str) {
        let admin = onestack_network::policy::Caller {
            project_id: String::new(),
            admin: true,
            writer: true,
        };
        for nic in nics {
            let fields = Fields::from_object(json!({"binding:host_id": host}), "port");
            let result = match fields {
                Ok(f) => self
                    .networks
                    .update_port(&admin, &nic.port_id, f)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e.into()),
            };
            if let Err(error) = result {
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
        let admin = onestack_network::policy::Caller {
            project_id: String::new(),
            admin: true,
            writer: true,
        };
        let ports = self.networks.list_ports(&admin).await.map_err(port_error)?;
        let servers = store::server_ids(&self.pool).await?;
        let orphans: Vec<Nic> = ports
            .into_iter()
            .filter(|p| p.device_owner.starts_with("compute:") && !servers.contains(&p.device_id))
            .map(|port| Nic {
                port_id: port.id,
                network_id: port.network_id,
                network_name: String::new(),
                mac: port.mac_address,
                ips: Vec::new(),
                owned: false,
            })
            .collect();
        for nic in &orphans {
            tracing::warn!(port = %nic.port_id, "freeing a port bound to a server that does not exist");
        }
        self.unbind_ports(&orphans).await;
        Ok(orphans.len())
    }

    /// Deletes the ports made for a server and frees the ones it was given.
    pub(crate) async fn release_ports(&self, _caller: &Caller, nics: &[Nic]) {
        self.unbind_ports(nics).await;
    }

    /// Deletes the `owned` ports of `nics` and clears the binding of the others.
    async fn unbind_ports(&self, nics: &[Nic]) {
        let admin = onestack_network::policy::Caller {
            project_id: String::new(),
            admin: true,
            writer: true,
        };
        for nic in nics {
            let result = if nic.owned {
                self.networks.delete_port(&admin, &nic.port_id).await
            } else {
                match Fields::from_object(
                    json!({"device_id": "", "device_owner": "", "binding:host_id": ""}),
                    "port",
                ) {
                    Ok(f) => self
                        .networks
                        .update_port(&admin, &nic.port_id, f)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e.into()),
                }
            };
            if let Err(error) = result {
                tracing::debug!(port = %nic.port_id, %error, "port release");
            }
        }
    }
}

fn port_error(error: onestack_network::error::Error) -> Error {
    let api = onestack_api::ApiError::from(error);
    match api.status.as_u16() {
        409 => Error::Conflict(api.message),
        403 if api.message.contains("Quota") => {
            Error::Forbidden(format!("Maximum number of ports exceeded: {}", api.message))
        }
        _ => Error::BadRequest(api.message),
    }
}

impl Computes {
    /// Attaches a port (given, or made on a network) to a server; a running guest gets it
    /// when its agent next reconciles.
    pub async fn attach_interface(&self, caller: &Caller, id: &str, mut f: Fields) -> Result<Nic> {
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
        let port_id = f.opt_string("port_id")?;
        let net_id = f.opt_string("net_id")?;
        let fixed_ip = match f.opt_array("fixed_ips")? {
            Some(list) => list
                .first()
                .and_then(|e| e.get("ip_address"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            None => None,
        };
        f.ignore("tag");
        f.deny_unknown()?;
        let request = match (port_id, net_id) {
            (Some(p), None) => {
                let port = self
                    .networks
                    .get_port(&caller.network(), &p)
                    .await
                    .map_err(|_| Error::NotFound(format!("Port {p} could not be found.")))?;
                if !port.device_id.is_empty() {
                    return Err(Error::Conflict(format!("Port {p} is still in use.")));
                }
                NetworkRequest::Port(p)
            }
            (None, Some(n)) => NetworkRequest::Network { id: n, fixed_ip },
            _ => {
                return Err(Error::BadRequest(
                    "Must not input both network_id and port_id, and one of them is required."
                        .into(),
                ));
            }
        };
        let groups: Vec<(String, String)> = if matches!(request, NetworkRequest::Network { .. }) {
            let mut probe = Fields::from_object(
                json!({"security_groups": server.security_groups.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}),
                "x",
            )?;
            self.security_groups(caller, &mut probe).await?
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
            self.release_ports(caller, &nics).await;
            return Err(e);
        }
        self.record_action(caller, id, "attach_interface").await;
        nics.into_iter()
            .next()
            .ok_or_else(|| Error::Internal("no port attached".into()))
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
        self.release_ports(caller, &[nic]).await;
        self.record_action(caller, id, "detach_interface").await;
        Ok(())
    }
}
