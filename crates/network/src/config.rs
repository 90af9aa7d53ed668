//! Network settings, as the `[network]` section of the config file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Type of the networks tenants create: `vxlan` (default) or `local` (one host, no tunnel).
    pub tenant_network_type: String,
    /// VXLAN ids handed to tenant networks, inclusive.
    pub vni_min: u32,
    pub vni_max: u32,
    /// MTU of the underlay; VXLAN networks get 50 bytes less for the encapsulation.
    pub underlay_mtu: u32,
    /// Provider networks: physical network name → host interface (`physnet1 = "eth1"`).
    pub physical_interfaces: BTreeMap<String, String>,
    /// This host's name as ports are bound to it (`binding:host_id`); the system host name
    /// when empty.
    pub host: String,
    /// This host's VXLAN tunnel address; VXLAN devices get no local address when empty,
    /// which is enough on one host.
    pub local_ip: String,
    /// Whether this process runs the agent that builds bridges, taps, nftables rules and
    /// DHCP servers (needs root). Off only for hosts that must not touch networking.
    pub agent: bool,
    /// DHCP lease time in seconds.
    pub dhcp_lease_seconds: u32,
    /// Seconds between full reconcile passes (changes made through this process's API are
    /// applied at once; the pass repairs drift and picks up other controllers' changes).
    pub resync_seconds: u64,
    /// Seconds without a report after which a host's agents are listed dead (Neutron's
    /// `agent_down_time`).
    pub agent_down_time: u64,
    /// Default per-project quotas (-1 is unlimited).
    pub quota_network: i64,
    pub quota_subnet: i64,
    pub quota_port: i64,
    pub quota_security_group: i64,
    pub quota_security_group_rule: i64,
    pub quota_router: i64,
    pub quota_floatingip: i64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            tenant_network_type: "vxlan".into(),
            vni_min: 1,
            vni_max: 65535,
            underlay_mtu: 1500,
            physical_interfaces: BTreeMap::new(),
            host: String::new(),
            local_ip: String::new(),
            agent: true,
            dhcp_lease_seconds: 86400,
            resync_seconds: 10,
            agent_down_time: 75,
            quota_network: 100,
            quota_subnet: 100,
            quota_port: 500,
            quota_security_group: 10,
            quota_security_group_rule: 100,
            quota_router: 10,
            quota_floatingip: 50,
        }
    }
}

impl NetworkConfig {
    /// The name ports on this host are bound with.
    pub fn host_name(&self) -> String {
        if !self.host.is_empty() {
            return self.host.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }

    pub fn default_quota(&self, resource: &str) -> Option<i64> {
        Some(match resource {
            "network" => self.quota_network,
            "subnet" => self.quota_subnet,
            "port" => self.quota_port,
            "security_group" => self.quota_security_group,
            "security_group_rule" => self.quota_security_group_rule,
            "router" => self.quota_router,
            "floatingip" => self.quota_floatingip,
            _ => return None,
        })
    }
}

/// The resources with quotas, in Neutron's order.
pub const QUOTA_RESOURCES: &[&str] = &[
    "network",
    "subnet",
    "port",
    "security_group",
    "security_group_rule",
    "router",
    "floatingip",
];
