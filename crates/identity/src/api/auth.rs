//! `/v3/auth/*`: token issue (password, token, application credential), validation,
//! check, revocation, and what a token may see (catalog, projects, domains, system).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use onestack_db::now_micros;
use serde_json::{Value, json};

use super::lookup_domain_ref;
use crate::error::{Error, Result};
use crate::model::{TargetType, User};
use crate::policy::{Target, enforce};
use crate::service::{Identity, ValidatedToken};
use crate::token::{Payload, TokenScope, new_audit_id};
use crate::{password, store, views};

const SUBJECT_TOKEN: &str = "x-subject-token";

fn subject_token(headers: &HeaderMap) -> Result<&str> {
    headers
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::validation("X-Subject-Token is required."))
}

/// Who authenticated and how, before a scope is applied.
struct Authenticated {
    user: User,
    methods: u8,
    /// From a `token` method: the parent token, whose expiry and audit chain carry over.
    parent: Option<Arc<ValidatedToken>>,
    application_credential: Option<crate::model::AppCredential>,
}

/// `POST /v3/auth/tokens`.
pub async fn issue(
    State(identity): State<Arc<Identity>>,
    Query(params): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response> {
    let mut auth = Fields::from_body(body, "auth")?;
    let id_section = auth
        .opt_object("identity")?
        .ok_or_else(|| Error::validation("'identity' is a required property."))?;
    let scope = take_scope(&mut auth)?;
    let authenticated = authenticate(
        &identity,
        Fields::from_object(Value::Object(id_section), "identity")?,
    )
    .await?;

    let scope = match (scope, &authenticated) {
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
        (Some(s), _) => resolve_scope(&identity, s).await?,
        (
            None,
            Authenticated {
                parent: Some(p), ..
            },
        ) => p.payload.scope.clone(),
        (None, Authenticated { user, .. }) => default_scope(&identity, user).await?,
    };
    let now = now_micros();
    let lifetime = identity.config.token_expiration as i64 * 1_000_000;
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
    let validated = identity.resolve(payload).await?;
    let token = identity.sealer.seal(&validated.payload);
    let catalog = if params.contains_key("nocatalog") {
        None
    } else {
        Some(identity.catalog().await?)
    };
    let body = views::token(&validated, catalog.as_deref().map(|c| c.as_slice()));
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(
        SUBJECT_TOKEN,
        HeaderValue::from_str(&token).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(response)
}

/// `scope` may be an object or the string "unscoped".
fn take_scope(auth: &mut Fields) -> Result<Option<Value>> {
    match auth.take("scope") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "unscoped" => Ok(Some(json!("unscoped"))),
        Some(scope @ Value::Object(_)) => Ok(Some(scope)),
        Some(other) => Err(Error::validation(format!("Invalid scope {other}."))),
    }
}

async fn authenticate(identity: &Identity, mut section: Fields) -> Result<Authenticated> {
    let methods = section.opt_string_list("methods", 64)?.unwrap_or_default();
    if methods.is_empty() {
        return Err(Error::validation(
            "'methods' must list at least one authentication method.",
        ));
    }
    let mut result: Option<Authenticated> = None;
    for method in &methods {
        let data = section.opt_object(method)?.ok_or_else(|| {
            Error::validation(format!(
                "The '{method}' method needs its '{method}' section."
            ))
        })?;
        let data = Fields::from_object(Value::Object(data), "method")?;
        let next = match method.as_str() {
            "password" => password_method(identity, data).await?,
            "token" => token_method(identity, data).await?,
            "application_credential" => app_credential_method(identity, data).await?,
            other => {
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

/// Finds the user named by `{"id"}` or `{"name", "domain": {"id"|"name"}}`.
async fn find_user(identity: &Identity, user: &mut Fields) -> Result<Option<User>> {
    if let Some(id) = user.opt_string("id")? {
        return Ok(store::users::get(&identity.pool, &id).await?);
    }
    let name = user
        .opt_string("name")?
        .ok_or_else(|| Error::validation("A user needs an 'id', or a 'name' and a 'domain'."))?;
    let domain = user
        .opt_object("domain")?
        .ok_or_else(|| Error::validation("A user given by name needs its 'domain'."))?;
    let Some(domain) = lookup_domain_ref(identity, Value::Object(domain)).await? else {
        return Ok(None);
    };
    Ok(store::users::find_by_name(&identity.pool, &domain.id, &name).await?)
}

fn is_locked(identity: &Identity, user: &User) -> bool {
    let attempts = identity.config.lockout_failure_attempts;
    attempts > 0
        && user.failed_auth_count >= i64::from(attempts)
        && user.last_failed_auth_at.is_some_and(|at| {
            now_micros() - at < identity.config.lockout_duration as i64 * 1_000_000
        })
}

async fn password_method(identity: &Identity, mut data: Fields) -> Result<Authenticated> {
    let mut user_section = Fields::from_object(
        Value::Object(
            data.opt_object("user")?
                .ok_or_else(|| Error::validation("'user' is a required property."))?,
        ),
        "user",
    )?;
    let password = user_section
        .opt_string("password")?
        .ok_or_else(|| Error::validation("'password' is required."))?;
    let user = find_user(identity, &mut user_section).await?;
    let cost = identity.config.password_hash_rounds;
    let locked = user.as_ref().is_some_and(|u| is_locked(identity, u));
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
        if identity.config.lockout_failure_attempts > 0 {
            if user.failed_auth_count >= i64::from(identity.config.lockout_failure_attempts) {
                // The lockout has expired (else we would not be here): count afresh, as Keystone.
                store::users::reset_failed_auth(&identity.pool, &user.id).await?;
            }
            store::users::record_failed_auth(&identity.pool, &user.id).await?;
        }
        return Err(Error::Unauthorized);
    }
    if user.failed_auth_count > 0 {
        store::users::reset_failed_auth(&identity.pool, &user.id).await?;
    }
    if !user.enabled {
        return Err(Error::Unauthorized);
    }
    if identity.password_rules.is_expired(&user) {
        return Err(Error::UnauthorizedBecause(format!(
            "The password is expired and needs to be changed for user: {}.",
            user.id
        )));
    }
    Ok(Authenticated {
        user,
        methods: Payload::method_bit("password"),
        parent: None,
        application_credential: None,
    })
}

async fn token_method(identity: &Identity, mut data: Fields) -> Result<Authenticated> {
    let id = data
        .opt_string("id")?
        .ok_or_else(|| Error::validation("'id' is required for the token method."))?;
    let parent = identity
        .validate(&id)
        .await
        .map_err(|_| Error::Unauthorized)?;
    Ok(Authenticated {
        user: parent.user.clone(),
        methods: parent.payload.methods | Payload::method_bit("token"),
        parent: Some(parent),
        application_credential: None,
    })
}

async fn app_credential_method(identity: &Identity, mut data: Fields) -> Result<Authenticated> {
    let secret = data
        .opt_string("secret")?
        .ok_or_else(|| Error::validation("'secret' is required."))?;
    let credential = if let Some(id) = data.opt_string("id")? {
        store::credentials::get_app_credential(&identity.pool, &id).await?
    } else {
        let name = data.opt_string("name")?.ok_or_else(|| {
            Error::validation("An application credential needs an 'id' or a 'name' and a 'user'.")
        })?;
        let mut user = Fields::from_object(
            Value::Object(
                data.opt_object("user")?
                    .ok_or_else(|| Error::validation("'user' is required with 'name'."))?,
            ),
            "user",
        )?;
        match find_user(identity, &mut user).await? {
            Some(user) => {
                store::credentials::list_app_credentials(&identity.pool, &user.id, Some(&name))
                    .await?
                    .pop()
            }
            None => None,
        }
    };
    let matches = password::verify(
        secret,
        credential.as_ref().map(|c| c.secret_hash.clone()),
        identity.config.password_hash_rounds,
    )
    .await?;
    let credential = credential.filter(|_| matches).ok_or(Error::Unauthorized)?;
    if credential.expires_at.is_some_and(|e| e <= now_micros()) {
        return Err(Error::Unauthorized);
    }
    let user = store::users::get(&identity.pool, &credential.user_id)
        .await?
        .filter(|u| u.enabled)
        .ok_or(Error::Unauthorized)?;
    Ok(Authenticated {
        user,
        methods: Payload::method_bit("application_credential"),
        parent: None,
        application_credential: Some(credential),
    })
}

async fn resolve_scope(identity: &Identity, scope: Value) -> Result<TokenScope> {
    if scope == json!("unscoped") {
        return Ok(TokenScope::Unscoped);
    }
    let mut scope = Fields::from_object(scope, "scope")?;
    if let Some(project) = scope.opt_object("project")? {
        let mut project = Fields::from_object(Value::Object(project), "project")?;
        let found = if let Some(id) = project.opt_string("id")? {
            store::projects::get_project(&identity.pool, &id).await?
        } else {
            let name = project.opt_string("name")?.ok_or_else(|| {
                Error::validation("A project scope needs an 'id' or a 'name' and a 'domain'.")
            })?;
            let domain = project
                .opt_object("domain")?
                .ok_or_else(|| Error::validation("A project scope by name needs its 'domain'."))?;
            match lookup_domain_ref(identity, Value::Object(domain)).await? {
                Some(d) => {
                    store::projects::find_project_by_name(&identity.pool, &d.id, &name).await?
                }
                None => None,
            }
        };
        let project = found.ok_or_else(|| {
            Error::UnauthorizedBecause(
                "The requested project is not available to this user.".into(),
            )
        })?;
        return Ok(TokenScope::Project(project.id));
    }
    if let Some(domain) = scope.opt_object("domain")? {
        let domain = lookup_domain_ref(identity, Value::Object(domain))
            .await?
            .ok_or_else(|| {
                Error::UnauthorizedBecause(
                    "The requested domain is not available to this user.".into(),
                )
            })?;
        return Ok(TokenScope::Domain(domain.id));
    }
    if let Some(system) = scope.opt_object("system")? {
        if system.get("all") == Some(&Value::Bool(true)) {
            return Ok(TokenScope::System);
        }
        return Err(Error::validation("A system scope must be {\"all\": true}."));
    }
    if scope.contains("OS-TRUST:trust") {
        return Err(Error::validation("Trusts are not supported."));
    }
    Err(Error::validation(
        "The scope must name a project, a domain or the system.",
    ))
}

/// Without a requested scope: the user's default project when it is usable, else unscoped.
async fn default_scope(identity: &Identity, user: &User) -> Result<TokenScope> {
    if let Some(project_id) = &user.default_project_id {
        let usable = store::projects::get_project(&identity.pool, project_id)
            .await?
            .is_some_and(|p| p.enabled)
            && !identity
                .effective_roles(&user.id, TargetType::Project, project_id)
                .await?
                .is_empty();
        if usable {
            return Ok(TokenScope::Project(project_id.clone()));
        }
    }
    Ok(TokenScope::Unscoped)
}

/// `GET /v3/auth/tokens`.
pub async fn validate(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response> {
    let validated = identity.validate(subject_token(&headers)?).await?;
    enforce(
        &ctx,
        "identity:validate_token",
        Target::user(&validated.user.id),
    )?;
    let nocatalog = params.contains_key("nocatalog");
    let slot = &validated.rendered[usize::from(nocatalog)];
    let body = match slot.get() {
        Some(body) => body.clone(),
        None => {
            let catalog = if nocatalog {
                None
            } else {
                Some(identity.catalog().await?)
            };
            let value = views::token(&validated, catalog.as_deref().map(|c| c.as_slice()));
            let body = Bytes::from(
                serde_json::to_vec(&value).map_err(|e| Error::Internal(e.to_string()))?,
            );
            slot.get_or_init(|| body).clone()
        }
    };
    let mut response = ([(http::header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(token) = headers.get(SUBJECT_TOKEN) {
        response.headers_mut().insert(SUBJECT_TOKEN, token.clone());
    }
    Ok(response)
}

/// `HEAD /v3/auth/tokens`.
pub async fn check(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let validated = identity.validate(subject_token(&headers)?).await?;
    enforce(
        &ctx,
        "identity:check_token",
        Target::user(&validated.user.id),
    )?;
    Ok(StatusCode::OK)
}

/// `DELETE /v3/auth/tokens`: revokes the token and every token re-scoped from it.
pub async fn revoke(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let validated = identity.validate(subject_token(&headers)?).await?;
    enforce(
        &ctx,
        "identity:revoke_token",
        Target::user(&validated.user.id),
    )?;
    identity
        .revoke_audit_id(
            &validated.payload.audit_ids[0],
            validated.payload.expires_at,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/auth/catalog`.
pub async fn catalog(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:get_auth_catalog", Target::default())?;
    if ctx.project_id().is_none()
        && ctx.domain_id().is_none()
        && ctx.scope != onestack_api::Scope::System
    {
        return Err(Error::ForbiddenBecause(
            "A scoped token is required to read the catalog.".into(),
        ));
    }
    let entries = identity.catalog().await?;
    Ok(Json(json!({
        "catalog": views::catalog(&entries, ctx.project_id()),
        "links": { "self": views::url(&base, "auth/catalog"), "previous": null, "next": null },
    })))
}

/// `GET /v3/auth/projects`: the enabled projects the caller has a role on.
pub async fn projects(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:get_auth_projects", Target::default())?;
    let ids =
        store::assignments::target_ids_for_user(&identity.pool, &ctx.user_id, TargetType::Project)
            .await?;
    let filter = store::projects::ProjectFilter {
        ids: Some(ids),
        enabled: Some(true),
        ..Default::default()
    };
    let projects = store::projects::list_projects(&identity.pool, &filter).await?;
    Ok(Json(views::collection(
        &base,
        "projects",
        "auth/projects",
        projects.iter().map(|p| views::project(&base, p)).collect(),
    )))
}

/// `GET /v3/auth/domains`: the enabled domains the caller has a role on.
pub async fn domains(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:get_auth_domains", Target::default())?;
    let ids =
        store::assignments::target_ids_for_user(&identity.pool, &ctx.user_id, TargetType::Domain)
            .await?;
    let mut domains = Vec::new();
    for id in ids {
        if let Some(d) = store::projects::get_domain(&identity.pool, &id)
            .await?
            .filter(|d| d.enabled)
        {
            domains.push(views::domain(&base, &d));
        }
    }
    Ok(Json(views::collection(
        &base,
        "domains",
        "auth/domains",
        domains,
    )))
}

/// `GET /v3/auth/system`: whether the caller has a role on the system.
pub async fn system(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:get_auth_system", Target::default())?;
    let roles = identity
        .effective_roles(&ctx.user_id, TargetType::System, crate::model::SYSTEM_ALL)
        .await?;
    let system = if roles.is_empty() {
        vec![]
    } else {
        vec![json!({"all": true})]
    };
    Ok(Json(
        json!({ "system": system, "links": { "self": views::url(&base, "auth/system"), "previous": null, "next": null } }),
    ))
}
