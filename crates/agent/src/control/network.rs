//! The controller's side of a joined host's network agent: the changes it waits for, what
//! its host must build, its heartbeat and its status reports. A host is told only the
//! networks it has ports on (`HostState::for_joined_host`) and may report the status only
//! of ports and floating IPs it carries.

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::routing::{get, put};
use http::StatusCode;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_compute::Computes;
use onestack_network::desired::{self, HostState};

use super::api::HostCredential;
use super::work::WaitQuery;
use super::{NetworkChanges, NetworkHeartbeat, StatusReport};

/// The largest body of these calls (an address, a port's id).
const BODY_LIMIT: usize = 4 * 1024;

pub(super) fn routes() -> axum::Router<Arc<Computes>> {
    axum::Router::new()
        .route("/v1/hosts/{host}/network", get(host_state))
        .route("/v1/hosts/{host}/network/changes", get(changes))
        .route("/v1/hosts/{host}/network/heartbeat", put(heartbeat))
        .route("/v1/hosts/{host}/network/status", put(status))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Network errors here are the database's: the host tries again.
fn internal(error: onestack_network::error::Error) -> ApiError {
    ApiError::internal(error)
}

/// Answers at once when the count of network changes is not `after`, else at the next
/// change or after `wait` seconds (at most 30).
async fn changes(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path(host): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<NetworkChanges>, ApiError> {
    caller.speaks_for(&host)?;
    let networks = &computes.networks;
    let mut changes = networks.watch_changes();
    if *changes.borrow_and_update() == query.after {
        let _ = tokio::time::timeout(query.wait(), changes.changed()).await;
    }
    let generation = *changes.borrow();
    Ok(Json(NetworkChanges {
        generation,
        cloud: networks.cloud_id.clone(),
    }))
}

async fn host_state(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path(host): Path<String>,
) -> Result<Json<HostState>, ApiError> {
    caller.speaks_for(&host)?;
    let state = desired::for_host(&computes.networks.pool, &host)
        .await
        .map_err(internal)?;
    Ok(Json(state.for_joined_host()))
}

async fn heartbeat(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path(host): Path<String>,
    JsonBody(beat): JsonBody<NetworkHeartbeat>,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    let networks = &computes.networks;
    if let Some(ip) = beat.tunnel_ip
        && !desired::tunnel_address_free(&networks.pool, &host, ip)
            .await
            .map_err(internal)?
    {
        return Err(ApiError::bad_request(format!(
            "{ip} cannot be host {host}'s tunnel address: it must be a unicast address no \
             other host holds; set [network] local_ip to this host's own address"
        )));
    }
    let tunnel_ip = beat.tunnel_ip.map(|ip| ip.to_string());
    networks
        .record_agent(&host, tunnel_ip.as_deref())
        .await
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn status(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path(host): Path<String>,
    JsonBody(report): JsonBody<StatusReport>,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    let pool = &computes.networks.pool;
    let carried = desired::host_carries(pool, &host, report.what, &report.id)
        .await
        .map_err(internal)?;
    if !carried {
        return Err(ApiError::not_found(format!(
            "host {host} carries no {:?} {}",
            report.what, report.id
        )));
    }
    desired::report_status(pool, report.what, &report.id, report.up)
        .await
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}
