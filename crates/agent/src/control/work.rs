//! The controller's side of a joined host's compute work: the servers placed on it, the
//! outcome of each task, the images its guests boot from and their config drives. A host
//! reaches only its own servers (another host's are not found) and only the images they
//! use; what it writes back is limited to what a host decides
//! (`onestack_compute::ops::lifecycle::host_outcome`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::routing::{get, post, put};
use base64::Engine as _;
use http::{StatusCode, header};
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_compute::Computes;
use onestack_compute::model::Server;
use onestack_compute::ops::live_migrate::LiveReport;
use onestack_compute::states::TaskState;
use serde::Deserialize;

use super::api::{HostCredential, wire_error};
use super::{ActionEvent, Changes, ConfigDrive, LatestAction, Written};
use crate::compute::controller::{ImageFacts, ServerRecord};

/// The longest a host's wait for changes is held open.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The largest body of these calls but a snapshot's data (a server's record with its user
/// data, a console log's end).
const BODY_LIMIT: usize = 1024 * 1024;

pub(super) fn routes() -> axum::Router<Arc<Computes>> {
    axum::Router::new()
        .route("/v1/hosts/{host}/changes", get(changes))
        .route("/v1/hosts/{host}/servers", get(servers))
        .route(
            "/v1/hosts/{host}/servers/{id}",
            get(server).put(finish).delete(purge),
        )
        .route(
            "/v1/hosts/{host}/servers/{id}/latest-action",
            get(latest_action),
        )
        .route("/v1/hosts/{host}/servers/{id}/events", post(record_event))
        .route(
            "/v1/hosts/{host}/servers/{id}/config-drive",
            get(config_drive),
        )
        .route("/v1/hosts/{host}/servers/{id}/console", put(console))
        // Bounded by the server's disk size instead (`migration_disk_limit`).
        .route(
            "/v1/hosts/{host}/servers/{id}/migration-disk",
            get(migration_disk).put(hand_over),
        )
        .route(
            "/v1/hosts/{host}/servers/{id}/live-migration",
            put(live_migration),
        )
        .route("/v1/hosts/{host}/images/{id}", get(image).delete(discard))
        .route("/v1/hosts/{host}/images/{id}/file", get(image_file))
        // Not bounded by the body limit (a raw body is not): the image service's size cap
        // and the owner's quota bound it.
        .route("/v1/hosts/{host}/images/{id}/file", put(upload_snapshot))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// `?after=N&asks_after=A&wait=S` of a host's long polls (the network's has no asks).
#[derive(Deserialize)]
pub(super) struct WaitQuery {
    #[serde(default)]
    pub(super) after: u64,
    #[serde(default)]
    asks_after: u64,
    #[serde(default)]
    wait: u64,
}

impl WaitQuery {
    /// How long to hold the poll open: as asked, at most [`MAX_WAIT`].
    pub(super) fn wait(&self) -> Duration {
        Duration::from_secs(self.wait).min(MAX_WAIT)
    }
}

/// Answers at once when there were changes to the host's servers or console asks since
/// those counted in the query, else at the next one or after `wait` seconds (at most
/// [`MAX_WAIT`]).
async fn changes(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path(host): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<Changes>, ApiError> {
    caller.speaks_for(&host)?;
    let mut changes = computes.watch_changes();
    let mut asks = computes.watch_console_asks();
    let deadline = tokio::time::Instant::now() + query.wait();
    loop {
        // Marked seen before the host's count is read: a change after it wakes the wait.
        changes.borrow_and_update();
        let unchanged = computes.host_generation(&host) == query.after
            && *asks.borrow_and_update() == query.asks_after;
        if !unchanged {
            break;
        }
        // Another host's change wakes this wait too; it goes on waiting.
        let woken = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                _ = changes.changed() => {}
                _ = asks.changed() => {}
            }
        })
        .await;
        if woken.is_err() {
            break;
        }
    }
    let asks = *asks.borrow();
    Ok(Json(Changes {
        generation: computes.host_generation(&host),
        asks,
        consoles: computes.console_requests(&host),
    }))
}

async fn servers(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path(host): Path<String>,
) -> Result<Json<Vec<ServerRecord>>, ApiError> {
    caller.speaks_for(&host)?;
    let records = computes.servers_on_host(&host).await.map_err(wire_error)?;
    Ok(Json(records.into_iter().map(ServerRecord::from).collect()))
}

async fn server(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
) -> Result<Json<ServerRecord>, ApiError> {
    caller.speaks_for(&host)?;
    let (server, revision) = server_on(&computes, &host, &id).await?;
    Ok(Json(ServerRecord { server, revision }))
}

