//! The authenticated context of a request. Every service gets it the same way: the auth
//! layer validates `X-Auth-Token` through a [`TokenValidator`] (implemented by the identity
//! service) and handlers take [`AuthContext`] as an extractor; a missing or bad token is 401.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::ApiError;

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Unscoped,
    Project {
        id: String,
        name: String,
        domain_id: String,
    },
    Domain {
        id: String,
        name: String,
    },
    System,
}

/// Who is calling, with which roles, on what.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub scope: Scope,
    /// Role names, implied roles included.
    pub roles: Vec<String>,
    pub audit_id: String,
    pub application_credential_id: Option<String>,
    /// Whether the token is scoped to the cloud's admin project (Keystone's
    /// `is_admin_project`): the project `admin` in the `default` domain that bootstrap made.
    pub is_admin_project: bool,
}

impl AuthContext {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    /// The cloud administrator: the `admin` role on the admin project, or with a system-scoped
    /// token. The role on any other project is that project's business only, so granting a
    /// tenant `admin` on their own project does not hand them the cloud (OpenStack's bug
    /// 968696). Every service asks this one question; `docs/security.md` has the rule.
    pub fn is_admin(&self) -> bool {
        self.has_role("admin") && (self.is_admin_project || self.scope == Scope::System)
    }
    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Project { id, .. } => Some(id),
            _ => None,
        }
    }
    pub fn domain_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Domain { id, .. } => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(scope: Scope, is_admin_project: bool) -> AuthContext {
        AuthContext {
            user_id: "u".into(),
            user_name: "u".into(),
            user_domain_id: "default".into(),
            scope,
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            audit_id: String::new(),
            application_credential_id: None,
            is_admin_project,
        }
    }

    fn project(id: &str) -> Scope {
        Scope::Project {
            id: id.into(),
            name: id.into(),
            domain_id: "default".into(),
        }
    }

    #[test]
    fn the_admin_role_makes_a_cloud_admin_only_on_the_admin_project_or_the_system() {
        assert!(ctx(project("admin"), true).is_admin());
        assert!(ctx(Scope::System, false).is_admin());
        assert!(!ctx(project("tenant"), false).is_admin());
        let domain = Scope::Domain {
            id: "d".into(),
            name: "d".into(),
        };
        assert!(!ctx(domain, false).is_admin());
        let mut reader = ctx(project("admin"), true);
        reader.roles = vec!["reader".into()];
        assert!(!reader.is_admin());
    }
}

pub type ValidateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AuthContext, ApiError>> + Send + 'a>>;

/// Turns a token into the context of its bearer.
pub trait TokenValidator: Send + Sync + 'static {
    fn validate<'a>(&'a self, token: &'a str) -> ValidateFuture<'a>;
}

/// Why a request carries no context although it sent a token.
#[derive(Debug, Clone)]
struct Rejected(ApiError);

/// Middleware: validates `X-Auth-Token` when present. The outcome travels with the request:
/// handlers that need a caller take [`AuthContext`], which turns a missing or rejected token
/// into a 401 inside the service's router, so the error has that service's envelope.
pub async fn layer(
    validator: Arc<dyn TokenValidator>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(token) = token {
        match validator.validate(&token).await {
            Ok(context) => {
                request.extensions_mut().insert(Arc::new(context));
            }
            Err(error) if error.status.is_server_error() => return error.into_response(),
            Err(error) => {
                request.extensions_mut().insert(Rejected(error));
            }
        }
    }
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if let Some(context) = parts.extensions.get::<Arc<AuthContext>>() {
            return Ok(context.as_ref().clone());
        }
        Err(match parts.extensions.get::<Rejected>() {
            Some(Rejected(error)) => error.clone(),
            None => ApiError::unauthorized("The request you have made requires authentication."),
        })
    }
}
