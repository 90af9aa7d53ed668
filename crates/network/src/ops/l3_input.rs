//! What the router and floating IP operations are asked to do, typed: read from request
//! bodies by `api::routers` and `api::floating_ips`.

use std::net::IpAddr;

use super::port_input::IpRequest;
use crate::model::HostRoute;

/// `external_gateway_info` naming a network.
#[derive(Debug)]
pub struct GatewayRequest {
    pub network_id: String,
    pub enable_snat: Option<bool>,
    pub fixed_ips: Option<Vec<IpRequest>>,
}

/// `distributed` and `ha` as given: onestack accepts them only as false.
#[derive(Debug, Default)]
pub struct RouterModes {
    pub distributed: Option<bool>,
    pub ha: Option<bool>,
}

impl RouterModes {
    /// The modes given, with their values.
    pub fn given(&self) -> impl Iterator<Item = (&'static str, bool)> {
        [("distributed", self.distributed), ("ha", self.ha)]
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
    }
}

/// A router to make.
#[derive(Debug)]
pub struct NewRouter {
    /// Another project than the caller's (admins only).
    pub project_id: Option<String>,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub gateway: Option<GatewayRequest>,
    pub tags: Option<Vec<String>>,
    pub modes: RouterModes,
}

/// The changes to a router; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct RouterUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    /// `Some(None)` clears the gateway.
    pub gateway: Option<Option<GatewayRequest>>,
    pub routes: Option<Vec<HostRoute>>,
    pub modes: RouterModes,
}

/// The body of `add_router_interface` / `remove_router_interface`.
#[derive(Debug, Default)]
pub struct InterfaceRequest {
    pub subnet_id: Option<String>,
    pub port_id: Option<String>,
}

/// A floating IP to take.
#[derive(Debug)]
pub struct NewFloatingIp {
    pub project_id: Option<String>,
    pub floating_network_id: String,
    /// A chosen address (admins only).
    pub floating_ip_address: Option<IpAddr>,
    pub subnet_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<IpAddr>,
    pub description: String,
    pub tags: Option<Vec<String>>,
}

/// The changes to a floating IP.
#[derive(Debug, Default)]
pub struct FloatingIpUpdate {
    pub description: Option<String>,
    /// `Some(None)` disassociates; `Some(Some(port))` associates with that port.
    pub port_id: Option<Option<String>>,
    pub fixed_ip_address: Option<IpAddr>,
}
