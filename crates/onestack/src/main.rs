//! `onestack`: OpenStack's core services in one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use onestack::{Config, files, start};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "onestack", version, about = "OpenStack's core services in one binary", long_about = None)]
struct Cli {
    /// Config file (TOML); `onestack config` prints every option.
    #[arg(long, global = true, env = "ONESTACK_CONFIG")]
    config: Option<PathBuf>,
    /// Directory holding all state.
    #[arg(long, global = true, env = "ONESTACK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the all-in-one cloud in the foreground (bootstraps it on first start).
    Up {
        /// Address to listen on, e.g. 0.0.0.0:5000.
        #[arg(long, env = "ONESTACK_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Same as `up`, without the welcome text.
    Serve {
        #[arg(long, env = "ONESTACK_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print an openrc file to `source` for the openstack CLI.
    Openrc {
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long, default_value = "admin")]
        project: String,
    },
    /// Manage the Fernet keys that seal tokens.
    TokenKeys {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Print the documented configuration with every default.
    Config,
    /// On the controller: print a single-use token with which one more host can join.
    JoinToken {
        /// Seconds the token stays good.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// On a new host: join the cloud whose controller is at URL and run this host's agent
    /// (again after a restart: without --token the saved credential is used).
    Join {
        /// The controller's public URL, e.g. http://10.0.0.1:5000.
        url: String,
        /// The token `onestack join-token` printed on the controller.
        #[arg(long, env = "ONESTACK_JOIN_TOKEN")]
        token: Option<String>,
        /// This host's name in the cloud (default: the system host name).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyAction {
    /// Create the key repository if it is missing.
    Setup,
    /// Rotate: the staged key becomes primary; the oldest keys beyond max_active_keys go.
    /// Tokens sealed with a removed key stop validating. A running server picks this up.
    Rotate,
}

fn load_config(cli: &Cli, listen: Option<std::net::SocketAddr>) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.data.dir = dir.clone();
    }
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    Ok(config)
}

fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn up(config: Config, welcome: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let running = start(config).await?;
    tracing::info!(addr = %running.addr, millis = started.elapsed().as_millis() as u64, "onestack is serving");
    if welcome {
        println!(
            "onestack {} is up at {}",
            env!("CARGO_PKG_VERSION"),
            running.public_url
        );
        println!("  identity:   {}/identity/v3", running.public_url);
        println!("  data:       {}", running.data_dir.display());
        println!(
            "  admin creds: {} (and clouds.yaml beside it, cloud \"onestack\")",
            running.openrc.display()
        );
        if running.admin_created {
            println!(
                "  first start: created the admin user, the admin and service projects, and the catalog"
            );
        }
        println!(
            "Next: source {} && openstack token issue",
            running.openrc.display()
        );
        println!("Stop with Ctrl-C.");
    }
    running.until_signalled().await?;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Up { listen } => {
            let config = load_config(&cli, *listen)?;
            init_logging(&config.log.level);
            up(config, true).await
        }
        Command::Serve { listen } => {
            let config = load_config(&cli, *listen)?;
            init_logging(&config.log.level);
            up(config, false).await
        }
        Command::Openrc { user, project } => {
            let config = load_config(&cli, None)?;
            let data_dir = config.data_dir();
            let auth_url = format!("{}/identity/v3", config.public_url());
            let password = if user == "admin" {
                Some(std::fs::read_to_string(data_dir.join(files::ADMIN_PASSWORD)).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read the admin password in {}: {e}; has `onestack up` run with this data directory?",
                        data_dir.display()
                    )
                })?)
            } else {
                None
            };
            print!(
                "{}",
                files::openrc(&auth_url, user, project, password.as_deref().map(str::trim))
            );
            Ok(())
        }
        Command::TokenKeys { action } => {
            let config = load_config(&cli, None)?;
            let repository = onestack_identity::fernet::KeyRepository::new(
                config.data_dir().join("fernet-keys"),
            );
            match action {
                KeyAction::Setup => {
                    let created = repository.setup()?;
                    println!(
                        "{} {}",
                        if created {
                            "created"
                        } else {
                            "already present:"
                        },
                        repository.dir().display()
                    );
                }
                KeyAction::Rotate => {
                    repository.setup()?;
                    let primary = repository.rotate(config.identity.max_active_keys)?;
                    println!(
                        "rotated {}: key {primary} is now primary",
                        repository.dir().display()
                    );
                }
            }
            Ok(())
        }
        Command::Config => {
            print!("{}", onestack::config::EXAMPLE);
            Ok(())
        }
        Command::JoinToken { ttl } => {
            let config = load_config(&cli, None)?;
            let issued =
                onestack::join::issue_token(&config, std::time::Duration::from_secs(*ttl)).await?;
            println!("{}", issued.token);
            eprintln!(
                "good for one host within {ttl} s; on that host run:\n  onestack join {} --token {}",
                config.public_url(),
                issued.token
            );
            Ok(())
        }
        Command::Join { url, token, name } => {
            let config = load_config(&cli, None)?;
            init_logging(&config.log.level);
            let options = onestack::join::JoinOptions {
                url: url.clone(),
                token: token.clone(),
                name: name.clone(),
            };
            onestack::join::run(config, options).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
