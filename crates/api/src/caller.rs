//! The caller as the project-scoped services (network, compute) see it: whose project, and
//! whether they may administer the cloud or only change or only read their project's things.
//! Each service renders a refused rule in its own words (`From<Denied>` in its `error`).

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::request_id::RequestId;
use crate::{ApiError, AuthContext};

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    /// The project the token is scoped to ("" for a system- or domain-scoped admin).
    pub project_id: String,
    /// The cloud administrator ([`AuthContext::is_admin`]).
    pub admin: bool,
    /// Holds `member` (or is an admin): may change things, not only read them.
    pub writer: bool,
    /// The request id, recorded where a service keeps a history (Nova's instance actions).
    pub request_id: String,
}

/// A policy rule the caller does not pass, named without the service's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl Caller {
    /// The caller of a request to `service` ("network", "compute"), which needs a
    /// project-scoped token unless the caller administers the cloud.
    pub fn from_context(
        context: &AuthContext,
        request_id: String,
        service: &str,
    ) -> Result<Self, ApiError> {
        let admin = context.is_admin();
        let project_id = context.project_id().unwrap_or_default().to_owned();
        if project_id.is_empty() && !admin {
            return Err(ApiError::unauthorized(format!(
                "The {service} API needs a project-scoped token."
            )));
        }
        Ok(Self {
            user_id: context.user_id.clone(),
            writer: admin || context.has_role("member"),
            project_id,
            admin,
            request_id,
        })
    }

    /// The token's context and the caller of a request to `service`, from the request's
    /// parts (its `AuthContext` and request id), for a service's request extractor.
    pub async fn from_parts<S: Send + Sync>(
        parts: &mut Parts,
        state: &S,
        service: &str,
    ) -> Result<(AuthContext, Self), ApiError> {
        let auth = AuthContext::from_request_parts(parts, state).await?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let caller = Self::from_context(&auth, request_id, service)?;
        Ok((auth, caller))
    }

    /// The services acting for themselves (releasing a deleted server's ports, say): an
    /// administrator of no project.
    pub fn service() -> Self {
        Self {
            user_id: String::new(),
            project_id: String::new(),
            admin: true,
            writer: true,
            request_id: String::new(),
        }
    }

    /// Whether the caller owns resources of `project_id` (or administers the cloud).
    pub fn owns(&self, project_id: &str) -> bool {
        self.admin || self.project_id == project_id
    }

    /// Fails unless the caller may create or change things at all.
    pub fn require_writer(&self, rule: &str) -> Result<(), Denied> {
        if self.writer {
            Ok(())
        } else {
            Err(Denied(rule.to_owned()))
        }
    }

    pub fn require_admin(&self, rule: &str) -> Result<(), Denied> {
        if self.admin {
            Ok(())
        } else {
            Err(Denied(rule.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;

    fn context(scope: Scope, roles: &[&str]) -> AuthContext {
        AuthContext {
            user_id: "u".into(),
            user_name: "u".into(),
            user_domain_id: "default".into(),
            scope,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            audit_id: String::new(),
            application_credential_id: None,
            is_admin_project: false,
        }
    }

    fn project() -> Scope {
        Scope::Project {
            id: "p".into(),
            name: "p".into(),
            domain_id: "default".into(),
        }
    }

    #[test]
    fn readers_read_members_write_and_unscoped_tokens_are_refused() {
        let reader = Caller::from_context(&context(project(), &["reader"]), String::new(), "x")
            .expect("project-scoped");
        assert!(!reader.writer && !reader.admin && reader.owns("p") && !reader.owns("q"));
        assert_eq!(reader.require_writer("r"), Err(Denied("r".into())));
        let member = Caller::from_context(&context(project(), &["member"]), String::new(), "x")
            .expect("project-scoped");
        assert!(member.require_writer("r").is_ok() && member.require_admin("r").is_err());
        let unscoped = Caller::from_context(&context(Scope::Unscoped, &["member"]), "".into(), "x");
        assert_eq!(unscoped.map(|_| ()).unwrap_err().status, 401);
        let system = Caller::from_context(&context(Scope::System, &["admin"]), "".into(), "x")
            .expect("system admin");
        assert!(system.admin && system.owns("any"));
    }
}
