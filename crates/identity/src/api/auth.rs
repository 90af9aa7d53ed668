//! `/v3/auth/*`: token issue (password, token, application credential), validation,
//! check, revocation, and what a token may see (catalog, projects, domains, system).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use onestack_api::{Fields, JsonBody};
use serde_json::{Map, Value, json};

use super::{Call, Reply};
use crate::error::{Error, Result};
use crate::ops::Parsed;
use crate::ops::auth::{
    AppCredentialRef, AuthMethod, DomainRef, ProjectRef, ScopeRequest, TokenRequest, UserRef,
};
use crate::service::Identity;
use crate::views;

const SUBJECT_TOKEN: &str = "x-subject-token";

fn subject_token(headers: &HeaderMap) -> Result<&str> {
    headers
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::validation("X-Subject-Token is required."))
}

/// `{"id": ...}` or `{"name": ...}`.
fn domain_ref(value: Value) -> Result<DomainRef> {
    let mut fields = Fields::from_object(value, "domain")?;
    if let Some(id) = fields.opt_string("id")? {
        return Ok(DomainRef::Id(id));
    }
    match fields.opt_string("name")? {
        Some(name) => Ok(DomainRef::Name(name)),
        None => Err(Error::validation("A domain needs an 'id' or a 'name'.")),
    }
}

/// An object field of `fields`, required with `message`.
fn section(fields: &mut Fields, key: &str, message: &str) -> Result<Map<String, Value>> {
    fields
        .opt_object(key)?
        .ok_or_else(|| Error::validation(message))
}

/// `{"id"}` or `{"name", "domain": {"id"|"name"}}`.
fn user_ref(user: &mut Fields) -> Result<UserRef> {
    if let Some(id) = user.opt_string("id")? {
        return Ok(UserRef::Id(id));
    }
    let name = user
        .opt_string("name")?
        .ok_or_else(|| Error::validation("A user needs an 'id', or a 'name' and a 'domain'."))?;
    let domain = section(user, "domain", "A user given by name needs its 'domain'.")?;
    Ok(UserRef::Name {
        name,
        domain: domain_ref(Value::Object(domain))?,
    })
}

fn password_method(mut data: Fields) -> Result<AuthMethod> {
    let user = section(&mut data, "user", "'user' is a required property.")?;
    let mut user = Fields::from_object(Value::Object(user), "user")?;
    let password = user
        .opt_string("password")?
        .ok_or_else(|| Error::validation("'password' is required."))?;
    Ok(AuthMethod::Password {
        user: user_ref(&mut user)?,
        password,
    })
}

fn app_credential_method(mut data: Fields) -> Result<AuthMethod> {
    let secret = data
        .opt_string("secret")?
        .ok_or_else(|| Error::validation("'secret' is required."))?;
    let credential = if let Some(id) = data.opt_string("id")? {
        AppCredentialRef::Id(id)
    } else {
        let name = data.opt_string("name")?.ok_or_else(|| {
            Error::validation("An application credential needs an 'id' or a 'name' and a 'user'.")
        })?;
        let user = section(&mut data, "user", "'user' is required with 'name'.")?;
        let mut user = Fields::from_object(Value::Object(user), "user")?;
        AppCredentialRef::Name {
            name,
            user: user_ref(&mut user)?,
        }
    };
    Ok(AuthMethod::AppCredential { credential, secret })
}

