//! Issuing tokens: authenticating with the password, token and application credential
//! methods, and choosing the new token's scope.

use std::sync::Arc;

use onestack_db::now_micros;

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{AppCredential, Domain, TargetType, User};
use crate::service::{CatalogEntry, Identity, ValidatedToken};
use crate::token::{Payload, TokenScope, new_audit_id};
use crate::{password, store};

/// A domain named by id or by name.
#[derive(Debug)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// A user named by id, or by name within a domain.
#[derive(Debug)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// A project named by id, or by name within a domain.
#[derive(Debug)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// One authentication method of `auth.identity`, with its section.
#[derive(Debug)]
pub enum AuthMethod {
    Password {
        user: UserRef,
        password: String,
    },
    /// The id of an existing token.
    Token(String),
    AppCredential {
        credential: AppCredentialRef,
        secret: String,
    },
    /// A method onestack does not offer (401 when reached).
    Unsupported(String),
}

/// An application credential named by id, or by name and its user.
#[derive(Debug)]
pub enum AppCredentialRef {
    Id(String),
    Name { name: String, user: UserRef },
}

/// The scope a token request asks for.
#[derive(Debug)]
pub enum ScopeRequest {
    Unscoped,
    Project(ProjectRef),
    Domain(DomainRef),
    System,
}

/// `POST /v3/auth/tokens`'s body. Each method is reported in turn, after those before it
/// authenticated, and the scope once they all did.
#[derive(Debug)]
pub struct TokenRequest {
    pub methods: Vec<Parsed<AuthMethod>>,
    pub scope: Option<Parsed<ScopeRequest>>,
}

/// A token just issued, with what its response shows.
pub struct IssuedToken {
    pub token: String,
    pub validated: ValidatedToken,
    pub catalog: Option<Arc<Vec<CatalogEntry>>>,
}

/// Who authenticated and how, before a scope is applied.
struct Authenticated {
    user: User,
    methods: u8,
    /// From a `token` method: the parent token, whose expiry and audit chain carry over.
    parent: Option<Arc<ValidatedToken>>,
    application_credential: Option<AppCredential>,
}

impl Authenticated {
    fn new(user: User, method: &str) -> Self {
        Authenticated {
            user,
            methods: Payload::method_bit(method),
            parent: None,
            application_credential: None,
        }
    }
}

impl Identity {
    pub(crate) async fn find_domain(&self, domain: &DomainRef) -> Result<Option<Domain>> {
        Ok(match domain {
            DomainRef::Id(id) => store::projects::get_domain(&self.pool, id).await?,
            DomainRef::Name(name) => store::projects::find_domain_by_name(&self.pool, name).await?,
        })
    }

    async fn find_user(&self, user: &UserRef) -> Result<Option<User>> {
        match user {
            UserRef::Id(id) => Ok(store::users::get(&self.pool, id).await?),
            UserRef::Name { name, domain } => match self.find_domain(domain).await? {
                Some(d) => Ok(store::users::find_by_name(&self.pool, &d.id, name).await?),
                None => Ok(None),
            },
        }
    }

