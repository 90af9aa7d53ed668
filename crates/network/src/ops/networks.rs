//! Networks: tenant networks get a VXLAN id of their own; admins may place a network on a
//! provider segment (flat or VLAN on a configured physical network), share it, or mark it
//! external.

use std::collections::HashSet;

use super::network_input::{NetworkUpdate, NewNetwork, ProviderRequest};
use super::quota;
use crate::error::{Error, Result};
use crate::model::{DHCP_OWNER, Network, Port, Segment, Subnet};
use crate::policy::{Caller, NetworkPolicy};
use crate::service::{Networks, new_id, new_standard, touch};
use crate::store::{self, Table};

/// VXLAN encapsulation: outer Ethernet, IP, UDP and VXLAN headers.
const VXLAN_OVERHEAD: u32 = 50;

impl Networks {
    pub async fn get_network(&self, caller: &Caller, id: &str) -> Result<Network> {
        match store::get::<Network, _>(&self.pool, Table::Networks, id).await? {
            Some(n) if caller.can_see_network(&n) => Ok(n),
            _ => Err(Error::network_not_found(id)),
        }
    }

    /// A network the caller may change (visible but not owned is a policy failure).
    async fn owned_network(&self, caller: &Caller, id: &str, action: &str) -> Result<Network> {
        let network = self.get_network(caller, id).await?;
        if !caller.owns(&network.project_id) {
            return Err(Error::Policy(format!("rule:{action}")));
        }
        caller.require_writer(action)?;
        Ok(network)
    }

    pub async fn list_networks(&self, caller: &Caller) -> Result<Vec<Network>> {
        let all: Vec<Network> = store::list(&self.pool, Table::Networks, None).await?;
        Ok(all
            .into_iter()
            .filter(|n| caller.can_see_network(n))
            .collect())
    }

    /// Subnet ids per network, for the network view.
    pub async fn subnet_ids(&self, network_id: Option<&str>) -> Result<Vec<(String, String)>> {
        let subnets: Vec<Subnet> = store::list(
            &self.pool,
            Table::Subnets,
            network_id.map(|n| ("network_id", n)),
        )
        .await?;
        Ok(subnets.into_iter().map(|s| (s.network_id, s.id)).collect())
    }

    fn max_mtu(&self, segment: &Segment) -> u32 {
        if segment.network_type == "vxlan" {
            self.config.underlay_mtu.saturating_sub(VXLAN_OVERHEAD)
        } else {
            self.config.underlay_mtu
        }
    }

    fn requested_segment(&self, provider: ProviderRequest) -> Result<Option<Segment>> {
        let ProviderRequest {
            network_type,
            physical_network,
            segmentation_id,
        } = provider;
        let Some(network_type) = network_type else {
            if physical_network.is_some() || segmentation_id.is_some() {
                return Err(Error::invalid_input("provider:network_type required"));
            }
            return Ok(None);
        };
        let known_physnet = |p: &Option<String>| -> Result<String> {
            match p {
                Some(p) if self.config.physical_interfaces.contains_key(p) => Ok(p.clone()),
                Some(p) => Err(Error::invalid_input(format!(
                    "physical_network '{p}' unknown for {network_type} provider network"
                ))),
                None => Err(Error::invalid_input(format!(
                    "physical_network required for {network_type} provider network"
                ))),
            }
        };
        let segment = match network_type.as_str() {
            "flat" => {
                if segmentation_id.is_some() {
                    return Err(Error::invalid_input(
                        "segmentation_id specified for flat provider network",
                    ));
                }
                Segment {
                    physical_network: Some(known_physnet(&physical_network)?),
                    segmentation_id: None,
                    network_type,
                }
            }
            "vlan" => {
                let physnet = known_physnet(&physical_network)?;
                match segmentation_id {
                    Some(id @ 1..=4094) => Segment {
                        physical_network: Some(physnet),
                        segmentation_id: Some(id),
                        network_type,
                    },
                    Some(id) => {
                        return Err(Error::invalid_input(format!(
                            "segmentation_id out of range (1 through 4094): {id}"
                        )));
                    }
                    None => {
                        return Err(Error::invalid_input(
                            "segmentation_id required for vlan provider network",
                        ));
                    }
                }
            }
            "vxlan" => {
                if physical_network.is_some() {
                    return Err(Error::invalid_input(
                        "physical_network specified for vxlan provider network",
                    ));
                }
                if let Some(id) = segmentation_id
                    && !(1..=16_777_215).contains(&id)
                {
                    return Err(Error::invalid_input(format!(
                        "segmentation_id out of range (1 through 16777215): {id}"
                    )));
                }
                Segment {
                    physical_network: None,
                    segmentation_id,
                    network_type,
                }
            }
            "local" => Segment {
                physical_network: None,
                segmentation_id: None,
                network_type,
            },
            other => {
                return Err(Error::invalid_input(format!(
                    "network_type value '{other}' not supported"
                )));
            }
        };
        Ok(Some(segment))
    }

