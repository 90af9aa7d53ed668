//! The identity service's state and the logic shared by its handlers: token validation with
//! its cache, effective roles, and the service catalog.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;

use onestack_api::auth::ValidateFuture;
use onestack_api::{ApiError, AuthContext, Scope, TokenValidator};
use onestack_db::{Pool, now_micros};

use crate::config::IdentityConfig;
use crate::error::{Error, Result};
use crate::fernet::{KeyError, KeyRepository, KeySet};
use crate::model::{Domain, Endpoint, Project, Role, Service, TargetType, User};
use crate::store;
use crate::store::credentials::Revocation;
use crate::token::{Payload, TokenScope, TokenSealer};

/// Most tokens kept validated in memory; the cache is cleared when it is full. An entry
/// holds its rendered response (about 6.6 KiB with the catalog), so this bounds the cache
/// near 7 MiB; at 20,000 a login per command grew the process by 130 MiB (bench/load.sh).
const TOKEN_CACHE_LIMIT: usize = 1_000;

/// A token that passed every check, with what its response body shows.
#[derive(Debug, Clone)]
pub struct ValidatedToken {
    pub payload: Payload,
    pub user: User,
    pub user_domain: Domain,
    pub project: Option<(Project, Domain)>,
    pub domain: Option<Domain>,
    pub roles: Vec<Role>,
    pub app_credential: Option<(String, String, bool)>,
    /// The validation response body, rendered once per cache entry: `[with catalog, without]`.
    /// Any identity write drops the entry, so a rendering never outlives what it shows.
    pub rendered: [OnceLock<Bytes>; 2],
}

impl ValidatedToken {
    /// Scoped to the cloud's admin project: `admin` in the default domain, which bootstrap
    /// makes (so no tenant can hold that name there). As Keystone's `admin_project_name`.
    pub fn is_admin_project(&self) -> bool {
        matches!((&self.payload.scope, &self.project), (TokenScope::Project(_), Some((p, _)))
            if p.name == crate::bootstrap::ADMIN_PROJECT && p.domain_id == crate::bootstrap::DEFAULT_DOMAIN)
    }

    pub fn context(&self) -> AuthContext {
        let scope = match (&self.payload.scope, &self.project, &self.domain) {
            (TokenScope::Project(_), Some((p, _)), _) => Scope::Project {
                id: p.id.clone(),
                name: p.name.clone(),
                domain_id: p.domain_id.clone(),
            },
            (TokenScope::Domain(_), _, Some(d)) => Scope::Domain {
                id: d.id.clone(),
                name: d.name.clone(),
            },
            (TokenScope::System, _, _) => Scope::System,
            _ => Scope::Unscoped,
        };
        AuthContext {
            user_id: self.user.id.clone(),
            user_name: self.user.name.clone(),
            user_domain_id: self.user.domain_id.clone(),
            scope,
            roles: self.roles.iter().map(|r| r.name.clone()).collect(),
            audit_id: self.payload.audit_ids.first().cloned().unwrap_or_default(),
            application_credential_id: self.app_credential.as_ref().map(|a| a.0.clone()),
            is_admin_project: self.is_admin_project(),
        }
    }
}

/// All roles and which imply which, loaded once per generation.
#[derive(Debug, Default)]
pub struct RoleGraph {
    pub roles: HashMap<String, Role>,
    pub implies: HashMap<String, Vec<String>>,
}

impl RoleGraph {
    /// The roles with everything they imply, without domain-specific roles (which never
    /// appear in tokens), sorted by name.
    pub fn expand(&self, role_ids: impl IntoIterator<Item = String>) -> Vec<Role> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = role_ids.into_iter().collect();
        while let Some(id) = stack.pop() {
            if seen.insert(id.clone()) {
                stack.extend(self.implies.get(&id).into_iter().flatten().cloned());
            }
        }
        let mut roles: Vec<Role> = seen
            .iter()
            .filter_map(|id| self.roles.get(id))
            .filter(|r| r.domain_id.is_none())
            .cloned()
            .collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        roles
    }
}

