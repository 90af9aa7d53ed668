//! The metadata service at 169.254.169.254:80, served by this process inside every
//! namespace that carries the address: router namespaces (for the subnets on the router)
//! and the DHCP namespaces of networks no router serves.
//!
//! A guest is known only by what it cannot forge: the namespace its request arrived in
//! (which fixes the subnets) and its source address (port security and the router's rpf
//! rule keep it honest). That address must belong to a port on one of those subnets, the
//! port must be plugged into a server that lists it, and both must be in one project;
//! anything else is a 404, so one tenant never reads another's data.

mod listener;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use onestack_compute::metadata;
use onestack_db::Pool;
use onestack_netdrv::netns;
use onestack_netdrv::router::METADATA_ADDR;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use listener::{CappedListener, Peer};

/// Lookups in flight at once across all namespaces, so that guests asking for metadata
/// never take every database connection from the APIs.
const CONCURRENT_LOOKUPS: usize = 4;

/// How long a request waits for a lookup slot before it is answered 503.
const LOOKUP_WAIT: Duration = Duration::from_secs(10);

/// A namespace that serves metadata, and the subnets whose guests it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub namespace: String,
    pub subnets: Vec<String>,
}

/// The subnets a listener answers for, updated in place as interfaces come and go.
type SharedSubnets = Arc<RwLock<Vec<String>>>;

/// A listener just started: its subnets, its task and the sender that stops it.
type Started = (SharedSubnets, JoinHandle<()>, oneshot::Sender<()>);

struct Served {
    /// The namespace's identity when its listener was bound: a re-created namespace
    /// needs a new one.
    identity: (u64, u64),
    subnets: SharedSubnets,
    task: JoinHandle<()>,
    /// Dropping it stops the listener and closes its idle connections.
    _stop: oneshot::Sender<()>,
}

/// The listeners this agent runs, one per namespace.
pub struct MetadataService {
    pool: Pool,
    lookups: Arc<Semaphore>,
    served: HashMap<String, Served>,
}

#[derive(Clone)]
struct Context {
    pool: Pool,
    lookups: Arc<Semaphore>,
    subnets: SharedSubnets,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Bind(#[from] onestack_netdrv::Error),
    #[error("cannot serve on the bound socket: {0}")]
    Listener(#[from] std::io::Error),
}

impl MetadataService {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            lookups: Arc::new(Semaphore::new(CONCURRENT_LOOKUPS)),
            served: HashMap::new(),
        }
    }

    /// Stops the listeners of namespaces not in `keep` (before those namespaces go: a
    /// listening socket would keep a deleted namespace alive).
    pub fn retain(&mut self, keep: &HashSet<String>) {
        self.served.retain(|ns, _| keep.contains(ns));
    }

    /// Serves exactly `wanted` (namespaces that do not exist yet are left for a later
    /// pass); returns what could not be started.
    pub fn sync(&mut self, wanted: &[Scope]) -> Vec<String> {
        let keep: HashSet<String> = wanted.iter().map(|s| s.namespace.clone()).collect();
        self.retain(&keep);
        let mut problems = Vec::new();
        for scope in wanted {
            let Some(identity) = netns::namespace_identity(&scope.namespace) else {
                continue;
            };
            if let Some(served) = self.served.get(&scope.namespace)
                && served.identity == identity
                && !served.task.is_finished()
            {
                if let Ok(mut subnets) = served.subnets.write() {
                    subnets.clone_from(&scope.subnets);
                }
                continue;
            }
            self.served.remove(&scope.namespace);
            match self.start(scope) {
                Ok((subnets, task, stop)) => {
                    tracing::info!(ns = %scope.namespace, "metadata service listening");
                    self.served.insert(
                        scope.namespace.clone(),
                        Served {
                            identity,
                            subnets,
                            task,
                            _stop: stop,
                        },
                    );
                }
                Err(e) => problems.push(format!("metadata service in {}: {e}", scope.namespace)),
            }
        }
        problems
    }

    fn start(&self, scope: &Scope) -> Result<Started, StartError> {
        let std_listener =
            netns::bind_listener(&scope.namespace, SocketAddr::from((METADATA_ADDR, 80)))?;
        let listener = CappedListener::new(tokio::net::TcpListener::from_std(std_listener)?);
        let subnets = Arc::new(RwLock::new(scope.subnets.clone()));
        let context = Context {
            pool: self.pool.clone(),
            lookups: self.lookups.clone(),
            subnets: subnets.clone(),
        };
        let app = axum::Router::new().fallback(answer).with_state(context);
        let ns = scope.namespace.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<Peer>();
            let serving = axum::serve(listener, service).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                tracing::warn!(%ns, %error, "metadata service stopped");
            }
        });
        Ok((subnets, task, stop))
    }
}

async fn answer(
    State(context): State<Context>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    method: Method,
    uri: Uri,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "405 Method Not Allowed\n\nThe metadata service is read-only.\n",
        )
            .into_response();
    }
    let source = listener::canonical(peer.ip());
    let Ok(Ok(_slot)) = tokio::time::timeout(LOOKUP_WAIT, context.lookups.acquire()).await else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Unavailable\n\nThe metadata service is busy; try again.\n",
        );
    };
    let subnets = context
        .subnets
        .read()
        .map(|s| s.clone())
        .unwrap_or_default();
    match metadata::identify(&context.pool, &subnets, source).await {
        Ok(Some((server, net))) => match metadata::lookup(&server, &net, uri.path()) {
            Some(found) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, found.content_type)],
                found.body,
            )
                .into_response(),
            None => not_found(),
        },
        Ok(None) => {
            tracing::debug!(%source, "metadata request from an address no server holds here");
            not_found()
        }
        Err(error) => {
            tracing::warn!(%source, %error, "metadata lookup failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error\n\nThe metadata service could not read its data; try again.\n",
            )
        }
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "404 Not Found\n\nThe resource could not be found.\n",
    )
}