    /// A free VXLAN id in the configured range: the first at or after this cloud's starting
    /// point, wrapping around.
    async fn free_vni(&self, tx: &mut onestack_db::Tx) -> Result<u32> {
        let used: std::collections::HashSet<u32> = store::segment_keys(tx, "vxlan:")
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix("vxlan:")?.parse().ok())
            .collect();
        free_from(
            self.config.vni_min,
            self.config.vni_max,
            self.id_offset,
            &used,
        )
        .ok_or_else(|| {
            Error::conflict(
                "NoNetworkAvailable",
                "Unable to create the network. No tenant network is available for allocation.",
            )
        })
    }

    /// A conntrack zone no network has, the first at or after this cloud's starting point
    /// (zone 0 is the host's default, never ours).
    async fn free_conntrack_zone(&self, tx: &mut onestack_db::Tx) -> Result<u16> {
        let networks: Vec<Network> = store::list(&mut **tx, Table::Networks, None).await?;
        let used: HashSet<u32> = networks
            .iter()
            .filter_map(|n| n.conntrack_zone.map(u32::from))
            .collect();
        free_from(1, u32::from(u16::MAX), self.id_offset, &used)
            .and_then(|z| u16::try_from(z).ok())
            .ok_or_else(no_zone)
    }

    /// Gives every network recorded before conntrack zones existed a zone of its own (the
    /// agent calls this before its first pass). Returns how many it gave.
    pub async fn assign_conntrack_zones(pool: &onestack_db::Pool) -> Result<usize> {
        let networks: Vec<Network> = store::list(pool, Table::Networks, None).await?;
        if networks.iter().all(|n| n.conntrack_zone.is_some()) {
            return Ok(0);
        }
        let mut tx = store::begin_write(pool).await?;
        let networks: Vec<Network> = store::list(&mut *tx, Table::Networks, None).await?;
        let mut used: HashSet<u16> = networks.iter().filter_map(|n| n.conntrack_zone).collect();
        let mut given = 0;
        for mut network in networks.into_iter().filter(|n| n.conntrack_zone.is_none()) {
            let zone = lowest_free_zone(&used).ok_or_else(no_zone)?;
            used.insert(zone);
            network.conntrack_zone = Some(zone);
            // Not a change anyone made: the revision stays.
            let revision = network.std.revision_number;
            store::update_network(&mut tx, &network, revision).await?;
            given += 1;
        }
        tx.commit().await?;
        Ok(given)
    }

    pub async fn create_network(&self, caller: &Caller, new: NewNetwork) -> Result<Network> {
        caller.require_writer("create_network")?;
        let project_id = caller.target_project(new.project_id, "create_network:tenant_id")?;
        let NewNetwork {
            name,
            description,
            admin_state_up,
            shared,
            external,
            port_security_enabled,
            mtu,
            tags,
            provider,
            ..
        } = new;
        if provider.is_given() {
            caller.require_admin("create_network:provider:network_type")?;
        }
        let segment = self.requested_segment(provider)?;
        if shared {
            caller.require_admin("create_network:shared")?;
        }
        if external {
            caller.require_admin("create_network:router:external")?;
        }

        let mut tx = store::begin_write(&self.pool).await?;
        quota::check(self, &mut tx, &project_id, "network", Table::Networks).await?;
        let segment = match segment {
            Some(s) if s.network_type == "vxlan" && s.segmentation_id.is_none() => Segment {
                segmentation_id: Some(self.free_vni(&mut tx).await?),
                ..s
            },
            Some(s) => s,
            None if self.config.tenant_network_type == "local" => Segment {
                network_type: "local".into(),
                physical_network: None,
                segmentation_id: None,
            },
            None => Segment {
                network_type: "vxlan".into(),
                physical_network: None,
                segmentation_id: Some(self.free_vni(&mut tx).await?),
            },
        };
        let max = self.max_mtu(&segment);
        if let Some(m) = mtu
            && (m > max || m < 68)
        {
            return Err(Error::invalid_input(format!(
                "Requested MTU {m} is out of range, maximum is {max}"
            )));
        }
        if let Some(key) = segment.key()
            && store::segment_keys(&mut tx, &key).await?.contains(&key)
        {
            return Err(Error::conflict(
                "SegmentInUse",
                format!("Unable to create the network. The segment {key} is in use."),
            ));
        }
        let mut std = new_standard();
        std.tags = tags.unwrap_or_default();
        let network = Network {
            id: new_id(),
            project_id,
            name,
            description,
            admin_state_up,
            mtu: mtu.unwrap_or(max),
            shared,
            external,
            segment,
            port_security_enabled,
            status: "ACTIVE".into(),
            conntrack_zone: Some(self.free_conntrack_zone(&mut tx).await?),
            std,
        };
        store::insert_network(&mut tx, &network).await?;
        super::groups::ensure_default_group(&mut tx, &network.project_id).await?;
        tx.commit().await?;
        self.changed();
        Ok(network)
    }

    pub async fn update_network(
        &self,
        caller: &Caller,
        id: &str,
        change: NetworkUpdate,
    ) -> Result<Network> {
        let mut network = self.owned_network(caller, id, "update_network").await?;
        if let Some(name) = change.name {
            network.name = name;
        }
        if let Some(d) = change.description {
            network.description = d;
        }
        if let Some(v) = change.admin_state_up {
            network.admin_state_up = v;
        }
        if let Some(v) = change.port_security_enabled {
            network.port_security_enabled = v;
        }
        if let Some(v) = change.shared {
            caller.require_admin("update_network:shared")?;
            network.shared = v;
        }
        if let Some(v) = change.external {
            caller.require_admin("update_network:router:external")?;
            network.external = v;
        }
        if let Some(m) = change.mtu {
            let max = self.max_mtu(&network.segment);
            if m > max || m < 68 {
                return Err(Error::invalid_input(format!(
                    "Requested MTU {m} is out of range, maximum is {max}"
                )));
            }
            network.mtu = m;
        }
        if let Some(key) = change.provider_attribute {
            caller.require_admin(&format!("update_network:{key}"))?;
            return Err(Error::invalid_input(
                "Updating the provider attributes of a network is not supported",
            ));
        }
        let previous = touch(&mut network.std);
        let mut tx = store::begin_write(&self.pool).await?;
        if !network.shared && !network.external {
            let ports: Vec<Port> =
                store::list(&mut *tx, Table::Ports, Some(("network_id", id))).await?;
            if ports.iter().any(|p| p.project_id != network.project_id) {
                return Err(Error::conflict(
                    "InvalidSharedSetting",
                    format!(
                        "Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it."
                    ),
                ));
            }
        }
        store::update_network(&mut tx, &network, previous).await?;
        tx.commit().await?;
        self.changed();
        Ok(network)
    }

    pub async fn delete_network(&self, caller: &Caller, id: &str) -> Result<()> {
        self.owned_network(caller, id, "delete_network").await?;
        let mut tx = store::begin_write(&self.pool).await?;
        let ports: Vec<Port> =
            store::list(&mut *tx, Table::Ports, Some(("network_id", id))).await?;
        if ports.iter().any(|p| p.device_owner != DHCP_OWNER) {
            return Err(Error::conflict(
                "NetworkInUse",
                format!(
                    "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
                ),
            ));
        }
        for port in ports {
            store::delete(&mut tx, Table::Ports, &port.id).await?;
        }
        let subnets: Vec<Subnet> =
            store::list(&mut *tx, Table::Subnets, Some(("network_id", id))).await?;
        for subnet in subnets {
            store::delete(&mut tx, Table::Subnets, &subnet.id).await?;
        }
        store::delete_requested(&mut tx, Table::Networks, id, Error::network_not_found).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }
}

