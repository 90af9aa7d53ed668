//! What the network operations are asked to do, typed: read from a request body by
//! `api::networks`. The operations check policy and the values against the configuration.

/// The `provider:*` attributes of a request, as given.
#[derive(Debug, Default)]
pub struct ProviderRequest {
    pub network_type: Option<String>,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<u32>,
}

impl ProviderRequest {
    pub fn is_given(&self) -> bool {
        self.network_type.is_some()
            || self.physical_network.is_some()
            || self.segmentation_id.is_some()
    }
}

/// A network to make.
#[derive(Debug)]
pub struct NewNetwork {
    /// Another project than the caller's (admins only).
    pub project_id: Option<String>,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub shared: bool,
    pub external: bool,
    pub port_security_enabled: bool,
    pub mtu: Option<u32>,
    pub tags: Option<Vec<String>>,
    pub provider: ProviderRequest,
}

/// The changes to a network; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct NetworkUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub port_security_enabled: Option<bool>,
    pub shared: Option<bool>,
    pub external: Option<bool>,
    pub mtu: Option<u32>,
    /// The first `provider:*` attribute asked for: they cannot change.
    pub provider_attribute: Option<&'static str>,
}
