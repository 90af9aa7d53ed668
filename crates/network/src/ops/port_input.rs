//! What a port operation is asked to do, typed: parsed from a request by `api::ports`, or
//! built by compute for a server's port.

use std::net::IpAddr;

use serde_json::{Map, Value};

/// One entry of `fixed_ips`.
#[derive(Debug, Clone)]
pub enum IpRequest {
    Subnet(String),
    Address {
        subnet_id: Option<String>,
        ip: IpAddr,
    },
}

/// One entry of `allowed_address_pairs`; without a MAC the port's own is meant.
#[derive(Debug, Clone)]
pub struct PairRequest {
    pub ip_address: String,
    pub mac_address: Option<String>,
}

/// A port to make.
#[derive(Debug)]
pub struct NewPort {
    /// Another project than the caller's (admins only).
    pub project_id: Option<String>,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub device_id: String,
    pub device_owner: String,
    pub mac_address: Option<String>,
    /// `None`: one address of each IP version.
    pub fixed_ips: Option<Vec<IpRequest>>,
    /// `None`: the network's setting.
    pub port_security_enabled: Option<bool>,
    /// `None`: the project's `default` group (when port security is on).
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<PairRequest>>,
    pub host_id: Option<String>,
    pub profile: Option<Map<String, Value>>,
    pub tags: Option<Vec<String>>,
}

impl NewPort {
    /// A plain port on `network_id`, everything else defaulted.
    pub fn on(network_id: &str) -> Self {
        Self {
            project_id: None,
            network_id: network_id.to_owned(),
            name: String::new(),
            description: String::new(),
            admin_state_up: true,
            device_id: String::new(),
            device_owner: String::new(),
            mac_address: None,
            fixed_ips: None,
            port_security_enabled: None,
            security_groups: None,
            allowed_address_pairs: None,
            host_id: None,
            profile: None,
            tags: None,
        }
    }

    pub(crate) fn owner_only(&self) -> OwnerOnly {
        OwnerOnly::of(
            self.mac_address.is_some(),
            self.port_security_enabled.is_some(),
            self.allowed_address_pairs.is_some(),
            self.fixed_ips.as_deref(),
        )
    }
}

/// The changes to a port; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct PortUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub mac_address: Option<String>,
    pub fixed_ips: Option<Vec<IpRequest>>,
    pub port_security_enabled: Option<bool>,
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<PairRequest>>,
    pub host_id: Option<String>,
    pub profile: Option<Map<String, Value>>,
}

impl PortUpdate {
    /// The first attribute asked for that a router's or floating IP's port keeps as that API
    /// made it (name, description and admin_state_up stay open).
    pub(crate) fn service_fixed_attribute(&self) -> Option<&'static str> {
        [
            ("fixed_ips", self.fixed_ips.is_some()),
            ("mac_address", self.mac_address.is_some()),
            (
                "port_security_enabled",
                self.port_security_enabled.is_some(),
            ),
            ("security_groups", self.security_groups.is_some()),
            (
                "allowed_address_pairs",
                self.allowed_address_pairs.is_some(),
            ),
            ("binding:host_id", self.host_id.is_some()),
            ("binding:profile", self.profile.is_some()),
        ]
        .into_iter()
        .find_map(|(name, asked)| asked.then_some(name))
    }

    pub(crate) fn owner_only(&self) -> OwnerOnly {
        OwnerOnly::of(
            self.mac_address.is_some(),
            self.port_security_enabled.is_some(),
            self.allowed_address_pairs.is_some(),
            self.fixed_ips.as_deref(),
        )
    }
}

/// Which of the attributes reserved to a network's owner a request asks for, in the order
/// Neutron's policy checks them.
pub(crate) struct OwnerOnly(Option<&'static str>);

impl OwnerOnly {
    fn of(mac: bool, port_security: bool, pairs: bool, ips: Option<&[IpRequest]>) -> Self {
        let explicit_ip =
            ips.is_some_and(|ips| ips.iter().any(|ip| matches!(ip, IpRequest::Address { .. })));
        Self(
            [
                ("mac_address", mac),
                ("port_security_enabled", port_security),
                ("allowed_address_pairs", pairs),
                ("fixed_ips:ip_address", explicit_ip),
            ]
            .into_iter()
            .find_map(|(name, asked)| asked.then_some(name)),
        )
    }

    /// The first such attribute asked for.
    pub(crate) fn first(&self) -> Option<&'static str> {
        self.0
    }
}