    pub async fn issue_token(
        &self,
        request: TokenRequest,
        with_catalog: bool,
    ) -> Result<IssuedToken> {
        let authenticated = self.authenticate(request.methods).await?;
        let scope = match (request.scope, &authenticated) {
            (
                Some(_),
                Authenticated {
                    application_credential: Some(_),
                    ..
                },
            ) => {
                return Err(Error::UnauthorizedBecause(
                    "An application credential token is scoped by the credential; do not request a scope.".into(),
                ));
            }
            (
                _,
                Authenticated {
                    application_credential: Some(a),
                    ..
                },
            ) => TokenScope::Project(a.project_id.clone()),
            (Some(s), _) => self.resolve_scope(s?).await?,
            (
                None,
                Authenticated {
                    parent: Some(p), ..
                },
            ) => p.payload.scope.clone(),
            (None, Authenticated { user, .. }) => self.default_scope(user).await?,
        };
        let now = now_micros();
        let lifetime = self.config.token_expiration as i64 * 1_000_000;
        let (expires_at, audit_ids) = match &authenticated.parent {
            Some(parent) => (
                parent.payload.expires_at,
                vec![new_audit_id(), parent.payload.audit_ids[0].clone()],
            ),
            None => {
                let credential_expiry = authenticated
                    .application_credential
                    .as_ref()
                    .and_then(|a| a.expires_at);
                (
                    (now + lifetime).min(credential_expiry.unwrap_or(i64::MAX)),
                    vec![new_audit_id()],
                )
            }
        };
        let payload = Payload {
            version: 1,
            user_id: authenticated.user.id.clone(),
            methods: authenticated.methods,
            scope,
            issued_at: now,
            expires_at,
            audit_ids,
            application_credential_id: authenticated
                .application_credential
                .as_ref()
                .map(|a| a.id.clone())
                .or_else(|| {
                    authenticated
                        .parent
                        .as_ref()
                        .and_then(|p| p.payload.application_credential_id.clone())
                }),
        };
        let validated = self.resolve(payload).await?;
        let token = self.sealer.seal(&validated.payload);
        let catalog = if with_catalog {
            Some(self.catalog().await?)
        } else {
            None
        };
        Ok(IssuedToken {
            token,
            validated,
            catalog,
        })
    }

    /// Runs every method in turn; they must all identify the same user.
    async fn authenticate(&self, methods: Vec<Parsed<AuthMethod>>) -> Result<Authenticated> {
        let mut result: Option<Authenticated> = None;
        for method in methods {
            let next = match method? {
                AuthMethod::Password { user, password } => {
                    self.password_method(&user, password).await?
                }
                AuthMethod::Token(id) => self.token_method(&id).await?,
                AuthMethod::AppCredential { credential, secret } => {
                    self.app_credential_method(&credential, secret).await?
                }
                AuthMethod::Unsupported(other) => {
                    return Err(Error::UnauthorizedBecause(format!(
                        "The authentication method '{other}' is not supported."
                    )));
                }
            };
            result = Some(match result {
                Some(previous) if previous.user.id != next.user.id => {
                    return Err(Error::UnauthorizedBecause(
                        "The methods identify different users.".into(),
                    ));
                }
                Some(mut previous) => {
                    previous.methods |= next.methods;
                    previous.parent = previous.parent.or(next.parent);
                    previous.application_credential = previous
                        .application_credential
                        .or(next.application_credential);
                    previous
                }
                None => next,
            });
        }
        result.ok_or(Error::Unauthorized)
    }

    fn is_locked(&self, user: &User) -> bool {
        let attempts = self.config.lockout_failure_attempts;
        attempts > 0
            && user.failed_auth_count >= i64::from(attempts)
            && user.last_failed_auth_at.is_some_and(|at| {
                now_micros() - at < self.config.lockout_duration as i64 * 1_000_000
            })
    }

    async fn password_method(&self, user: &UserRef, password: String) -> Result<Authenticated> {
        let user = self.find_user(user).await?;
        let cost = self.config.password_hash_rounds;
        let locked = user.as_ref().is_some_and(|u| self.is_locked(u));
        // Verified even without a user (against no hash), so that timing does not tell
        // whether the user exists.
        let hash = user
            .as_ref()
            .filter(|_| !locked)
            .and_then(|u| u.password_hash.clone());
        let matches = password::verify(password, hash, cost).await?;
        let Some(user) = user else {
            return Err(Error::Unauthorized);
        };
        if locked {
            tracing::warn!(user_id = %user.id, "refused a login: the account is locked after failed attempts");
            return Err(Error::Unauthorized);
        }
        if !matches {
            if self.config.lockout_failure_attempts > 0 {
                if user.failed_auth_count >= i64::from(self.config.lockout_failure_attempts) {
                    // The lockout has expired (else we would not be here): count afresh, as
                    // Keystone.
                    store::users::reset_failed_auth(&self.pool, &user.id).await?;
                }
                store::users::record_failed_auth(&self.pool, &user.id).await?;
            }
            return Err(Error::Unauthorized);
        }
        if user.failed_auth_count > 0 {
            store::users::reset_failed_auth(&self.pool, &user.id).await?;
        }
        if !user.enabled {
            return Err(Error::Unauthorized);
        }
        if self.password_rules.is_expired(&user) {
            return Err(Error::UnauthorizedBecause(format!(
                "The password is expired and needs to be changed for user: {}.",
                user.id
            )));
        }
        Ok(Authenticated::new(user, "password"))
    }