async fn finish(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
    JsonBody(outcome): JsonBody<ServerRecord>,
) -> Result<Json<Written>, ApiError> {
    caller.speaks_for(&host)?;
    if outcome.server.id != id {
        return Err(ApiError::bad_request("the body is another server's"));
    }
    let written = computes
        .finish_from_host(&host, outcome.server, outcome.revision)
        .await
        .map_err(wire_error)?;
    Ok(Json(Written { written }))
}

async fn purge(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    computes
        .purge_from_host(&host, &id)
        .await
        .map_err(wire_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn latest_action(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
) -> Result<Json<LatestAction>, ApiError> {
    caller.speaks_for(&host)?;
    server_on(&computes, &host, &id).await?;
    Ok(Json(LatestAction {
        request_id: computes.latest_action(&id).await,
    }))
}

async fn record_event(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
    JsonBody(event): JsonBody<ActionEvent>,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    server_on(&computes, &host, &id).await?;
    if !event.event.starts_with("compute_") || event.event.len() > 64 {
        return Err(ApiError::bad_request("not an event of a compute task"));
    }
    // Only the action being carried out gets events: a host cannot grow old ones.
    if computes.latest_action(&id).await.as_deref() != Some(event.request_id.as_str()) {
        return Err(ApiError::conflict(
            "events are recorded only for the server's latest action",
        ));
    }
    computes
        .record_event(
            &host,
            &id,
            &event.request_id,
            &event.event,
            event.started,
            event.ok,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn config_drive(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
) -> Result<Json<ConfigDrive>, ApiError> {
    caller.speaks_for(&host)?;
    let (server, _) = server_on(&computes, &host, &id).await?;
    let files = onestack_compute::metadata::config_drive_files(&computes.pool, &server)
        .await
        .map_err(wire_error)?;
    let engine = base64::engine::general_purpose::STANDARD;
    Ok(Json(ConfigDrive {
        files: files
            .into_iter()
            .map(|(path, bytes)| (path, engine.encode(bytes)))
            .collect(),
    }))
}

/// The end of a guest's serial log, asked for through [`changes`].
async fn console(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
    log: String,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    server_on(&computes, &host, &id).await?;
    computes.console_answered(&host, &id, &log);
    Ok(StatusCode::NO_CONTENT)
}

async fn image(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
) -> Result<Json<ImageFacts>, ApiError> {
    caller.speaks_for(&host)?;
    let facts = image_for(&computes, &host, &id).await?;
    Ok(Json(facts))
}

/// The image's data, streamed.
async fn image_file(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    caller.speaks_for(&host)?;
    image_for(&computes, &host, &id).await?;
    let (_, path) = computes
        .images
        .open_data(&id)
        .await
        .map_err(ApiError::from)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    stream_file(file).await
}

/// An open file as an `application/octet-stream` response, streamed.
async fn stream_file(file: tokio::fs::File) -> Result<axum::response::Response, ApiError> {
    let length = file.metadata().await.map_err(ApiError::internal)?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    axum::response::Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, length)
        .body(body)
        .map_err(ApiError::internal)
}

/// A snapshot's data: only for the image a snapshot of one of the host's servers fills.
async fn upload_snapshot(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    snapshot_of(&computes, &host, &id, true).await?;
    computes
        .images
        .upload_from_stream(&id, body.into_data_stream())
        .await
        .map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A host's step in a live migration of one of its servers (`Computes::live_migration_step`
/// checks which host may say what).
async fn live_migration(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
    JsonBody(report): JsonBody<LiveReport>,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    computes
        .live_migration_step(&host, &id, report)
        .await
        .map_err(wire_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A migrating server's root disk from the host it leaves (only while that host is handing
/// it over), kept by the controller; then the server is placed on its new host.
async fn hand_over(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    let (server, _) = server_on(&computes, &host, &id).await?;
    let handing_over = server.task_state == Some(TaskState::ResizeMigrating)
        && server.migration.as_ref().is_some_and(|m| m.source == host);
    if !handing_over {
        return Err(ApiError::conflict(format!(
            "server {id} is not being migrated from host {host}"
        )));
    }
    let limit = migration_disk_limit(&computes, &server).await;
    let kept = computes.migration_disk(&id);
    receive_file(body, &kept, limit).await?;
    if let Err(error) = computes.hand_over(&host, &id).await {
        computes.remove_migration_disk(&id).await;
        return Err(wire_error(error));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The root disk a migrating server brings to its new host (only that host, while it
/// builds the guest).
async fn migration_disk(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    caller.speaks_for(&host)?;
    let (server, _) = server_on(&computes, &host, &id).await?;
    if server.task_state != Some(TaskState::ResizeFinish) {
        return Err(ApiError::conflict(format!(
            "server {id} is not being migrated to host {host}"
        )));
    }
    let file = tokio::fs::File::open(computes.migration_disk(&id))
        .await
        .map_err(|_| ApiError::not_found(format!("no migrated disk of server {id}")))?;
    stream_file(file).await
}

/// The most a migrating server's disk may take: its flavor's root disk (or its image's
/// size, for a flavor without one) and a GiB of qcow2 metadata.
async fn migration_disk_limit(computes: &Computes, server: &Server) -> u64 {
    const GIB: u64 = 1 << 30;
    let image_size = match server.flavor.disk {
        0 => ImageFacts::read(&computes.images, &server.image_id)
            .await
            .map_or(0, |facts| u64::try_from(facts.virtual_size).unwrap_or(0)),
        _ => 0,
    };
    (server.flavor.disk * GIB).max(image_size) + GIB
}

/// Writes `body` to `dest` (through a temporary file beside it), refusing more than `limit`
/// bytes; nothing is left behind on failure.
async fn receive_file(body: Body, dest: &std::path::Path, limit: u64) -> Result<(), ApiError> {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(ApiError::internal)?;
    }
    // Its own temporary file: a retried upload never removes another's.
    let partial = dest.with_extension(format!("part-{}", onestack_db::ids::uuid()));
    let outcome = async {
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(ApiError::internal)?;
        let mut stream = body.into_data_stream();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("the disk's upload broke off: {e}")))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(ApiError::too_large(format!(
                    "a migrating server's disk may take at most {limit} bytes"
                )));
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        file.sync_all().await.map_err(ApiError::internal)?;
        tokio::fs::rename(&partial, dest)
            .await
            .map_err(ApiError::internal)
    }
    .await;
    if outcome.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    outcome
}

/// Removes a snapshot's image that never got its data.
async fn discard(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path((host, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    snapshot_of(&computes, &host, &id, false).await?;
    computes.images.discard(&id).await.map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// One of `host`'s servers and its revision; another host's or a missing one is not found.
async fn server_on(computes: &Computes, host: &str, id: &str) -> Result<(Server, i64), ApiError> {
    match computes
        .server_on_host(host, id)
        .await
        .map_err(wire_error)?
    {
        Some(record) => Ok((record.doc, record.revision)),
        None => Err(ApiError::not_found(format!(
            "server {id} is not on host {host}"
        ))),
    }
}

/// An image a server on `host` boots, rebuilds or rescues from, or the kernel or ramdisk
/// such an image names if that one is public or the naming image's owner's (the rule the
/// agent applies too: the property is the owner's to set, and must not hand a host another
/// project's private image); any other is not found.
async fn image_for(computes: &Computes, host: &str, id: &str) -> Result<ImageFacts, ApiError> {
    let servers = computes.servers_on_host(host).await.map_err(wire_error)?;
    let mut used: Vec<&str> = servers
        .iter()
        .flat_map(|r| {
            [
                Some(r.doc.image_id.as_str()),
                r.doc.pending_image.as_deref(),
            ]
        })
        .flatten()
        .filter(|i| !i.is_empty())
        .collect();
    used.sort_unstable();
    used.dedup();
    let allowed = used.binary_search(&id).is_ok() || named_by(computes, &used, id).await;
    if !allowed {
        return Err(ApiError::not_found(format!(
            "image {id} is used by no server on host {host}"
        )));
    }
    ImageFacts::read(&computes.images, id)
        .await
        .map_err(ApiError::from)
}

/// Whether one of the `used` images names `id` as its kernel or ramdisk, and may.
async fn named_by(computes: &Computes, used: &[&str], id: &str) -> bool {
    let Ok((named, _)) = computes.images.open_data(id).await else {
        return false;
    };
    let shared = matches!(named.visibility.as_str(), "public" | "community");
    for booted in used {
        // Only the properties: no need to read the data's header for this.
        let Ok((image, _)) = computes.images.open_data(booted).await else {
            continue;
        };
        let names = |key: &str| image.properties.get(key).and_then(|v| v.as_str()) == Some(id);
        if (names("kernel_id") || names("ramdisk_id")) && (shared || named.owner == image.owner) {
            return true;
        }
    }
    false
}

/// Checks that `id` is the image a server on `host` snapshots into (`snapshotting`: the
/// snapshot is being taken now, not merely pending behind a delete).
async fn snapshot_of(
    computes: &Computes,
    host: &str,
    id: &str,
    snapshotting: bool,
) -> Result<(), ApiError> {
    let servers = computes.servers_on_host(host).await.map_err(wire_error)?;
    let found = servers.iter().any(|r| {
        r.doc.pending_image.as_deref() == Some(id)
            && (!snapshotting || r.doc.task_state == Some(TaskState::ImageSnapshot))
    });
    if found {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "image {id} is no snapshot of a server on host {host}"
        )))
    }
}
