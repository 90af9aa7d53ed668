//! The five handlers every Neutron resource has (list, show, create, update, delete),
//! written once over [`Resource`]: a resource says how its body is read, which operations
//! serve it and how it looks; the handlers do the HTTP.

use std::future::Future;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use http::StatusCode;
use onestack_api::body::JsonBody;
use onestack_api::{ApiError, AuthContext, BaseUrl, Fields};
use serde_json::Value;

use super::query::{self, Params};
use super::{Created, Reply, Shared, caller, href, one, resource_fields};
use crate::error::Result;
use crate::policy::Caller;
use crate::service::Networks;

/// One kind of Neutron resource.
pub(super) trait Resource: Send + Sync + 'static {
    /// The key of one in a body (`port`), of many in a listing (`ports`), and the URL
    /// segment of the collection (`security-groups`).
    const ONE: &'static str;
    const MANY: &'static str;
    const PATH: &'static str;
    type Item: Send + Sync;
    /// A create's and an update's input, as read from the body.
    type New: Send;
    type Change: Send;

    fn new(fields: Fields) -> Result<Self::New>;
    fn change(fields: Fields) -> Result<Self::Change>;
    fn list(n: &Networks, caller: &Caller) -> impl Future<Output = Result<Vec<Self::Item>>> + Send;
    fn get(
        n: &Networks,
        caller: &Caller,
        id: &str,
    ) -> impl Future<Output = Result<Self::Item>> + Send;
    fn create(
        n: &Networks,
        caller: &Caller,
        new: Self::New,
    ) -> impl Future<Output = Result<Self::Item>> + Send;
    fn update(
        n: &Networks,
        caller: &Caller,
        id: &str,
        change: Self::Change,
    ) -> impl Future<Output = Result<Self::Item>> + Send;
    fn delete(n: &Networks, caller: &Caller, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// The wire views of `items` (in one go, so a view that needs more reads them once).
    fn views(
        n: &Networks,
        caller: &Caller,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Value>>> + Send;
}

/// `/v2.0/<PATH>` and `/v2.0/<PATH>/{id}` with the five handlers of `R`.
pub(super) fn routes<R: Resource>(router: Router<Shared>) -> Router<Shared> {
    router
        .route(
            &format!("/v2.0/{}", R::PATH),
            get(list::<R>).post(create::<R>),
        )
        .route(
            &format!("/v2.0/{}/{{id}}", R::PATH),
            get(show::<R>).put(update::<R>).delete(delete::<R>),
        )
}

async fn view_of<R: Resource>(n: &Networks, caller: &Caller, item: R::Item) -> Result<Value> {
    let views = R::views(n, caller, std::slice::from_ref(&item)).await?;
    Ok(views.into_iter().next().unwrap_or(Value::Null))
}

async fn list<R: Resource>(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let caller = caller(&ctx)?;
    let items = R::list(&n, &caller).await?;
    let views = R::views(&n, &caller, &items).await?;
    Ok(Json(query::respond(
        views,
        &params,
        R::MANY,
        &href(&base, R::PATH),
    )?))
}

async fn show<R: Resource>(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let caller = caller(&ctx)?;
    let item = R::get(&n, &caller, &id).await?;
    Ok(one(R::ONE, view_of::<R>(&n, &caller, item).await?, &params))
}

async fn create<R: Resource>(
    State(n): State<Shared>,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let caller = caller(&ctx)?;
    let new = R::new(resource_fields(body, R::ONE)?)?;
    let item = R::create(&n, &caller, new).await?;
    let view = view_of::<R>(&n, &caller, item).await?;
    Ok((StatusCode::CREATED, one(R::ONE, view, &Vec::new())))
}

async fn update<R: Resource>(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let caller = caller(&ctx)?;
    let change = R::change(resource_fields(body, R::ONE)?)?;
    let item = R::update(&n, &caller, &id, change).await?;
    Ok(one(
        R::ONE,
        view_of::<R>(&n, &caller, item).await?,
        &Vec::new(),
    ))
}

async fn delete<R: Resource>(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    R::delete(&n, &caller(&ctx)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The five operations of a [`Resource`], delegated to the `Networks` methods named, for a
/// resource whose item, create input and update input are the types given.
macro_rules! operations {
    ($item:ty, $new:ty, $change:ty; $list:ident, $get:ident, $create:ident, $update:ident, $delete:ident) => {
        async fn list(n: &Networks, caller: &Caller) -> Result<Vec<$item>> {
            n.$list(caller).await
        }
        async fn get(n: &Networks, caller: &Caller, id: &str) -> Result<$item> {
            n.$get(caller, id).await
        }
        async fn create(n: &Networks, caller: &Caller, new: $new) -> Result<$item> {
            n.$create(caller, new).await
        }
        async fn update(n: &Networks, caller: &Caller, id: &str, change: $change) -> Result<$item> {
            n.$update(caller, id, change).await
        }
        async fn delete(n: &Networks, caller: &Caller, id: &str) -> Result<()> {
            n.$delete(caller, id).await
        }
    };
}

/// A resource's create and update inputs and the functions that read them from a body.
macro_rules! inputs {
    ($new:ty, $change:ty; $read_new:path, $read_change:path) => {
        type New = $new;
        type Change = $change;
        fn new(fields: Fields) -> Result<$new> {
            $read_new(fields)
        }
        fn change(fields: Fields) -> Result<$change> {
            $read_change(fields)
        }
    };
}

pub(super) use {inputs, operations};
