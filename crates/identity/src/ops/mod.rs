//! The identity service's operations, one module per resource. Each checks policy, reads
//! and writes through `store`, and returns the model for the api to render. Request bodies
//! arrive parsed into typed inputs by the api.

pub mod app_credentials;
pub mod assignments;
pub mod auth;
pub mod catalog;
pub mod credentials;
pub mod domains;
pub mod groups;
pub mod project_tags;
pub mod projects;
pub mod role_assignments;
pub mod roles;
pub mod tokens;
pub mod users;

use crate::error::{Error, Result};
use crate::model::{Domain, Group, Project, Role, User};
use crate::service::Identity;
use crate::store;

/// A request body (or part of one) as the api parsed it. An operation reports its error
/// where the handler used to parse it: after the policy check and the lookups before it,
/// so a caller without rights learns nothing about the body and a missing target is a
/// 404 whatever the body holds.
pub type Parsed<T> = Result<T>;

impl Identity {
    pub(crate) async fn domain(&self, id: &str) -> Result<Domain> {
        store::projects::get_domain(&self.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("domain", id))
    }

    pub(crate) async fn project(&self, id: &str) -> Result<Project> {
        store::projects::get_project(&self.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("project", id))
    }

    pub(crate) async fn user(&self, id: &str) -> Result<User> {
        store::users::get(&self.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))
    }

    pub(crate) async fn group(&self, id: &str) -> Result<Group> {
        store::groups::get(&self.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("group", id))
    }

    pub(crate) async fn role(&self, id: &str) -> Result<Role> {
        store::roles::get(&self.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("role", id))
    }

    /// A domain id given in a body must name an existing domain (400 otherwise, as Keystone).
    pub(crate) async fn existing_domain_id(&self, id: &str) -> Result<Domain> {
        store::projects::get_domain(&self.pool, id)
            .await?
            .ok_or_else(|| Error::validation(format!("Could not find domain: {id}.")))
    }
}
