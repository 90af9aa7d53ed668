//! The configuration: defaults, then the TOML file, then `ONESTACK_<SECTION>__<KEY>`
//! environment variables, then command-line flags. `etc/onestack.toml` documents every option.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use onestack_compute::ComputeConfig;
use onestack_identity::IdentityConfig;
use onestack_image::ImageConfig;
use onestack_network::NetworkConfig;
use onestack_volume::VolumeConfig;
use serde::{Deserialize, Serialize};

/// The documented example, printed by `onestack config`.
pub const EXAMPLE: &str = include_str!("../../../etc/onestack.toml");
const ENV_PREFIX: &str = "ONESTACK_";
const SYSTEM_CONFIG: &str = "/etc/onestack/onestack.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            public_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub dir: PathBuf,
}

/// Where the control database is: empty for SQLite in the data directory (one host), or
/// a `postgres://` URL (several hosts, several controllers).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub data: DataConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub identity: IdentityConfig,
    pub image: ImageConfig,
    pub network: NetworkConfig,
    pub compute: ComputeConfig,
    pub volume: VolumeConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "invalid configuration{origin}: {message}\n(run `onestack config` to see every option with its default)"
    )]
    Invalid { origin: String, message: String },
}

impl Config {
    /// Loads the layered configuration. `file` is `--config`/`$ONESTACK_CONFIG`, if given.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut merged = toml::Value::try_from(Config::default()).map_err(|e| invalid("", e))?;
        let path = file.map(Path::to_path_buf).or_else(|| {
            let system = PathBuf::from(SYSTEM_CONFIG);
            system.exists().then_some(system)
        });
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let from_file: toml::Value = toml::from_str(&text)
                .map_err(|e| invalid(&format!(" in {}", path.display()), e))?;
            merge(&mut merged, from_file);
        }
        apply_env(&mut merged, std::env::vars())?;
        merged.try_into().map_err(|e| invalid("", e))
    }

    /// The data directory: configured, else `$XDG_DATA_HOME/onestack` or `~/.local/share/onestack`.
    pub fn data_dir(&self) -> PathBuf {
        if !self.data.dir.as_os_str().is_empty() {
            return self.data.dir.clone();
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("onestack");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib"));
        home.join(".local/share/onestack")
    }

    /// The URL clients reach this server at, without a trailing slash.
    pub fn public_url(&self) -> String {
        if !self.server.public_url.is_empty() {
            return self.server.public_url.trim_end_matches('/').to_owned();
        }
        let listen = self.server.listen;
        if listen.ip().is_unspecified() {
            // Listening everywhere: loopback works from this host; set public_url for others.
            format!("http://127.0.0.1:{}", listen.port())
        } else {
            format!("http://{listen}")
        }
    }
}

fn invalid(origin: &str, error: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        message: error.to_string(),
    }
}

fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Applies `ONESTACK_<SECTION>__<KEY>=value`; values are read as TOML (numbers, booleans),
/// else taken as strings.
fn apply_env(
    merged: &mut toml::Value,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value.clone()));
        let table = merged
            .get_mut(&section)
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| {
                invalid(
                    &format!(" from {name}"),
                    format!("unknown section '{section}'"),
                )
            })?;
        if !table.contains_key(&key) {
            return Err(invalid(
                &format!(" from {name}"),
                format!("unknown option '{section}.{key}'"),
            ));
        }
        table.insert(key, parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_default() {
        let example: Config = toml::from_str(EXAMPLE).unwrap();
        let default = Config::default();
        assert_eq!(
            toml::to_string(&example).unwrap(),
            toml::to_string(&default).unwrap()
        );
    }

    #[test]
    fn environment_overrides_with_types() {
        let mut merged = toml::Value::try_from(Config::default()).unwrap();
        let vars = vec![
            (
                "ONESTACK_IDENTITY__TOKEN_EXPIRATION".to_owned(),
                "7200".to_owned(),
            ),
            (
                "ONESTACK_SERVER__PUBLIC_URL".to_owned(),
                "http://cloud:5000".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        apply_env(&mut merged, vars.into_iter()).unwrap();
        let config: Config = merged.try_into().unwrap();
        assert_eq!(config.identity.token_expiration, 7200);
        assert_eq!(config.public_url(), "http://cloud:5000");
    }

    #[test]
    fn unknown_options_are_refused() {
        let mut merged = toml::Value::try_from(Config::default()).unwrap();
        let vars = vec![("ONESTACK_IDENTITY__NO_SUCH".to_owned(), "1".to_owned())];
        assert!(apply_env(&mut merged, vars.into_iter()).is_err());
        assert!(toml::from_str::<Config>("[server]\nlisten = 5").is_err());
        assert!(toml::from_str::<Config>("[bogus]\n").is_err());
    }
}
