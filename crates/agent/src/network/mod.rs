//! Reconciles the network data plane: a bridge per network with its VXLAN, VLAN or flat
//! uplink, a tap (or veth) per port bound here, the security-group ruleset in nftables and
//! a DHCP server per network that wants one. Anything carrying this cloud's mark
//! ([`Owner`]) that is not desired is removed; what other clouds on the host made is never
//! touched.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use onestack_netdrv::firewall::{self, Firewall};
use onestack_netdrv::link::LinkInfo;
use onestack_netdrv::owner::Owner;
use onestack_netdrv::router::{self as l3, RouterSpec};
use onestack_netdrv::{dhcp, fdb, link, names, netns};
use onestack_network::NetworkConfig;
use onestack_network::desired::{NetworkPlan, Reported};
use onestack_network::model::Port;

use crate::metadata::MetadataService;

pub mod controller;
mod specs;

use controller::NetworkController;
use specs::{dhcp_network, metadata_scopes, router_spec, ruleset};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read desired state: {0}")]
    Desired(#[from] onestack_network::error::Error),
    #[error(transparent)]
    Control(#[from] crate::control::client::ControlError),
    #[error("{what}: {source}")]
    Host {
        what: String,
        source: onestack_netdrv::Error,
    },
}

fn host(what: impl Into<String>) -> impl FnOnce(onestack_netdrv::Error) -> Error {
    let what = what.into();
    move |source| Error::Host { what, source }
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct Report {
    pub created: Vec<String>,
    pub removed: Vec<String>,
    pub firewall_applied: bool,
    /// Problems confined to one network or port; the rest was reconciled.
    pub problems: Vec<String>,
}

impl Report {
    pub fn changed(&self) -> bool {
        !self.created.is_empty()
            || !self.removed.is_empty()
            || self.firewall_applied
            || !self.problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "created {:?}, removed {:?}", self.created, self.removed)?;
        if self.firewall_applied {
            write!(f, ", security groups applied")?;
        }
        if !self.problems.is_empty() {
            write!(f, ", problems: {}", self.problems.join("; "))?;
        }
        Ok(())
    }
}

pub struct Reconciler<C> {
    controller: C,
    config: NetworkConfig,
    state_dir: PathBuf,
    /// This cloud's and host's mark on everything the pass makes, and the test for removal.
    owner: Owner,
    /// Namespaces with our prefix that another cloud made: asked once, then left alone.
    foreign_namespaces: HashSet<String>,
    firewall: Firewall,
    /// The ruleset last applied, so an unchanged one is not re-sent every pass.
    applied: Option<String>,
    /// Router namespaces as last built, so unchanged ones are not rebuilt every pass.
    routers: HashMap<String, RouterSpec>,
    /// Controllers only: joined hosts have no router or DHCP namespaces to serve it in.
    metadata: Option<MetadataService>,
    prepared: bool,
}

/// How a port's device is made: a tap for QEMU, or a veth pair whose peer stands in for a
/// guest (`binding:profile` `{"interface": "veth"}`).
fn wants_veth(port: &Port) -> bool {
    port.profile.get("interface").and_then(|v| v.as_str()) == Some("veth")
}

impl<C: NetworkController> Reconciler<C> {
    pub fn new(
        controller: C,
        config: NetworkConfig,
        state_dir: PathBuf,
        owner: Owner,
    ) -> Result<Self, Error> {
        let firewall = Firewall::new(&owner.table()).map_err(host("security group table"))?;
        Ok(Self {
            metadata: controller.metadata_pool().map(MetadataService::new),
            controller,
            config,
            state_dir,
            owner,
            foreign_namespaces: HashSet::new(),
            firewall,
            applied: None,
            routers: HashMap::new(),
            prepared: false,
        })
    }

    fn local_ip(&self) -> Option<IpAddr> {
        self.config.local_ip.parse().ok()
    }

    /// One reconcile pass.
    pub async fn pass(&mut self) -> Result<Report, Error> {
        if !self.prepared {
            firewall::enable_br_netfilter()
                .await
                .map_err(host("enabling br_netfilter"))?;
            // Before clouds had their own tables, every cloud used `onestack` (and only one
            // could run per host): its stale port chains would judge our traffic by old
            // numbers. It can only be an earlier version's, so it goes.
            Firewall::default()
                .remove()
                .await
                .map_err(host("removing the tables of an earlier version"))?;
            self.controller.prepare().await?;
            self.prepared = true;
        }
        self.controller
            .heartbeat((!self.config.local_ip.is_empty()).then_some(self.config.local_ip.as_str()))
            .await?;
        let state = self.controller.desired().await?;
        let mut report = Report::default();
        let existing: HashMap<String, LinkInfo> = link::list_ours(&self.owner)
            .await
            .map_err(host("listing links"))?
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect();
        let mut wanted: HashSet<String> = HashSet::new();
        let mut active: Vec<String> = Vec::new();

        // Rules first: a rule change must not wait for the device checks below.
        // No filtered port here: no tables either (nothing of ours is left on an idle host).
        let ruleset = ruleset(&state);
        let rendered = if ruleset.ports.is_empty() {
            String::new()
        } else {
            self.firewall
                .render(&ruleset)
                .map_err(host("rendering security groups"))?
        };
        // Unchanged since the last apply: still make sure nobody removed our tables.
        if !rendered.is_empty()
            && self.applied.as_deref() == Some(rendered.as_str())
            && self
                .firewall
                .rule_count()
                .await
                .map_err(host("counting rules"))?
                == 0
        {
            self.applied = None;
        }
        if self.applied.as_deref() != Some(rendered.as_str()) {
            if rendered.is_empty() {
                self.firewall
                    .remove()
                    .await
                    .map_err(host("removing security groups"))?;
            } else {
                self.firewall
                    .apply(&ruleset)
                    .await
                    .map_err(host("applying security groups"))?;
            }
            self.applied = Some(rendered);
            report.firewall_applied = true;
        }

        for plan in &state.networks {
            match self
                .network(plan, &existing, &mut wanted, &mut report)
                .await
            {
                Ok(ports) => active.extend(ports),
                Err(e) => report
                    .problems
                    .push(format!("network {}: {e}", plan.network.id)),
            }
        }

        let mut routed_ports: Vec<String> = Vec::new();
        let mut carried: Vec<&onestack_network::model::FloatingIp> = Vec::new();
        for plan in &state.routers {
            let spec = router_spec(plan, &state);
            wanted.extend(l3::host_links(&spec));
            match self.router(&spec, &existing, &mut report).await {
                Ok(()) => {
                    routed_ports.extend(plan.interfaces.iter().map(|(p, _)| p.id.clone()));
                    routed_ports.extend(plan.gateway.iter().map(|(p, _)| p.id.clone()));
                    carried.extend(plan.floating_ips.iter());
                }
                Err(e) => report
                    .problems
                    .push(format!("router {}: {e}", plan.router.id)),
            }
        }
        let routers_wanted: HashSet<String> = state
            .routers
            .iter()
            .map(|p| names::router_namespace(&p.router.id))
            .collect();

        // Remove what is ours and no longer wanted: routers, DHCP servers, then devices.
        let dhcp_wanted: HashSet<String> = state
            .networks
            .iter()
            .filter(|p| p.dhcp_port.is_some())
            .map(|p| names::dhcp_namespace(&p.network.id))
            .collect();
        let scopes = metadata_scopes(&state);
        if let Some(metadata) = &mut self.metadata {
            metadata.retain(&scopes.iter().map(|s| s.namespace.clone()).collect());
        }
        for ns in netns::list_prefixed().map_err(host("listing namespaces"))? {
            let wanted_here = routers_wanted.contains(&ns) || dhcp_wanted.contains(&ns);
            if wanted_here || self.foreign_namespaces.contains(&ns) {
                continue;
            }
            let owned = match netns::owned_by(&ns, &self.owner).await {
                Ok(owned) => owned,
                // It may be going away under another cloud's agent: ask again next pass.
                Err(e) => {
                    tracing::debug!(ns, error = %e, "cannot read the mark of a namespace");
                    continue;
                }
            };
            if !owned {
                tracing::debug!(ns, "namespace not made by this cloud: left alone");
                self.foreign_namespaces.insert(ns);
                continue;
            }
            if let Some(router_id) = ns.strip_prefix(names::ROUTER_NS)
                && !routers_wanted.contains(&ns)
            {
                l3::remove(router_id)
                    .await
                    .map_err(host(format!("removing router {router_id}")))?;
                self.routers.remove(router_id);
                report.removed.push(ns.clone());
            }
            if let Some(network_id) = ns.strip_prefix(names::DHCP_NS)
                && !dhcp_wanted.contains(&ns)
            {
                dhcp::remove(&self.state_dir, network_id)
                    .await
                    .map_err(host(format!("removing DHCP for {network_id}")))?;
                report.removed.push(ns);
            }
        }
        // DHCP files whose namespace is gone (a kill between the two, or an older version).
        for network_id in
            dhcp::networks_with_state(&self.state_dir).map_err(host("listing DHCP state"))?
        {
            if !dhcp_wanted.contains(&names::dhcp_namespace(&network_id)) {
                match dhcp::remove(&self.state_dir, &network_id).await {
                    Ok(()) => report.removed.push(format!("DHCP files of {network_id}")),
                    Err(e) => report
                        .problems
                        .push(format!("removing DHCP files of {network_id}: {e}")),
                }
            }
        }
        let mut stale: Vec<&String> = existing.keys().filter(|n| !wanted.contains(*n)).collect();
        // Bridges last, so their ports are gone before them.
        stale.sort_by_key(|n| n.starts_with(names::BRIDGE));
        for name in stale {
            match link::delete(name).await {
                Ok(()) => report.removed.push(name.clone()),
                Err(e) => report.problems.push(format!("removing {name}: {e}")),
            }
        }

        match &mut self.metadata {
            Some(metadata) => report.problems.extend(metadata.sync(&scopes)),
            None if !scopes.is_empty() => report
                .problems
                .push("metadata is served by controllers only, and this host is not one".into()),
            None => {}
        }

        let mine: Vec<&Port> = state
            .networks
            .iter()
            .flat_map(|p| p.local_ports.iter().chain(p.dhcp_port.iter()))
            .collect();
        for port in mine {
            let up = active.contains(&port.id) && port.admin_state_up;
            self.report_status(Reported::Port, &port.id, &port.status, up)
                .await?;
        }
        for plan in &state.routers {
            let ports = plan
                .interfaces
                .iter()
                .chain(plan.gateway.iter())
                .map(|(p, _)| p);
            for port in ports {
                let up = routed_ports.contains(&port.id);
                self.report_status(Reported::Port, &port.id, &port.status, up)
                    .await?;
            }
            for fip in &plan.floating_ips {
                let up = carried.iter().any(|c| c.id == fip.id);
                self.report_status(Reported::FloatingIp, &fip.id, &fip.status, up)
                    .await?;
            }
        }
        Ok(report)
    }

    /// Records `ACTIVE` or `DOWN` for a port or floating IP whose status says otherwise.
    async fn report_status(
        &self,
        what: Reported,
        id: &str,
        current: &str,
        up: bool,
    ) -> Result<(), Error> {
        if current != if up { "ACTIVE" } else { "DOWN" } {
            self.controller.report_status(what, id, up).await?;
        }
        Ok(())
    }

    /// Builds one router namespace, unless it is already as wanted.
    async fn router(
        &mut self,
        spec: &RouterSpec,
        existing: &HashMap<String, LinkInfo>,
        report: &mut Report,
    ) -> Result<(), Error> {
        let ns = names::router_namespace(&spec.router_id);
        let unchanged = self.routers.get(&spec.router_id) == Some(spec)
            && netns::exists(&ns)
            && l3::host_links(spec)
                .iter()
                .all(|l| existing.get(l).is_some_and(|l| l.up));
        if unchanged {
            return Ok(());
        }
        if !netns::exists(&ns) {
            report.created.push(ns.clone());
        }
        self.routers.remove(&spec.router_id);
        l3::ensure(spec, &self.owner)
            .await
            .map_err(host(format!("router namespace {ns}")))?;
        self.routers.insert(spec.router_id.clone(), spec.clone());
        Ok(())
    }

    /// Builds one network; returns the ids of its ports that are plugged in.
    async fn network(
        &self,
        plan: &NetworkPlan,
        existing: &HashMap<String, LinkInfo>,
        wanted: &mut HashSet<String>,
        report: &mut Report,
    ) -> Result<Vec<String>, Error> {
        let network = &plan.network;
        let bridge = names::bridge(&network.id);
        let mtu = network.mtu;
        let mut note = |name: &str, wanted: &mut HashSet<String>| {
            wanted.insert(name.to_owned());
            if !existing.contains_key(name) {
                report.created.push(name.to_owned());
            }
        };
        note(&bridge, wanted);
        // Everything this network should have is wanted before any step can fail, so a
        // failure below never makes the sweep delete a running guest's tap.
        match network.segment.network_type.as_str() {
            "vxlan" => note(&names::vxlan(&network.id), wanted),
            "vlan" => note(&names::vlan(&network.id), wanted),
            _ => {}
        }
        for port in &plan.local_ports {
            note(&names::port(&port.id), wanted);
            if wants_veth(port) {
                wanted.insert(names::port_peer(&port.id));
            }
        }
        if plan.dhcp_port.is_some() {
            wanted.insert(names::dhcp_bridge_side(&network.id));
        }
        // What is already as wanted is left alone: a pass over many ports stays cheap.
        let converged = |name: &str, master: Option<&str>| {
            existing
                .get(name)
                .is_some_and(|l| l.up && l.mtu == mtu && l.master.as_deref() == master)
        };
        if !converged(&bridge, None) {
            link::ensure_bridge(&bridge, mtu, &self.owner)
                .await
                .map_err(host(format!("bridge {bridge}")))?;
        }

        let segment = &network.segment;
        match segment.network_type.as_str() {
            "vxlan" => {
                let vxlan = names::vxlan(&network.id);
                let vni = segment.segmentation_id.unwrap_or_default();
                let same_vni = existing.get(&vxlan).is_some_and(|l| l.vni == Some(vni));
                if !(same_vni && converged(&vxlan, Some(&bridge))) {
                    link::ensure_vxlan(&vxlan, vni, self.local_ip(), mtu, &self.owner)
                        .await
                        .map_err(host(format!("vxlan {vxlan}")))?;
                    link::attach(&vxlan, &bridge, &self.owner)
                        .await
                        .map_err(host(format!("vxlan {vxlan}")))?;
                }
                fdb::set_flood(&vxlan, &plan.flood)
                    .await
                    .map_err(host(format!("fdb of {vxlan}")))?;
                fdb::set_unicast(&vxlan, &plan.remote_macs)
                    .await
                    .map_err(host(format!("fdb of {vxlan}")))?;
            }
            "flat" | "vlan" => {
                let physnet = segment.physical_network.clone().unwrap_or_default();
                let Some(iface) = self.config.physical_interfaces.get(&physnet) else {
                    report.problems.push(format!("network {}: physical network {physnet} has no interface on this host ([network.physical_interfaces])", network.id));
                    return Ok(Vec::new());
                };
                if segment.network_type == "flat" {
                    link::attach(iface, &bridge, &self.owner)
                        .await
                        .map_err(host(format!("uplink {iface}")))?;
                } else if link::vlan_supported().await {
                    let vlan = names::vlan(&network.id);
                    let vid = segment.segmentation_id.unwrap_or_default() as u16;
                    link::ensure_vlan(&vlan, iface, vid, mtu, &self.owner)
                        .await
                        .map_err(host(format!("vlan {vlan}")))?;
                    link::attach(&vlan, &bridge, &self.owner)
                        .await
                        .map_err(host(format!("vlan {vlan}")))?;
                } else {
                    report.problems.push(format!("network {}: VLAN networks need the 8021q kernel module, which this host lacks", network.id));
                }
            }
            _ => {}
        }

        let mut plugged = Vec::new();
        for port in &plan.local_ports {
            let device = names::port(&port.id);
            let veth = wants_veth(port);
            let kind = if veth { "veth" } else { "tun" };
            if converged(&device, Some(&bridge))
                && existing
                    .get(&device)
                    .is_some_and(|l| l.kind.as_deref() == Some(kind))
            {
                plugged.push(port.id.clone());
                continue;
            }
            let made = if veth {
                link::ensure_veth(&device, &names::port_peer(&port.id), mtu, &self.owner).await
            } else {
                link::ensure_tap(&device, mtu, &self.owner).await
            };
            match made.and(link::attach(&device, &bridge, &self.owner).await) {
                Ok(()) => plugged.push(port.id.clone()),
                Err(e) => report.problems.push(format!("port {}: {e}", port.id)),
            }
        }

        if let Some(port) = &plan.dhcp_port {
            let mut net = dhcp_network(plan, port, self.config.dhcp_lease_seconds);
            // A network with a router gets its metadata through the router.
            net.metadata = !plan.routed;
            if dhcp::running(&self.state_dir, &network.id).is_none() {
                report.created.push(names::dhcp_namespace(&network.id));
            }
            dhcp::ensure(&self.state_dir, &bridge, &net, &self.owner)
                .await
                .map_err(host(format!("DHCP for {}", network.id)))?;
            plugged.push(port.id.clone());
        }
        Ok(plugged)
    }
}