/// One service of the catalog with its enabled endpoints.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub service: Service,
    pub endpoints: Vec<Endpoint>,
}

type Cached<T> = RwLock<Option<(u64, Arc<T>)>>;

pub struct Identity {
    pub pool: Pool,
    pub config: IdentityConfig,
    pub sealer: TokenSealer,
    credential_keys: KeySet,
    /// Bumped by every identity write; cached derivations of older generations are stale.
    generation: AtomicU64,
    /// Whether other controllers write this database (PostgreSQL): then the generation
    /// lives in it too, and every validation reads it (one row) before trusting the cache.
    shared_generation: bool,
    token_cache: Mutex<HashMap<String, (u64, Arc<ValidatedToken>)>>,
    role_graph: Cached<RoleGraph>,
    catalog: Cached<Vec<CatalogEntry>>,
    pub password_rules: crate::password_rules::PasswordRules,
}

impl Identity {
    /// Opens the identity service on a migrated database with keys under `data_dir`.
    pub fn new(
        pool: Pool,
        config: IdentityConfig,
        data_dir: &Path,
    ) -> std::result::Result<Self, KeyError> {
        let sealer = TokenSealer::open(data_dir.join("fernet-keys"))?;
        let credential_repo = KeyRepository::new(data_dir.join("credential-keys"));
        credential_repo.setup()?;
        Ok(Self {
            shared_generation: onestack_db::is_postgres(&pool),
            pool,
            sealer,
            credential_keys: credential_repo.load()?,
            generation: AtomicU64::new(1),
            token_cache: Mutex::new(HashMap::new()),
            role_graph: RwLock::new(None),
            catalog: RwLock::new(None),
            password_rules: crate::password_rules::PasswordRules::new(&config),
            config,
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks every cached derivation stale, here and (on a shared database) in every other
    /// controller. Called after each identity write.
    pub async fn changed(&self) {
        if self.shared_generation {
            match store::generation::bump(&self.pool).await {
                Ok(shared) => self.adopt_generation(shared),
                // The write itself is done; without the bump other controllers may serve
                // it from their caches until the next one.
                Err(error) => tracing::error!(%error, "cannot bump the identity cache generation"),
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.clear_token_cache();
    }

    /// Takes on the database's generation when another controller wrote since we looked.
    async fn refresh_generation(&self) -> Result<()> {
        if self.shared_generation {
            let shared = store::generation::current(&self.pool).await?;
            self.adopt_generation(shared);
        }
        Ok(())
    }

    fn adopt_generation(&self, shared: i64) {
        let shared = u64::try_from(shared).unwrap_or_default();
        if self.generation.fetch_max(shared, Ordering::AcqRel) < shared {
            self.clear_token_cache();
        }
    }

    fn clear_token_cache(&self) {
        if let Ok(mut cache) = self.token_cache.lock() {
            cache.clear();
        }
    }

    pub fn encrypt_credential(&self, blob: &str) -> String {
        self.credential_keys.primary().encrypt(blob.as_bytes())
    }

    pub fn decrypt_credential(&self, sealed: &str) -> Result<String> {
        let bytes = self.credential_keys.decrypt(sealed).ok_or_else(|| {
            Error::Internal("a credential cannot be decrypted with the credential keys".into())
        })?;
        String::from_utf8(bytes).map_err(|e| Error::Internal(e.to_string()))
    }

    async fn cached<T, F>(&self, slot: &Cached<T>, load: F) -> Result<Arc<T>>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let generation = self.generation();
        if let Ok(guard) = slot.read()
            && let Some((g, value)) = guard.as_ref()
            && *g == generation
        {
            return Ok(value.clone());
        }
        let value = Arc::new(load.await?);
        if let Ok(mut guard) = slot.write() {
            *guard = Some((generation, value.clone()));
        }
        Ok(value)
    }

    pub async fn role_graph(&self) -> Result<Arc<RoleGraph>> {
        self.cached(&self.role_graph, async {
            let roles = store::roles::list(&self.pool, None, None).await?;
            let mut implies: HashMap<String, Vec<String>> = HashMap::new();
            for (prior, implied) in store::roles::implications(&self.pool).await? {
                implies.entry(prior).or_default().push(implied);
            }
            Ok(RoleGraph {
                roles: roles.into_iter().map(|r| (r.id.clone(), r)).collect(),
                implies,
            })
        })
        .await
    }

    pub async fn catalog(&self) -> Result<Arc<Vec<CatalogEntry>>> {
        self.cached(&self.catalog, async {
            let services = store::catalog::list_services(&self.pool, None, None).await?;
            let endpoints = store::catalog::list_endpoints(&self.pool, None, None, None).await?;
            Ok(services
                .into_iter()
                .filter(|s| s.enabled)
                .map(|service| CatalogEntry {
                    endpoints: endpoints
                        .iter()
                        .filter(|e| e.enabled && e.service_id == service.id)
                        .cloned()
                        .collect(),
                    service,
                })
                .collect())
        })
        .await
    }

    /// The roles a user effectively holds on a target, implied roles included.
    pub async fn effective_roles(
        &self,
        user_id: &str,
        target: TargetType,
        target_id: &str,
    ) -> Result<Vec<Role>> {
        let direct =
            store::assignments::direct_role_ids(&self.pool, user_id, target, target_id).await?;
        Ok(self.role_graph().await?.expand(direct))
    }

    /// Checks a payload against the current state and gathers what its token shows. Used
    /// when issuing (so a token is never issued that would not validate) and validating.
    pub async fn resolve(&self, payload: Payload) -> Result<ValidatedToken> {
        if payload.expires_at <= now_micros() {
            return Err(Error::UnauthorizedBecause("The token has expired.".into()));
        }
        let user = store::users::get(&self.pool, &payload.user_id)
            .await?
            .filter(|u| u.enabled)
            .ok_or(Error::Unauthorized)?;
        let user_domain = store::projects::get_domain(&self.pool, &user.domain_id)
            .await?
            .filter(|d| d.enabled)
            .ok_or(Error::Unauthorized)?;
        let mut project = None;
        let mut domain = None;
        let mut roles = match &payload.scope {
            TokenScope::Unscoped => Vec::new(),
            TokenScope::Project(id) => {
                let p = store::projects::get_project(&self.pool, id)
                    .await?
                    .filter(|p| p.enabled)
                    .ok_or_else(|| {
                        Error::UnauthorizedBecause(format!("The project {id} is not available."))
                    })?;
                let d = store::projects::get_domain(&self.pool, &p.domain_id)
                    .await?
                    .filter(|d| d.enabled)
                    .ok_or_else(|| {
                        Error::UnauthorizedBecause(format!(
                            "The domain of project {id} is disabled."
                        ))
                    })?;
                let roles = self
                    .effective_roles(&user.id, TargetType::Project, id)
                    .await?;
                project = Some((p, d));
                roles
            }
            TokenScope::Domain(id) => {
                let d = store::projects::get_domain(&self.pool, id)
                    .await?
                    .filter(|d| d.enabled)
                    .ok_or_else(|| {
                        Error::UnauthorizedBecause(format!("The domain {id} is not available."))
                    })?;
                domain = Some(d);
                self.effective_roles(&user.id, TargetType::Domain, id)
                    .await?
            }
            TokenScope::System => {
                self.effective_roles(&user.id, TargetType::System, crate::model::SYSTEM_ALL)
                    .await?
            }
        };
        let mut app_credential = None;
        if let Some(id) = &payload.application_credential_id {
            let credential = store::credentials::get_app_credential(&self.pool, id)
                .await?
                .filter(|a| a.user_id == user.id && a.expires_at.is_none_or(|e| e > now_micros()))
                // Its tokens stay on its project, even when re-scoped with the token method.
                .filter(|a| payload.scope == TokenScope::Project(a.project_id.clone()))
                .ok_or_else(|| {
                    Error::UnauthorizedBecause(
                        "The application credential is no longer valid.".into(),
                    )
                })?;
            // A token from an application credential carries at most the credential's roles.
            let graph = self.role_graph().await?;
            let allowed: BTreeSet<String> = graph
                .expand(credential.role_ids.iter().cloned())
                .into_iter()
                .map(|r| r.id)
                .collect();
            roles.retain(|r| allowed.contains(&r.id));
            app_credential = Some((credential.id, credential.name, credential.unrestricted));
        }
        if payload.scope != TokenScope::Unscoped && roles.is_empty() {
            return Err(Error::UnauthorizedBecause(
                "The user has no role on the requested scope.".into(),
            ));
        }
        let scoped_project = match &payload.scope {
            TokenScope::Project(id) => Some(id.as_str()),
            _ => None,
        };
        let is_revoked = store::credentials::is_revoked(
            &self.pool,
            &payload.audit_ids,
            &user.id,
            scoped_project,
            payload.issued_at,
        )
        .await?;
        if is_revoked {
            return Err(Error::not_found("token", "the token has been revoked"));
        }
        Ok(ValidatedToken {
            payload,
            user,
            user_domain,
            project,
            domain,
            roles,
            app_credential,
            rendered: Default::default(),
        })
    }

    /// Validates a token, from the cache when nothing has changed since it was last checked.
    pub async fn validate(&self, token: &str) -> Result<Arc<ValidatedToken>> {
        self.refresh_generation().await?;
        let generation = self.generation();
        if let Ok(cache) = self.token_cache.lock()
            && let Some((g, validated)) = cache.get(token)
            && *g == generation
            && validated.payload.expires_at > now_micros()
        {
            return Ok(validated.clone());
        }
        let payload = self
            .sealer
            .unseal(token)
            .ok_or_else(|| Error::not_found("token", "the token is invalid"))?;
        let validated = Arc::new(self.resolve(payload).await.map_err(|e| match e {
            Error::Db(_) | Error::Internal(_) => e,
            _ => Error::not_found("token", "the token is no longer valid"),
        })?);
        if let Ok(mut cache) = self.token_cache.lock() {
            if cache.len() >= TOKEN_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(token.to_owned(), (generation, validated.clone()));
        }
        Ok(validated)
    }

    /// Revokes every token carrying this audit id (and those re-scoped from it).
    pub async fn revoke_audit_id(&self, audit_id: &str, expires_at: i64) -> Result<()> {
        let event = Revocation {
            audit_id: Some(audit_id),
            ..Revocation::default()
        };
        self.record(event, expires_at).await
    }

    /// Revokes every token of a user issued until now (password change, disabling).
    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<()> {
        self.record(
            Revocation {
                user_id: Some(user_id),
                ..Revocation::default()
            },
            self.horizon(),
        )
        .await
    }

    /// Revokes every token scoped to a project issued until now (project disabled), or only
    /// one user's (a role assignment removed), so that re-enabling or re-granting later
    /// does not bring old tokens back.
    pub async fn revoke_project_tokens(
        &self,
        project_id: &str,
        user_id: Option<&str>,
    ) -> Result<()> {
        let event = Revocation {
            project_id: Some(project_id),
            user_id,
            ..Revocation::default()
        };
        self.record(event, self.horizon()).await
    }

    /// Until when an event can still match a token issued now.
    fn horizon(&self) -> i64 {
        now_micros() + self.config.token_expiration as i64 * 1_000_000
    }

    async fn record(&self, event: Revocation<'_>, expires_at: i64) -> Result<()> {
        store::credentials::revoke(&self.pool, event, expires_at).await?;
        self.changed().await;
        Ok(())
    }
}

/// How the other services (and the auth layer) turn a token into a request context.
pub struct Validator(pub Arc<Identity>);

impl TokenValidator for Validator {
    fn validate<'a>(&'a self, token: &'a str) -> ValidateFuture<'a> {
        Box::pin(async move {
            match self.0.validate(token).await {
                Ok(validated) => Ok(validated.context()),
                Err(Error::Db(e)) => Err(ApiError::internal(e)),
                Err(_) => Err(ApiError::unauthorized(
                    "The request you have made requires authentication.",
                )),
            }
        })
    }
}
