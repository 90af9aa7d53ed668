//! Networks, subnets, ports, security groups and their rules as [`Resource`]s (their five
//! handlers are `crud`'s), and the IP availability reports.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use onestack_api::{AuthContext, BaseUrl, Fields};
use serde_json::{Value, json};

use super::crud::Resource;
use super::ports;
use super::query::{self, Params};
use super::{Reply, Shared, caller, href};
use crate::error::Result;
use crate::model::{Network, Port, Rule, SecurityGroup, Subnet};
use crate::ops::port_input::{NewPort, PortUpdate};
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
    type New = Fields;
    type Change = Fields;

    fn new(fields: Fields) -> Result<Fields> {
        Ok(fields)
    }
    fn change(fields: Fields) -> Result<Fields> {
        Ok(fields)
    }
    async fn list(n: &Networks, caller: &Caller) -> Result<Vec<Network>> {
        n.list_networks(caller).await
    }
    async fn get(n: &Networks, caller: &Caller, id: &str) -> Result<Network> {
        n.get_network(caller, id).await
    }
    async fn create(n: &Networks, caller: &Caller, new: Fields) -> Result<Network> {
        n.create_network(caller, new).await
    }
    async fn update(n: &Networks, caller: &Caller, id: &str, change: Fields) -> Result<Network> {
        n.update_network(caller, id, change).await
    }
    async fn delete(n: &Networks, caller: &Caller, id: &str) -> Result<()> {
        n.delete_network(caller, id).await
    }
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
    type New = Fields;
    type Change = Fields;

    fn new(fields: Fields) -> Result<Fields> {
        Ok(fields)
    }
    fn change(fields: Fields) -> Result<Fields> {
        Ok(fields)
    }
    async fn list(n: &Networks, caller: &Caller) -> Result<Vec<Subnet>> {
        n.list_subnets(caller).await
    }
    async fn get(n: &Networks, caller: &Caller, id: &str) -> Result<Subnet> {
        n.get_subnet(caller, id).await
    }
    async fn create(n: &Networks, caller: &Caller, new: Fields) -> Result<Subnet> {
        n.create_subnet(caller, new).await
    }
    async fn update(n: &Networks, caller: &Caller, id: &str, change: Fields) -> Result<Subnet> {
        n.update_subnet(caller, id, change).await
    }
    async fn delete(n: &Networks, caller: &Caller, id: &str) -> Result<()> {
        n.delete_subnet(caller, id).await
    }
    async fn views(_: &Networks, _: &Caller, items: &[Subnet]) -> Result<Vec<Value>> {
        Ok(items.iter().map(views::subnet).collect())
    }
}

impl Resource for PortKind {
    const ONE: &'static str = "port";
    const MANY: &'static str = "ports";
    const PATH: &'static str = "ports";
    type Item = Port;
    type New = NewPort;
    type Change = PortUpdate;

    fn new(fields: Fields) -> Result<NewPort> {
        ports::new_port(fields)
    }
    fn change(fields: Fields) -> Result<PortUpdate> {
        ports::port_update(fields)
    }
    async fn list(n: &Networks, caller: &Caller) -> Result<Vec<Port>> {
        n.list_ports(caller).await
    }
    async fn get(n: &Networks, caller: &Caller, id: &str) -> Result<Port> {
        n.get_port(caller, id).await
    }
    async fn create(n: &Networks, caller: &Caller, new: NewPort) -> Result<Port> {
        n.create_port(caller, new).await
    }
    async fn update(n: &Networks, caller: &Caller, id: &str, change: PortUpdate) -> Result<Port> {
        n.update_port(caller, id, change).await
    }
    async fn delete(n: &Networks, caller: &Caller, id: &str) -> Result<()> {
        n.delete_port(caller, id).await
    }
    async fn views(_: &Networks, caller: &Caller, items: &[Port]) -> Result<Vec<Value>> {
        Ok(items.iter().map(|p| views::port(p, caller)).collect())
    }
}

impl Resource for GroupKind {
    const ONE: &'static str = "security_group";
    const MANY: &'static str = "security_groups";
    const PATH: &'static str = "security-groups";
    type Item = (SecurityGroup, Vec<Rule>);
    type New = Fields;
    type Change = Fields;

    fn new(fields: Fields) -> Result<Fields> {
        Ok(fields)
    }
    fn change(fields: Fields) -> Result<Fields> {
        Ok(fields)
    }
    async fn list(n: &Networks, caller: &Caller) -> Result<Vec<Self::Item>> {
        n.list_groups(caller).await
    }
    async fn get(n: &Networks, caller: &Caller, id: &str) -> Result<Self::Item> {
        n.get_group(caller, id).await
    }
    async fn create(n: &Networks, caller: &Caller, new: Fields) -> Result<Self::Item> {
        n.create_group(caller, new).await
    }
    async fn update(n: &Networks, caller: &Caller, id: &str, change: Fields) -> Result<Self::Item> {
        n.update_group(caller, id, change).await
    }
    async fn delete(n: &Networks, caller: &Caller, id: &str) -> Result<()> {
        n.delete_group(caller, id).await
    }
    async fn views(_: &Networks, _: &Caller, items: &[Self::Item]) -> Result<Vec<Value>> {
        Ok(items.iter().map(|(g, r)| views::group(g, r)).collect())
    }
}

impl Resource for RuleKind {
    const ONE: &'static str = "security_group_rule";
    const MANY: &'static str = "security_group_rules";
    const PATH: &'static str = "security-group-rules";
    type Item = Rule;
    type New = Fields;
    type Change = Fields;

    fn new(fields: Fields) -> Result<Fields> {
        Ok(fields)
    }
    fn change(fields: Fields) -> Result<Fields> {
        Ok(fields)
    }
    async fn list(n: &Networks, caller: &Caller) -> Result<Vec<Rule>> {
        n.list_rules(caller).await
    }
    async fn get(n: &Networks, caller: &Caller, id: &str) -> Result<Rule> {
        n.get_rule(caller, id).await
    }
    async fn create(n: &Networks, caller: &Caller, new: Fields) -> Result<Rule> {
        n.create_rule(caller, new).await
    }
    async fn update(n: &Networks, caller: &Caller, id: &str, change: Fields) -> Result<Rule> {
        // Only a rule's description changes.
        n.update_rule_description(caller, id, change).await
    }
    async fn delete(n: &Networks, caller: &Caller, id: &str) -> Result<()> {
        n.delete_rule(caller, id).await
    }
    async fn views(_: &Networks, _: &Caller, items: &[Rule]) -> Result<Vec<Value>> {
        Ok(items.iter().map(views::rule).collect())
    }
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
