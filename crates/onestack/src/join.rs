//! Hosts joining a cloud: `onestack join-token` on the controller prints a single-use
//! token; `onestack join URL --token T` on a new host trades it for the host's own
//! credential (kept in its data directory, 0600) and runs the host's agent, which reports
//! to the controller over the agent protocol (`onestack_agent::control`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use onestack_agent::control::client::ControlClient;
use onestack_agent::control::joined::{JoinedHost, NetworkSetup};
use onestack_compute::ops::membership::{JoinToken, Membership};
use serde::{Deserialize, Serialize};

use crate::{Config, files};

/// The joined host's credential file in its data directory.
pub const HOST_CREDENTIAL: &str = "host-credential.json";

/// What a joined host keeps to speak to its controller again after a restart.
#[derive(Serialize, Deserialize)]
struct SavedCredential {
    url: String,
    host: String,
    credential: String,
}

/// A new join token from the controller's database, good for `ttl`.
pub async fn issue_token(config: &Config, ttl: Duration) -> anyhow::Result<JoinToken> {
    let pool = crate::server::open_database(config).await.context(
        "cannot open the control database (run this on the controller, with its config)",
    )?;
    let membership = Membership::new(pool, config.network.host_name());
    Ok(membership.issue_join_token(ttl).await?)
}

/// How `onestack join` was asked to run.
pub struct JoinOptions {
    /// The controller's public URL.
    pub url: String,
    /// A join token; without one the credential saved by an earlier join is used.
    pub token: Option<String>,
    /// This host's name in the cloud; the configured or system host name by default.
    pub name: Option<String>,
}

/// Joins (or rejoins with the saved credential) and runs this host's agent until a signal,
/// or until the controller no longer knows this host.
pub async fn run(config: Config, options: JoinOptions) -> anyhow::Result<()> {
    let data_dir = config.data_dir();
    files::make_private_dir(&data_dir)
        .with_context(|| format!("cannot prepare the data directory {}", data_dir.display()))?;
    let saved_at = data_dir.join(HOST_CREDENTIAL);
    let client = ControlClient::new(&options.url);
    let saved = match &options.token {
        Some(token) => {
            let host = options
                .name
                .clone()
                .unwrap_or_else(|| config.network.host_name());
            let joined = client.join(token, &host).await?;
            let saved = SavedCredential {
                url: client.url().to_owned(),
                host: joined.host,
                credential: joined.credential,
            };
            files::write_private(&saved_at, &serde_json::to_string(&saved)?)?;
            println!("joined {} as host {}", saved.url, saved.host);
            saved
        }
        None => read_saved(&saved_at)?,
    };
    let driver = crate::server::compute_driver(&config, &data_dir)?;
    let agent = JoinedHost {
        client: ControlClient::new(&saved.url).with_credential(&saved.credential),
        host: saved.host.clone(),
        compute: config.compute.clone(),
        instances_dir: data_dir.join("compute").join("instances"),
        work_dir: data_dir.join("compute"),
        local_ip: config.network.local_ip.clone(),
        network: network_setup(&config),
        plugs_ports: Default::default(),
    };
    let builds = if agent.network.is_some() {
        "the guests placed on it and their ports"
    } else {
        "the guests placed on it (without ports)"
    };
    println!(
        "host {} reports to {} every {} s and builds {builds}; stop with Ctrl-C",
        saved.host, saved.url, config.compute.report_interval
    );
    tokio::select! {
        ended = agent.run(driver) => ended.with_context(|| format!(
            "host {} can no longer speak to {}; the controller's admin can let it join again \
             (`onestack join-token`, then `onestack join {} --token …` here)",
            saved.host, saved.url, saved.url
        )),
        () = crate::server::wait_for_signal() => Ok(()),
    }
}

/// The network agent's setup, when it may run here: configured, and as root.
fn network_setup(config: &Config) -> Option<NetworkSetup> {
    if !config.network.agent {
        return None;
    }
    if !onestack_agent::has_privileges() {
        eprintln!(
            "the network agent is off: building bridges, taps and firewall rules needs root \
             (CAP_NET_ADMIN); this host takes only servers without ports (--nic none)"
        );
        return None;
    }
    let local_ip = &config.network.local_ip;
    if !local_ip.is_empty() && local_ip.parse::<std::net::IpAddr>().is_err() {
        eprintln!(
            "the network agent is off: [network] local_ip {local_ip:?} is not an address; \
             set it to this host's address on the network between the hosts"
        );
        return None;
    }
    Some(NetworkSetup {
        config: config.network.clone(),
        runtime_dir: crate::RUNTIME_DIR.into(),
    })
}

fn read_saved(path: &Path) -> anyhow::Result<SavedCredential> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "this host has not joined a cloud ({} is missing): run `onestack join-token` on \
             the controller, then `onestack join URL --token TOKEN` here",
            path.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is damaged: join again", path.display()))
}
