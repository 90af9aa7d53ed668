//! Routers and floating IPs as [`Resource`]s (their five handlers are `crud`'s), and the
//! router interface actions.

use axum::Json;
use axum::extract::{Path, State};
use onestack_api::body::JsonBody;
use onestack_api::{AuthContext, Fields};
use serde_json::Value;

use super::crud::{Resource, inputs, operations};
use super::{Reply, Shared, caller};
use super::{floating_ips, routers};
use crate::error::Result;
use crate::ops::floating_ips::FloatingIpView;
use crate::ops::l3_input::{FloatingIpUpdate, NewFloatingIp, NewRouter, RouterUpdate};
use crate::ops::routers::RouterView;
use crate::policy::Caller;
use crate::service::Networks;
use crate::views;

pub(super) struct RouterKind;
pub(super) struct FloatingIpKind;

impl Resource for RouterKind {
    const ONE: &'static str = "router";
    const MANY: &'static str = "routers";
    const PATH: &'static str = "routers";
    type Item = RouterView;
    inputs!(NewRouter, RouterUpdate; routers::new_router, routers::router_update);
    operations!(RouterView, NewRouter, RouterUpdate;
        list_routers, get_router, create_router, update_router, delete_router);
    async fn views(_: &Networks, caller: &Caller, items: &[RouterView]) -> Result<Vec<Value>> {
        Ok(items.iter().map(|r| views::router(r, caller)).collect())
    }
}

impl Resource for FloatingIpKind {
    const ONE: &'static str = "floatingip";
    const MANY: &'static str = "floatingips";
    const PATH: &'static str = "floatingips";
    type Item = FloatingIpView;
    inputs!(NewFloatingIp, FloatingIpUpdate; floating_ips::new_floating_ip, floating_ips::floating_ip_update);
    operations!(FloatingIpView, NewFloatingIp, FloatingIpUpdate;
        list_floating_ips, get_floating_ip, create_floating_ip, update_floating_ip, delete_floating_ip);
    async fn views(_: &Networks, _: &Caller, items: &[FloatingIpView]) -> Result<Vec<Value>> {
        Ok(items.iter().map(views::floating_ip).collect())
    }
}

pub async fn add_router_interface(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let info = n
        .add_router_interface(&caller(&ctx)?, &id, routers::interface(body)?)
        .await?;
    Ok(Json(views::router_interface(&info)))
}

pub async fn remove_router_interface(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let info = n
        .remove_router_interface(&caller(&ctx)?, &id, routers::interface(body)?)
        .await?;
    Ok(Json(views::router_interface(&info)))
}
