//! The identity domain model: what the store reads and writes and the handlers render.

use serde_json::{Map, Value};

pub type Extra = Map<String, Value>;

#[derive(Debug, Clone)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub password_hash: Option<String>,
    pub default_project_id: Option<String>,
    pub extra: Extra,
    pub failed_auth_count: i64,
    pub last_failed_auth_at: Option<i64>,
    /// When the password was last set (microseconds); `None` before the first, or for users
    /// made before this was kept.
    pub password_set_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// `None` for a global role.
    pub domain_id: Option<String>,
    pub description: String,
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorType {
    User,
    Group,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::Group => "group",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    Project,
    Domain,
    System,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Project => "project",
            TargetType::Domain => "domain",
            TargetType::System => "system",
        }
    }
}

/// The target id stored for system assignments.
pub const SYSTEM_ALL: &str = "all";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub actor_type: ActorType,
    pub actor_id: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
}

#[derive(Debug, Clone)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone)]
pub struct AppCredential {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    pub secret_hash: String,
    pub description: Option<String>,
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    pub role_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub credential_type: String,
    /// Decrypted.
    pub blob: String,
    pub extra: Extra,
}

pub use onestack_db::ids::hex as new_id;
