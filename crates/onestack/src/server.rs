//! Wiring: opens the data directory and database, bootstraps, and serves every API on one
//! listener, each under its own prefix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use onestack_agent::AgentHandle;
use onestack_api::url::PublicUrl;
use onestack_api::{TokenValidator, error::not_found};
use onestack_compute::Computes;
use onestack_identity::bootstrap::CatalogService;
use onestack_identity::{Identity, Validator};
use onestack_image::Images;
use onestack_network::Networks;
use onestack_volume::Volumes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::Layer;

use crate::config::Config;
use crate::files;

/// The services onestack serves, as they appear in the catalog.
pub const SERVICES: &[CatalogService] = &[
    CatalogService {
        service_type: "identity",
        name: "keystone",
        description: "OpenStack Identity (onestack)",
        path: "/identity/v3",
    },
    CatalogService {
        service_type: "image",
        name: "glance",
        description: "OpenStack Image (onestack)",
        path: "/image",
    },
    CatalogService {
        service_type: "compute",
        name: "nova",
        description: "OpenStack Compute (onestack)",
        path: "/compute/v2.1",
    },
    CatalogService {
        service_type: "network",
        name: "neutron",
        description: "OpenStack Networking (onestack)",
        path: "/networking",
    },
    // Cinder's service type and the alias Nova and older clients look up, one URL.
    CatalogService {
        service_type: "block-storage",
        name: "cinder",
        description: "OpenStack Block Storage (onestack)",
        path: "/volume/v3/$(project_id)s",
    },
    CatalogService {
        service_type: "volumev3",
        name: "cinderv3",
        description: "OpenStack Block Storage v3 (onestack)",
        path: "/volume/v3/$(project_id)s",
    },
];

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}\n{hint}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error(
        "cannot use the data directory {path}: {source}\nchoose another with --data-dir DIR or ONESTACK_DATA_DIR"
    )]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] onestack_db::DbError),
    #[error("cannot set up the key repositories: {0}")]
    Keys(#[from] onestack_identity::fernet::KeyError),
    #[error("{0}")]
    Config(String),
    #[error("cannot open the image store: {0}")]
    Images(std::io::Error),
    #[error("cannot start the network agent: {0}")]
    Network(String),
    #[error("cannot set up the compute service: {0}")]
    Compute(String),
    #[error("cannot set up the block storage service: {0}")]
    Volume(String),
    #[error("cannot bootstrap the identity service: {0}")]
    Bootstrap(#[from] onestack_identity::error::Error),
}

/// A server that is accepting requests.
pub struct Running {
    pub addr: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub openrc: PathBuf,
    pub admin_created: bool,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    agent: Option<AgentHandle>,
    /// This cloud's directory under [`RUNTIME_DIR`] while the network agent runs.
    runtime_dir: Option<PathBuf>,
    compute_agent: Option<AgentHandle>,
    volume_agent: Option<AgentHandle>,
    /// The services' routes as mounted, for [`Running::mounted_paths`].
    routes: Router,
}

impl Running {
    /// Every path pattern the services mount, under their prefixes (`/identity/v3/users`).
    pub fn mounted_paths(&self) -> Vec<String> {
        onestack_api::routes::mounted_paths(&self.routes)
    }

    /// Every (method, path pattern) the services mount (`GET`, `/identity/v3/users`).
    pub fn mounted_routes(&self) -> Vec<(String, String)> {
        onestack_api::routes::mounted_routes(&self.routes)
    }

    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(agent) = self.compute_agent.take() {
            agent.stop().await;
        }
        if let Some(agent) = self.volume_agent.take() {
            agent.stop().await;
        }
        if let Some(agent) = self.agent.take() {
            agent.stop().await;
        }
        // DHCP servers keep running for the guests across a restart, with their files; a
        // cloud that has none leaves nothing under /run (remove_dir refuses a full one).
        if let Some(dir) = self.runtime_dir.take() {
            let _ = std::fs::remove_dir(dir.join("network"));
            let _ = std::fs::remove_dir(&dir);
        }
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn until_signalled(self) -> std::io::Result<()> {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        self.stop().await
    }
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn trim_trailing_slash(mut request: axum::extract::Request) -> axum::extract::Request {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rebuilt = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// Makes the data directory if needed, private to its owner (it holds the database with
/// password hashes, keys and user data), and checks that we can write to it.
fn check_writable(dir: &Path) -> Result<(), StartError> {
    files::make_private_dir(dir).map_err(|source| StartError::DataDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// The control database the configuration names: PostgreSQL at `database.url`, else
/// SQLite in the data directory. Migrated to this version.
pub async fn open_database(config: &Config) -> Result<onestack_db::Pool, onestack_db::DbError> {
    if config.database.url.is_empty() {
        onestack_db::open_sqlite(&config.data_dir().join("onestack.db")).await
    } else {
        onestack_db::open_postgres(&config.database.url).await
    }
}

/// Starts the cloud: everything is ready to serve when this returns.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let addr = config.server.listen;
    // Bind first: a port conflict is the most common start-up failure and should be instant.
    let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Listen {
        addr,
        hint: match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the port is in use (is onestack already running?); choose another with --listen ADDR:PORT"
            }
            std::io::ErrorKind::PermissionDenied => "ports below 1024 need root; choose another with --listen ADDR:PORT",
            _ => "check the address given with --listen ADDR:PORT",
        },
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr,
        source,
        hint: "",
    })?;
    let mut config = config;
    config.server.listen = addr;
    let data_dir = config.data_dir();
    check_writable(&data_dir)?;
    let pool = open_database(&config).await?;
    onestack_identity::password_rules::check_config(&config.identity)
        .map_err(StartError::Config)?;
    let identity = Arc::new(Identity::new(pool, config.identity.clone(), &data_dir)?);
    let public_url = config.public_url();
    let password = files::admin_password(&data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let outcome =
        onestack_identity::bootstrap::run(&identity, &public_url, SERVICES, &password).await?;
    let auth_url = format!("{public_url}/identity/v3");
    let openrc = files::write_client_files(&data_dir, &auth_url, &password).map_err(|source| {
        StartError::DataDir {
            path: data_dir.clone(),
            source,
        }
    })?;

    let images = Arc::new(
        Images::open(identity.pool.clone(), config.image.clone(), &data_dir)
            .await
            .map_err(StartError::Images)?,
    );
    let cloud_id = files::cloud_id(&data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let networks = Arc::new(
        Networks::new(identity.pool.clone(), config.network.clone()).with_cloud_id(&cloud_id),
    );
    if config.network.agent && onestack_agent::has_privileges() {
        onestack_agent::retire_legacy_dhcp(&data_dir.join("network")).await;
    }
    let agent = start_agent(&config, &networks, &cloud_id)?;
    let volumes = Arc::new(Volumes::new(
        identity.pool.clone(),
        config.volume.clone(),
        networks.host.clone(),
        images.clone(),
    ));
    volumes
        .seed_default_type()
        .await
        .map_err(|e| StartError::Volume(e.to_string()))?;
    let volume_agent = start_volume_agent(&config, &volumes, &data_dir)?;
    let computes = Arc::new(Computes::new(
        config.compute.clone(),
        networks.clone(),
        images.clone(),
        volumes.clone(),
        data_dir.join("compute").join("instances"),
    ));
    computes
        .seed_flavors()
        .await
        .map_err(|e| StartError::Compute(e.to_string()))?;
    computes
        .release_orphan_ports()
        .await
        .map_err(|e| StartError::Compute(e.to_string()))?;
    let attacher: Arc<dyn onestack_volume::ops::server_attach::ServerAttacher> = computes.clone();
    volumes.set_attacher(&attacher);
    computes
        .repair_attachments()
        .await
        .map_err(|e| StartError::Compute(e.to_string()))?;
    let compute_agent = start_compute_agent(&config, &computes, &data_dir)?;
    let validator: Arc<dyn TokenValidator> = Arc::new(Validator(identity.clone()));
    let configured_url =
        PublicUrl((!config.server.public_url.is_empty()).then(|| public_url.clone()));
    let routes = Router::new()
        .nest("/identity", onestack_identity::router(identity))
        .nest("/image", onestack_image::router(images))
        .nest("/networking", onestack_network::router(networks.clone()))
        .nest("/compute", onestack_compute::router(computes.clone()))
        .nest("/volume", onestack_volume::router(volumes));
    let mounted = onestack_api::routes::mounted_routes(&routes);
    let routes = routes.merge(crate::openapi::router(mounted));
    // The agent protocol is not an OpenStack API: hosts authenticate with their own
    // credential, and it is in no OpenAPI document.
    let app = routes
        .clone()
        .nest(
            onestack_agent::control::PREFIX,
            onestack_agent::control::api::router(computes),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(move |r, n| {
            onestack_api::auth::layer(validator.clone(), r, n)
        }))
        .layer(axum::Extension(configured_url))
        .layer(middleware::from_fn(onestack_api::request_id::layer));

    // Trailing slashes are trimmed before routing: clients use both `/v3` and `/v3/`; a
    // project segment in a block storage URL is taken out, so its routes are written once.
    let app = tower::util::MapRequestLayer::new(|r| {
        onestack_volume::take_url_project(trim_trailing_slash(r))
    })
    .layer(app);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Replies are written whole: without TCP_NODELAY a small reply's last segment waits
        // for the client's delayed ACK (40 ms per small image download on keep-alive).
        axum::serve(
            axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.await;
        })
        .await
    });
    Ok(Running {
        addr,
        public_url,
        data_dir,
        openrc,
        admin_created: outcome.admin_created,
        shutdown: Some(tx),
        task,
        runtime_dir: agent
            .is_some()
            .then(|| Path::new(RUNTIME_DIR).join(&cloud_id)),
        agent,
        compute_agent,
        volume_agent,
        routes,
    })
}