/// The method's section of `auth.identity`.
fn auth_method(identity: &mut Fields, method: &str) -> Parsed<AuthMethod> {
    let data = identity.opt_object(method)?.ok_or_else(|| {
        Error::validation(format!(
            "The '{method}' method needs its '{method}' section."
        ))
    })?;
    let mut data = Fields::from_object(Value::Object(data), "method")?;
    match method {
        "password" => password_method(data),
        "token" => Ok(AuthMethod::Token(data.opt_string("id")?.ok_or_else(
            || Error::validation("'id' is required for the token method."),
        )?)),
        "application_credential" => app_credential_method(data),
        other => Ok(AuthMethod::Unsupported(other.to_owned())),
    }
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

fn scope_request(scope: Value) -> Parsed<ScopeRequest> {
    if scope == json!("unscoped") {
        return Ok(ScopeRequest::Unscoped);
    }
    let mut scope = Fields::from_object(scope, "scope")?;
    if let Some(project) = scope.opt_object("project")? {
        let mut project = Fields::from_object(Value::Object(project), "project")?;
        if let Some(id) = project.opt_string("id")? {
            return Ok(ScopeRequest::Project(ProjectRef::Id(id)));
        }
        let name = project.opt_string("name")?.ok_or_else(|| {
            Error::validation("A project scope needs an 'id' or a 'name' and a 'domain'.")
        })?;
        let domain = section(
            &mut project,
            "domain",
            "A project scope by name needs its 'domain'.",
        )?;
        return Ok(ScopeRequest::Project(ProjectRef::Name {
            name,
            domain: domain_ref(Value::Object(domain))?,
        }));
    }
    if let Some(domain) = scope.opt_object("domain")? {
        return Ok(ScopeRequest::Domain(domain_ref(Value::Object(domain))?));
    }
    if let Some(system) = scope.opt_object("system")? {
        if system.get("all") == Some(&Value::Bool(true)) {
            return Ok(ScopeRequest::System);
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

fn token_request(body: Value) -> Result<TokenRequest> {
    let mut auth = Fields::from_body(body, "auth")?;
    let identity = section(&mut auth, "identity", "'identity' is a required property.")?;
    let scope = take_scope(&mut auth)?;
    let mut identity = Fields::from_object(Value::Object(identity), "identity")?;
    let methods = identity.opt_string_list("methods", 64)?.unwrap_or_default();
    if methods.is_empty() {
        return Err(Error::validation(
            "'methods' must list at least one authentication method.",
        ));
    }
    Ok(TokenRequest {
        methods: methods
            .iter()
            .map(|m| auth_method(&mut identity, m))
            .collect(),
        scope: scope.map(scope_request),
    })
}

/// `POST /v3/auth/tokens`.
pub async fn issue(
    State(identity): State<Arc<Identity>>,
    Query(params): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response> {
    let issued = identity
        .issue_token(token_request(body)?, !params.contains_key("nocatalog"))
        .await?;
    let body = views::token(
        &issued.validated,
        issued.catalog.as_deref().map(Vec::as_slice),
    );
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert(
        SUBJECT_TOKEN,
        HeaderValue::from_str(&issued.token).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(response)
}

/// `GET /v3/auth/tokens`.
pub async fn validate(
    call: Call,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response> {
    let nocatalog = params.contains_key("nocatalog");
    let token = subject_token(&headers)?;
    let view = call
        .identity
        .validate_token(&call.ctx, token, !nocatalog)
        .await?;
    let slot = &view.validated.rendered[usize::from(nocatalog)];
    let body = match slot.get() {
        Some(body) => body.clone(),
        None => {
            let value = views::token(&view.validated, view.catalog.as_deref().map(Vec::as_slice));
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
pub async fn check(call: Call, headers: HeaderMap) -> Result<StatusCode> {
    let token = subject_token(&headers)?;
    call.identity.check_token(&call.ctx, token).await?;
    Ok(StatusCode::OK)
}

/// `DELETE /v3/auth/tokens`: revokes the token and every token re-scoped from it.
pub async fn revoke(call: Call, headers: HeaderMap) -> Result<StatusCode> {
    let token = subject_token(&headers)?;
    call.identity.revoke_token(&call.ctx, token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/auth/catalog`.
pub async fn catalog(call: Call) -> Result<Json<Value>> {
    let entries = call.identity.auth_catalog(&call.ctx).await?;
    let catalog = views::catalog(&entries, call.ctx.project_id());
    Ok(Json(views::collection(
        &call.base,
        "catalog",
        "auth/catalog",
        catalog,
    )))
}

/// `GET /v3/auth/projects`: the enabled projects the caller has a role on.
pub async fn projects(call: Call) -> Reply {
    let projects = call.identity.auth_projects(&call.ctx).await?;
    call.many("projects", "auth/projects", views::project, &projects)
}

/// `GET /v3/auth/domains`: the enabled domains the caller has a role on.
pub async fn domains(call: Call) -> Reply {
    let domains = call.identity.auth_domains(&call.ctx).await?;
    call.many("domains", "auth/domains", views::domain, &domains)
}

/// `GET /v3/auth/system`: whether the caller has a role on the system.
pub async fn system(call: Call) -> Result<Json<Value>> {
    let system = if call.identity.auth_system(&call.ctx).await? {
        vec![json!({"all": true})]
    } else {
        vec![]
    };
    Ok(Json(views::collection(
        &call.base,
        "system",
        "auth/system",
        system,
    )))
}