    async fn token_method(&self, id: &str) -> Result<Authenticated> {
        let parent = self.validate(id).await.map_err(|_| Error::Unauthorized)?;
        Ok(Authenticated {
            user: parent.user.clone(),
            methods: parent.payload.methods | Payload::method_bit("token"),
            parent: Some(parent),
            application_credential: None,
        })
    }

    async fn app_credential_method(
        &self,
        credential: &AppCredentialRef,
        secret: String,
    ) -> Result<Authenticated> {
        let credential = match credential {
            AppCredentialRef::Id(id) => {
                store::credentials::get_app_credential(&self.pool, id).await?
            }
            AppCredentialRef::Name { name, user } => match self.find_user(user).await? {
                Some(user) => {
                    store::credentials::list_app_credentials(&self.pool, &user.id, Some(name))
                        .await?
                        .pop()
                }
                None => None,
            },
        };
        let matches = password::verify(
            secret,
            credential.as_ref().map(|c| c.secret_hash.clone()),
            self.config.password_hash_rounds,
        )
        .await?;
        let credential = credential.filter(|_| matches).ok_or(Error::Unauthorized)?;
        if credential.expires_at.is_some_and(|e| e <= now_micros()) {
            return Err(Error::Unauthorized);
        }
        let user = store::users::get(&self.pool, &credential.user_id)
            .await?
            .filter(|u| u.enabled)
            .ok_or(Error::Unauthorized)?;
        let mut authenticated = Authenticated::new(user, "application_credential");
        authenticated.application_credential = Some(credential);
        Ok(authenticated)
    }

    async fn resolve_scope(&self, scope: ScopeRequest) -> Result<TokenScope> {
        match scope {
            ScopeRequest::Unscoped => Ok(TokenScope::Unscoped),
            ScopeRequest::System => Ok(TokenScope::System),
            ScopeRequest::Project(project) => {
                let found = match project {
                    ProjectRef::Id(id) => store::projects::get_project(&self.pool, &id).await?,
                    ProjectRef::Name { name, domain } => match self.find_domain(&domain).await? {
                        Some(d) => {
                            store::projects::find_project_by_name(&self.pool, &d.id, &name).await?
                        }
                        None => None,
                    },
                };
                let project = found.ok_or_else(|| {
                    Error::UnauthorizedBecause(
                        "The requested project is not available to this user.".into(),
                    )
                })?;
                Ok(TokenScope::Project(project.id))
            }
            ScopeRequest::Domain(domain) => {
                let domain = self.find_domain(&domain).await?.ok_or_else(|| {
                    Error::UnauthorizedBecause(
                        "The requested domain is not available to this user.".into(),
                    )
                })?;
                Ok(TokenScope::Domain(domain.id))
            }
        }
    }

    /// Without a requested scope: the user's default project when it is usable, else
    /// unscoped.
    async fn default_scope(&self, user: &User) -> Result<TokenScope> {
        if let Some(project_id) = &user.default_project_id {
            let usable = store::projects::get_project(&self.pool, project_id)
                .await?
                .is_some_and(|p| p.enabled)
                && !self
                    .effective_roles(&user.id, TargetType::Project, project_id)
                    .await?
                    .is_empty();
            if usable {
                return Ok(TokenScope::Project(project_id.clone()));
            }
        }
        Ok(TokenScope::Unscoped)
    }
}
