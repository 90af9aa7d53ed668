//! Networks, subnets, ports, security groups and their rules as [`Resource`]s (their five
//! handlers are `crud`'s), and the IP availability reports.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use onestack_api::{AuthContext, BaseUrl, Fields};
use serde_json::{Value, json};

use super::crud::{Resource, inputs, operations};
use super::query::{self, Params};
use super::{Reply, Shared, caller, href};
use super::{groups, networks, ports, subnets};
use crate::error::Result;
use crate::model::{Network, Port, Rule, SecurityGroup, Subnet};
use crate::ops::group_input::{GroupUpdate, NewGroup, NewRule};
use crate::ops::network_input::{NetworkUpdate, NewNetwork};
use crate::ops::port_input::{NewPort, PortUpdate};
use crate::ops::subnet_input::{NewSubnet, SubnetUpdate};
use crate::policy::Caller;
use crate::service::Networks;
use crate::views;

pub(super) struct NetworkKind;
pub(super) struct SubnetKind;
pub(super) struct PortKind;
pub(super) struct GroupKind;
pub(super) struct RuleKind;

impl Resource for NetworkKind {
    const ONE: &'static str = "network";
    const MANY: &'static str = "networks";
    const PATH: &'static str = "networks";
    type Item = Network;
    inputs!(NewNetwork, NetworkUpdate; networks::new_network, networks::network_update);
    operations!(Network, NewNetwork, NetworkUpdate;
        list_networks, get_network, create_network, update_network, delete_network);
    async fn views(n: &Networks, caller: &Caller, items: &[Network]) -> Result<Vec<Value>> {
        // One network's subnets by its id; a listing's all at once.
        let only = match items {
            [one] => Some(one.id.as_str()),
            _ => None,
        };
        let mut subnets: HashMap<String, Vec<String>> = HashMap::new();
        for (network, subnet) in n.subnet_ids(only).await? {
            subnets.entry(network).or_default().push(subnet);
        }
        Ok(items
            .iter()
            .map(|net| {
                let ids = subnets.get(&net.id).map(Vec::as_slice).unwrap_or(&[]);
                views::network(net, ids, caller)
            })
            .collect())
    }
}

impl Resource for SubnetKind {
    const ONE: &'static str = "subnet";
    const MANY: &'static str = "subnets";
    const PATH: &'static str = "subnets";
    type Item = Subnet;
    inputs!(NewSubnet, SubnetUpdate; subnets::new_subnet, subnets::subnet_update);
    operations!(Subnet, NewSubnet, SubnetUpdate;
        list_subnets, get_subnet, create_subnet, update_subnet, delete_subnet);
    async fn views(_: &Networks, _: &Caller, items: &[Subnet]) -> Result<Vec<Value>> {
        Ok(items.iter().map(views::subnet).collect())
    }
}

impl Resource for PortKind {
    const ONE: &'static str = "port";
    const MANY: &'static str = "ports";
    const PATH: &'static str = "ports";
    type Item = Port;
    inputs!(NewPort, PortUpdate; ports::new_port, ports::port_update);
    operations!(Port, NewPort, PortUpdate;
        list_ports, get_port, create_port, update_port, delete_port);
    async fn views(_: &Networks, caller: &Caller, items: &[Port]) -> Result<Vec<Value>> {
        Ok(items.iter().map(|p| views::port(p, caller)).collect())
    }
}

impl Resource for GroupKind {
    const ONE: &'static str = "security_group";
    const MANY: &'static str = "security_groups";
    const PATH: &'static str = "security-groups";
    type Item = (SecurityGroup, Vec<Rule>);
    inputs!(NewGroup, GroupUpdate; groups::new_group, groups::group_update);
    operations!(Self::Item, NewGroup, GroupUpdate;
        list_groups, get_group, create_group, update_group, delete_group);
    async fn views(_: &Networks, _: &Caller, items: &[Self::Item]) -> Result<Vec<Value>> {
        Ok(items.iter().map(|(g, r)| views::group(g, r)).collect())
    }
}

impl Resource for RuleKind {
    const ONE: &'static str = "security_group_rule";
    const MANY: &'static str = "security_group_rules";
    const PATH: &'static str = "security-group-rules";
    type Item = Rule;
    inputs!(NewRule, Option<String>; groups::new_rule, groups::rule_description);
    operations!(Rule, NewRule, Option<String>;
        list_rules, get_rule, create_rule, update_rule_description, delete_rule);
    async fn views(_: &Networks, _: &Caller, items: &[Rule]) -> Result<Vec<Value>> {
        Ok(items.iter().map(views::rule).collect())
    }
}

/// `GET /v2.0/agents`, with Neutron's filters, fields, sorting and paging.
pub async fn list_agents(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let views = n.agents(&caller(&ctx)?).await?;
    Ok(Json(query::respond(
        views,
        &params,
        "agents",
        &href(&base, "agents"),
    )?))
}

pub async fn show_agent(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Reply {
    Ok(Json(json!({"agent": n.agent(&caller(&ctx)?, &id).await?})))
}

pub async fn list_availabilities(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let mut views = n.ip_availabilities(&caller(&ctx)?).await?;
    // Pagination keys on `id`; availabilities are keyed by network.
    for v in &mut views {
        v["id"] = v["network_id"].clone();
    }
    let mut body = query::respond(
        views,
        &params,
        "network_ip_availabilities",
        &href(&base, "network-ip-availabilities"),
    )?;
    if let Some(items) = body["network_ip_availabilities"].as_array_mut() {
        for item in items {
            if let Some(map) = item.as_object_mut() {
                map.remove("id");
            }
        }
    }
    Ok(Json(body))
}

pub async fn show_availability(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Reply {
    let views = n.ip_availabilities(&caller(&ctx)?).await?;
    views
        .into_iter()
        .find(|v| v["network_id"] == id.as_str())
        .map(|v| Json(json!({"network_ip_availability": v})))
        .ok_or_else(|| crate::error::Error::network_not_found(&id).into())
}
