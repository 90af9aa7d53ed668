//! Which hosts belong to the cloud: single-use join tokens that an admin prints on the
//! controller (`onestack join-token`), traded by a new host (`onestack join`) for a
//! credential of its own that its agent presents on every call. Only hashes of the secrets
//! are stored; the database's own credentials never leave the controller.

use std::time::Duration;

use onestack_db::{Pool, now_micros};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::{Error, Result};
use crate::model::Host;
use crate::scheduler::Liveness;
use crate::store;

/// What a joined host's agent measures and reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostReport {
    pub zone: String,
    pub vcpus: u64,
    pub memory_mb: u64,
    pub disk_gb: u64,
    pub cpu_ratio: f64,
    pub ram_ratio: f64,
    pub disk_ratio: f64,
    pub reserved_memory_mb: u64,
    pub hypervisor_type: String,
    pub hypervisor_version: u64,
    pub host_ip: String,
    /// Its network agent runs and makes guests' taps (a joined host without one builds
    /// only servers without ports).
    #[serde(default)]
    pub plugs_ports: bool,
}

/// Where a host's agent runs: in a controller (which keeps the volume files), or joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Controller,
    Joined,
}

/// A join token as printed once: `<id>.<secret>`.
#[derive(Debug, Clone)]
pub struct JoinToken {
    pub token: String,
    pub expires_at: i64,
}

/// Why a join or a credential was refused, in words that tell the operator what to do.
const BAD_TOKEN: &str = "the join token is unknown, already used or expired: \
    print a new one with `onestack join-token` on the controller";

/// The hosts that belong to the cloud, on the control database.
pub struct Membership {
    pool: Pool,
    /// The controller's own host: its agent runs in the controller process, never joins.
    controller_host: String,
}

impl Membership {
    pub fn new(pool: Pool, controller_host: String) -> Self {
        Self {
            pool,
            controller_host,
        }
    }

    /// A new single-use join token, good for `ttl`.
    pub async fn issue_join_token(&self, ttl: Duration) -> Result<JoinToken> {
        let id = hex::encode(rand::random::<[u8; 8]>());
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let now = now_micros();
        let micros = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(micros);
        sqlx::query(
            "INSERT INTO cmp_join_tokens (id, secret_hash, expires_at, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id.clone())
        .bind(digest(&secret))
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(JoinToken {
            token: format!("{id}.{secret}"),
            expires_at,
        })
    }

    /// Trades a join token for host `name`'s credential (returned once; only its hash is
    /// kept). The token is gone afterwards, used or not. A host that joined before and is
    /// down gets a new credential (a reinstalled host joins again); one that is up, or the
    /// controller's own host, never.
    pub async fn join(&self, token: &str, name: &str, liveness: Liveness) -> Result<String> {
        check_host_name(name)?;
        let (id, secret) = token
            .split_once('.')
            .ok_or_else(|| Error::Forbidden(BAD_TOKEN.into()))?;
        let mut tx = store::begin_write(&self.pool).await?;
        let row = sqlx::query("SELECT secret_hash, expires_at FROM cmp_join_tokens WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(Error::Forbidden(BAD_TOKEN.into()));
        };
        let (hash, expires_at): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        if hash != digest(secret) {
            return Err(Error::Forbidden(BAD_TOKEN.into()));
        }
        sqlx::query("DELETE FROM cmp_join_tokens WHERE id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        if expires_at < now_micros() {
            // The expired token is dropped all the same.
            tx.commit().await?;
            return Err(Error::Forbidden(BAD_TOKEN.into()));
        }
        let joined_before = sqlx::query("SELECT host FROM cmp_host_credentials WHERE host = $1")
            .bind(name.to_owned())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let local_host = name == self.controller_host
            || (!joined_before && store::host(&mut *tx, name).await?.is_some());
        if local_host {
            return Err(Error::Conflict(format!(
                "a host named {name} is already in the cloud and runs in a controller; \
                 join this host under another name (onestack join --name NAME)"
            )));
        }
        // A token is no key to a running host: its name is free again once it is down.
        if joined_before
            && let Some(host) = store::host(&mut *tx, name).await?
            && liveness.is_up(&host)
        {
            return Err(Error::Conflict(format!(
                "host {name} is in the cloud and up; stop its agent (it turns down within \
                 service_down_time) or delete its compute service before joining a host \
                 under this name, or join this host under another name (--name NAME)"
            )));
        }
        let credential = hex::encode(rand::random::<[u8; 32]>());
        sqlx::query("DELETE FROM cmp_host_credentials WHERE host = $1")
            .bind(name.to_owned())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO cmp_host_credentials (host, secret_hash, joined_at) VALUES ($1, $2, $3)",
        )
        .bind(name.to_owned())
        .bind(digest(&credential))
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(credential)
    }

    /// The host a credential belongs to; `None` for anything else (a removed host's too).
    pub async fn host_of(&self, credential: &str) -> Result<Option<String>> {
        if credential.len() != 64 || !credential.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT host FROM cmp_host_credentials WHERE secret_hash = $1")
            .bind(digest(credential))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }
}

/// Removes a host's credential: its agent's calls are refused from now on.
pub(crate) async fn forget_host<'c, E>(e: E, host: &str) -> Result<()>
where
    E: sqlx::Executor<'c, Database = onestack_db::Any>,
{
    sqlx::query("DELETE FROM cmp_host_credentials WHERE host = $1")
        .bind(host.to_owned())
        .execute(e)
        .await?;
    Ok(())
}

/// Letters, digits, `-` and `.`, at most 63, no `-` at either end (Nova's hostname).
pub(crate) fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A host's name is a hostname with no empty label: it names records, files and log lines
/// on other hosts.
fn check_host_name(name: &str) -> Result<()> {
    let fine =
        is_hostname(name) && !name.starts_with('.') && !name.ends_with('.') && !name.contains("..");
    if fine {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "{name:?} is not a host name: use letters, digits, '-' and '.' (at most 63)"
        )))
    }
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl HostReport {
    /// The host's record as the scheduler and `os-hypervisors` see it.
    pub fn into_host(self, name: &str, kind: HostKind) -> Result<Host> {
        let ratios = [self.cpu_ratio, self.ram_ratio, self.disk_ratio];
        if ratios
            .iter()
            .any(|r| !r.is_finite() || *r <= 0.0 || *r > 1000.0)
        {
            return Err(Error::BadRequest(
                "allocation ratios must be in (0, 1000]".into(),
            ));
        }
        if self.zone.is_empty() || self.zone.len() > 255 || self.hypervisor_type.len() > 64 {
            return Err(Error::BadRequest("a zone is 1 to 255 characters".into()));
        }
        if self.host_ip.len() > 64 {
            return Err(Error::BadRequest("host_ip is too long".into()));
        }
        Ok(Host {
            host: name.to_owned(),
            service_id: Host::stable_id(name, "service"),
            hypervisor_id: Host::stable_id(name, "hypervisor"),
            zone: self.zone,
            disabled: false,
            disabled_reason: None,
            forced_down: false,
            vcpus: self.vcpus,
            memory_mb: self.memory_mb,
            disk_gb: self.disk_gb,
            cpu_ratio: self.cpu_ratio,
            ram_ratio: self.ram_ratio,
            disk_ratio: self.disk_ratio,
            reserved_memory_mb: self.reserved_memory_mb,
            hypervisor_type: self.hypervisor_type,
            hypervisor_version: self.hypervisor_version,
            host_ip: self.host_ip,
            plugs_ports: self.plugs_ports,
            plugs_volumes: kind == HostKind::Controller,
            aggregate_zone: None,
            updated_at: 0,
        })
    }
}
