//! Neutron's agents API (`/v2.0/agents`) over the hosts whose network agent reports. One
//! onestack agent does on its host what four Neutron agents do (bridges and tunnels, DHCP,
//! routers, metadata), so each such host lists those four, alive while it reports within
//! `agent_down_time`.

use onestack_db::now_micros;
use onestack_db::timestamps::seconds_naive;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::policy::Caller;
use crate::service::Networks;
use crate::store::{self, AgentHost};

/// What each host runs, as Neutron names it: (agent_type, binary, topic, in a zone).
const KINDS: [(&str, &str, &str, bool); 4] = [
    (
        "Linux bridge agent",
        "neutron-linuxbridge-agent",
        "N/A",
        false,
    ),
    ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent", true),
    ("L3 agent", "neutron-l3-agent", "l3_agent", true),
    ("Metadata agent", "neutron-metadata-agent", "N/A", false),
];

impl Networks {
    /// Every agent of every host, as admins see them (Neutron's `get_agent` is admin-only).
    pub async fn agents(&self, caller: &Caller) -> Result<Vec<Value>> {
        caller.require_admin("get_agent")?;
        let now = now_micros();
        Ok(store::agent_hosts(&self.pool)
            .await?
            .iter()
            .flat_map(|host| {
                KINDS
                    .iter()
                    .map(move |kind| self.agent_view(host, *kind, now))
            })
            .collect())
    }

    pub async fn agent(&self, caller: &Caller, id: &str) -> Result<Value> {
        self.agents(caller)
            .await?
            .into_iter()
            .find(|agent| agent["id"] == id)
            .ok_or_else(|| Error::not_found("AgentNotFound", "Agent", id))
    }

    fn agent_view(
        &self,
        host: &AgentHost,
        (agent_type, binary, topic, zoned): (&str, &str, &str, bool),
        now: i64,
    ) -> Value {
        let silent_seconds = now.saturating_sub(host.heartbeat_at) / 1_000_000;
        let configurations = if agent_type == "Linux bridge agent" {
            json!({
                "tunnel_types": ["vxlan"],
                "tunneling_ip": host.tunnel_ip,
                "interface_mappings": self.config.physical_interfaces,
            })
        } else {
            json!({})
        };
        json!({
            "id": onestack_db::ids::stable_uuid(&[&host.host, agent_type]),
            "agent_type": agent_type,
            "binary": binary,
            "topic": topic,
            "host": host.host,
            "admin_state_up": true,
            "alive": silent_seconds <= self.config.agent_down_time as i64,
            "availability_zone": if zoned { json!("nova") } else { Value::Null },
            "configurations": configurations,
            "description": null,
            "created_at": seconds_naive(host.created_at),
            "started_at": seconds_naive(host.created_at),
            "heartbeat_timestamp": seconds_naive(host.heartbeat_at),
            "resources_synced": null,
        })
    }
}