/// Starts this host's agent when configured and permitted; the API works without it.
fn start_agent(
    config: &Config,
    networks: &Networks,
    cloud_id: &str,
) -> Result<Option<AgentHandle>, StartError> {
    if !config.network.agent {
        return Ok(None);
    }
    if !onestack_agent::has_privileges() {
        tracing::warn!(
            "the network agent is off: building bridges, taps and firewall rules needs root \
             (CAP_NET_ADMIN); run onestack as root, or set [network] agent = false to silence this"
        );
        return Ok(None);
    }
    let host = config.network.host_name();
    let owner = onestack_agent::Owner::new(cloud_id, &host).map_err(|e| {
        StartError::Network(format!(
            "{e}: set [network] host to a name of letters, digits, '-', '_' and '.'"
        ))
    })?;
    let state_dir =
        onestack_agent::network_state_dir(Path::new(RUNTIME_DIR), &[cloud_id, "network"]).map_err(
            |e| StartError::Network(format!("cannot make {RUNTIME_DIR}/{cloud_id}/network: {e}")),
        )?;
    onestack_agent::spawn(
        networks.pool.clone(),
        config.network.clone(),
        state_dir,
        owner,
        networks.changes(),
    )
    .map(Some)
    .map_err(|e| StartError::Network(e.to_string()))
}