/// The lowest zone in 1..=65535 not in `used`.
fn lowest_free_zone(used: &HashSet<u16>) -> Option<u16> {
    (1..=u16::MAX).find(|z| !used.contains(z))
}

fn no_zone() -> Error {
    Error::conflict(
        "NoNetworkAvailable",
        "Unable to create the network. Every conntrack zone (65535) is in use.",
    )
}

/// The first value of `min..=max` not in `used`, searching from `min + offset` (modulo the
/// range's size) to `max` and then from `min`.
fn free_from(
    min: u32,
    max: u32,
    offset: u32,
    used: &std::collections::HashSet<u32>,
) -> Option<u32> {
    if min > max {
        return None;
    }
    let span = u64::from(max - min) + 1;
    let start = min + u32::try_from(u64::from(offset) % span).ok()?;
    (start..=max).chain(min..start).find(|v| !used.contains(v))
}

#[cfg(test)]
mod vni_tests {
    use super::free_from;
    use std::collections::HashSet;

    #[test]
    fn the_search_starts_at_the_clouds_offset_and_wraps() {
        let none = HashSet::new();
        assert_eq!(free_from(1, 100, 0, &none), Some(1));
        assert_eq!(free_from(1, 100, 41, &none), Some(42));
        assert_eq!(free_from(1, 100, 141, &none), Some(42));
        let used: HashSet<u32> = (42..=100).collect();
        assert_eq!(free_from(1, 100, 41, &used), Some(1));
        let full: HashSet<u32> = (1..=100).collect();
        assert_eq!(free_from(1, 100, 7, &full), None);
        assert_eq!(free_from(5, 4, 0, &none), None);
        assert_eq!(free_from(0, u32::MAX, u32::MAX, &none), Some(u32::MAX));
    }
}
