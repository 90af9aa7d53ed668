//! What the flavor, keypair, server group and quota operations are asked to do, typed: read
//! from request bodies by `api::resource_body` (at the request's microversion). The
//! operations add the policy checks, the lookups, the quotas and the writes.

use std::collections::BTreeMap;

/// A flavor to create (`POST /flavors`). Sizes are within Nova's bounds (`ram` and `vcpus`
/// at least 1, none above 2147483647).
#[derive(Debug)]
pub struct NewFlavor {
    /// `None` (absent, `null` or `auto`): a generated id.
    pub id: Option<String>,
    /// Checked: 1–255 characters without surrounding whitespace.
    pub name: String,
    /// MiB.
    pub ram: u64,
    pub vcpus: u32,
    /// GiB.
    pub disk: u64,
    /// MiB.
    pub swap: u64,
    /// GiB.
    pub ephemeral: u64,
    /// Positive.
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub description: Option<String>,
}

/// The change to a flavor (`PUT /flavors/{id}`, 2.55+): its description only.
#[derive(Debug)]
pub struct FlavorUpdate {
    /// `None` clears it.
    pub description: Option<String>,
}

/// A keypair's `type` (2.2+; `ssh` before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ssh,
    X509,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::X509 => "x509",
        }
    }
}

/// A keypair to import, or to generate (`POST /os-keypairs`).
#[derive(Debug)]
pub struct NewKeypair {
    /// Checked: a keypair name (letters, digits, ` _-.@`).
    pub name: String,
    pub key_type: KeyType,
    /// 2.10+: another user to make it for (admins only).
    pub user_id: Option<String>,
    /// Trimmed; `None` (only below 2.92): generate a key.
    pub public_key: Option<String>,
}

/// A server group to create (`POST /os-server-groups`), from `policy` and `rules` (2.64+)
/// or the single entry of `policies`.
#[derive(Debug)]
pub struct NewServerGroup {
    /// Checked like a server's name.
    pub name: String,
    /// `affinity`, `anti-affinity`, `soft-affinity` or `soft-anti-affinity`.
    pub policy: String,
    /// `max_server_per_host` (at least 1, anti-affinity only).
    pub rules: BTreeMap<String, i64>,
}

/// New limits of a project (`PUT /os-quota-sets/{project}`): known resources, each -1
/// (unlimited) or more.
#[derive(Debug, Default)]
pub struct QuotaUpdate {
    pub limits: Vec<(String, i64)>,
}