/// Starts this host's volume agent (it keeps the volume files under `<data dir>/volumes`).
fn start_volume_agent(
    config: &Config,
    volumes: &Arc<Volumes>,
    data_dir: &Path,
) -> Result<Option<AgentHandle>, StartError> {
    if !config.volume.agent {
        return Ok(None);
    }
    let dir = data_dir.join("backups");
    let backups = onestack_virt::FileBackups::new(dir.clone())
        .map_err(|e| StartError::Volume(format!("cannot prepare {}: {e}", dir.display())))?;
    Ok(Some(onestack_agent::volume::spawn(
        volumes.clone(),
        volume_files(data_dir)?,
        Arc::new(backups),
    )))
}

/// Where this host keeps its volumes and snapshots (the volume agent makes them, the
/// compute agent plugs them into guests).
fn volume_files(data_dir: &Path) -> Result<onestack_virt::VolumeFiles, StartError> {
    let dir = data_dir.join("volumes");
    onestack_virt::VolumeFiles::new(dir.clone())
        .map_err(|e| StartError::Volume(format!("cannot prepare {}: {e}", dir.display())))
}

/// Where the agent keeps its DHCP servers' files and pid files: under `/run` (gone with
/// the processes at reboot), one directory per cloud, open to the unprivileged user dnsmasq
/// drops to — the data directory itself is private to us (0700).
pub const RUNTIME_DIR: &str = "/run/onestack";

/// Starts this host's compute agent with the configured driver.
fn start_compute_agent(
    config: &Config,
    computes: &Arc<Computes>,
    data_dir: &Path,
) -> Result<Option<AgentHandle>, StartError> {
    if !config.compute.agent {
        return Ok(None);
    }
    Ok(Some(onestack_agent::spawn_compute(
        computes.clone(),
        compute_driver(config, data_dir)?,
        volume_files(data_dir)?,
    )))
}

/// The configured hypervisor driver, its guests under `<data dir>/compute`.
pub(crate) fn compute_driver(
    config: &Config,
    data_dir: &Path,
) -> Result<onestack_virt::Driver, StartError> {
    let c = &config.compute;
    let driver = match c.driver.as_str() {
        "fake" => onestack_virt::Driver::fake(),
        "qemu" => {
            let choice = match c.accel.as_str() {
                "kvm" => onestack_virt::AccelChoice::Kvm,
                "tcg" => onestack_virt::AccelChoice::Tcg,
                "auto" => onestack_virt::AccelChoice::Auto,
                other => {
                    return Err(StartError::Compute(format!(
                        "[compute] accel = \"{other}\" is not one of auto, kvm, tcg"
                    )));
                }
            };
            let accel = onestack_virt::detect_accel(choice);
            tracing::info!(accel = accel.as_str(), "compute: QEMU guests");
            let dir = data_dir.join("compute");
            onestack_virt::Driver::qemu(onestack_virt::QemuConfig {
                instances_dir: dir.join("instances"),
                base_dir: dir.join("base"),
                accel,
                qemu_binary: c.qemu_binary.clone(),
                shutdown_timeout: std::time::Duration::from_secs(c.shutdown_timeout_seconds),
            })
            .map_err(|e| StartError::Compute(format!("cannot prepare {}: {e}", dir.display())))?
        }
        other => {
            return Err(StartError::Compute(format!(
                "[compute] driver = \"{other}\" is not one of qemu, fake"
            )));
        }
    };
    Ok(driver)
}
