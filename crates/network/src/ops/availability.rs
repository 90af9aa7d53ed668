//! `network-ip-availabilities`: how many addresses each subnet's pools hold and how many
//! are allocated.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::error::Result;
use crate::ipam;
use crate::model::{Network, Subnet};
use crate::policy::Caller;
use crate::service::Networks;
use crate::store::{self, Table};

impl Networks {
    /// Availability views of every network (admin only, as Neutron's policy says).
    pub async fn ip_availabilities(&self, caller: &Caller) -> Result<Vec<Value>> {
        caller.require_admin("get_network_ip_availability")?;
        let networks: Vec<Network> = store::list(&self.pool, Table::Networks, None).await?;
        let subnets: Vec<Subnet> = store::list(&self.pool, Table::Subnets, None).await?;
        let used: HashMap<String, i64> = store::allocation_counts(&self.pool)
            .await?
            .into_iter()
            .collect();
        Ok(networks
            .iter()
            .map(|n| {
                let mine: Vec<&Subnet> = subnets.iter().filter(|s| s.network_id == n.id).collect();
                let per_subnet: Vec<Value> = mine
                    .iter()
                    .map(|s| {
                        json!({
                            "subnet_id": s.id, "subnet_name": s.name, "cidr": s.cidr.to_string(),
                            "ip_version": s.ip_version,
                            "total_ips": ipam::pool_size(&s.allocation_pools).min(u128::from(u64::MAX)) as u64,
                            "used_ips": used.get(&s.id).copied().unwrap_or(0),
                        })
                    })
                    .collect();
                let total: u64 = per_subnet.iter().filter_map(|s| s["total_ips"].as_u64()).fold(0, u64::saturating_add);
                let used_total: i64 = per_subnet.iter().filter_map(|s| s["used_ips"].as_i64()).sum();
                json!({
                    "network_id": n.id, "network_name": n.name, "tenant_id": n.project_id,
                    "project_id": n.project_id, "total_ips": total, "used_ips": used_total,
                    "subnet_ip_availability": per_subnet,
                })
            })
            .collect())
    }
}
