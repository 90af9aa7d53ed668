//! How identity resources look on the wire, as Keystone renders them.

use onestack_api::BaseUrl;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{
    AppCredential, Credential, Domain, Endpoint, Extra, Group, Project, Region, Role, Service, User,
};
use crate::service::{CatalogEntry, ValidatedToken};
use crate::token::TokenScope;

/// `{base}/identity/v3/{path}`.
pub fn url(base: &BaseUrl, path: &str) -> String {
    format!("{}/identity/v3/{path}", base.0)
}

fn links(base: &BaseUrl, path: &str) -> Value {
    json!({ "self": url(base, path) })
}

/// A collection with Keystone's `links` block.
pub fn collection(base: &BaseUrl, key: &str, path: &str, items: Vec<Value>) -> Value {
    json!({ key: items, "links": { "self": url(base, path), "previous": null, "next": null } })
}

/// [`collection`] of `items`, each shown by `view`.
pub fn listing<T>(
    base: &BaseUrl,
    key: &str,
    path: &str,
    items: &[T],
    view: impl Fn(&BaseUrl, &T) -> Value,
) -> Value {
    let items = items.iter().map(|item| view(base, item)).collect();
    collection(base, key, path, items)
}

/// Keystone's timestamp format: `2015-11-05T21:00:33.819948Z`.
pub use onestack_db::timestamps::micros_utc as timestamp;

/// Parses an RFC 3339 time (Keystone also takes it without a zone, as UTC).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let with_zone =
        if text.ends_with('Z') || text.contains('+') || text.rfind('-').is_some_and(|i| i > 10) {
            text.to_owned()
        } else {
            format!("{text}Z")
        };
    OffsetDateTime::parse(&with_zone, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1000) as i64)
}

/// A resource as Keystone shows it: its `fields`, `links` to its `path`, and the extra
/// attributes it was given (which never replace a field).
fn resource(base: &BaseUrl, path: &str, mut fields: Value, extra: &Extra) -> Value {
    fields["links"] = links(base, path);
    merge(fields, extra)
}

fn merge(mut object: Value, extra: &Extra) -> Value {
    if let Value::Object(map) = &mut object {
        for (key, value) in extra {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    object
}

pub fn domain(base: &BaseUrl, d: &Domain) -> Value {
    let fields = json!({
        "id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
        "tags": [], "options": {}
    });
    resource(base, &format!("domains/{}", d.id), fields, &d.extra)
}

pub fn project(base: &BaseUrl, p: &Project) -> Value {
    let fields = json!({
        "id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
        "enabled": p.enabled, "parent_id": p.parent_id.clone().unwrap_or_else(|| p.domain_id.clone()),
        "is_domain": false, "tags": p.tags, "options": {}
    });
    resource(base, &format!("projects/{}", p.id), fields, &p.extra)
}

/// A user; `expires_at` is when their password expires (microseconds), if it does.
pub fn user(base: &BaseUrl, u: &User, expires_at: Option<i64>) -> Value {
    let mut v = json!({
        "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
        "password_expires_at": expires_at.map(timestamp), "options": {},
    });
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    resource(base, &format!("users/{}", u.id), v, &u.extra)
}

pub fn group(base: &BaseUrl, g: &Group) -> Value {
    let fields = json!({
        "id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description
    });
    resource(base, &format!("groups/{}", g.id), fields, &g.extra)
}

pub fn role(base: &BaseUrl, r: &Role) -> Value {
    let fields = json!({
        "id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description,
        "options": {}
    });
    resource(base, &format!("roles/{}", r.id), fields, &r.extra)
}

pub fn role_ref(base: &BaseUrl, r: &Role) -> Value {
    json!({ "id": r.id, "name": r.name, "links": links(base, &format!("roles/{}", r.id)) })
}

pub fn region(base: &BaseUrl, r: &Region) -> Value {
    let fields = json!({
        "id": r.id, "description": r.description, "parent_region_id": r.parent_region_id
    });
    resource(base, &format!("regions/{}", r.id), fields, &r.extra)
}

pub fn service(base: &BaseUrl, s: &Service) -> Value {
    let fields = json!({
        "id": s.id, "type": s.service_type, "name": s.name, "description": s.description,
        "enabled": s.enabled
    });
    resource(base, &format!("services/{}", s.id), fields, &s.extra)
}

pub fn endpoint(base: &BaseUrl, e: &Endpoint) -> Value {
    let fields = json!({
        "id": e.id, "interface": e.interface, "region_id": e.region_id, "region": e.region_id,
        "url": e.url, "service_id": e.service_id, "enabled": e.enabled
    });
    resource(base, &format!("endpoints/{}", e.id), fields, &e.extra)
}

pub fn app_credential(
    base: &BaseUrl,
    a: &AppCredential,
    roles: &[Role],
    secret: Option<&str>,
) -> Value {
    let mut v = json!({
        "id": a.id, "name": a.name, "description": a.description, "user_id": a.user_id,
        "project_id": a.project_id, "expires_at": a.expires_at.map(timestamp),
        "unrestricted": a.unrestricted, "system": null, "access_rules": [],
        "roles": roles.iter().map(|r| json!({"id": r.id, "name": r.name, "domain_id": r.domain_id})).collect::<Vec<_>>(),
        "links": links(base, &format!("users/{}/application_credentials/{}", a.user_id, a.id)),
    });
    if let Some(secret) = secret {
        v["secret"] = json!(secret);
    }
    v
}

pub fn credential(base: &BaseUrl, c: &Credential) -> Value {
    let fields = json!({
        "id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.credential_type,
        "blob": c.blob
    });
    resource(base, &format!("credentials/{}", c.id), fields, &c.extra)
}

/// An EC2 credential as `/v3/users/{id}/credentials/OS-EC2` shows it.
pub fn ec2_credential(base: &BaseUrl, c: &Credential) -> Value {
    let blob: Map<String, Value> = serde_json::from_str(&c.blob).unwrap_or_default();
    json!({
        "access": blob.get("access").cloned().unwrap_or(Value::Null),
        "secret": blob.get("secret").cloned().unwrap_or(Value::Null),
        "user_id": c.user_id, "tenant_id": c.project_id, "trust_id": blob.get("trust_id").cloned().unwrap_or(Value::Null),
        "links": links(base, &format!("users/{}/credentials/OS-EC2/{}",
            c.user_id, blob.get("access").and_then(Value::as_str).unwrap_or_default())),
    })
}

fn named_domain(d: &Domain) -> Value {
    json!({ "id": d.id, "name": d.name })
}

/// The service catalog, with `%(project_id)s`-style placeholders filled in for the scope.
pub fn catalog(entries: &[CatalogEntry], project_id: Option<&str>) -> Vec<Value> {
    entries
        .iter()
        .map(|entry| {
            let endpoints: Vec<Value> = entry
                .endpoints
                .iter()
                .filter_map(|e| {
                    let url = substitute(&e.url, project_id)?;
                    Some(json!({
                        "id": e.id, "interface": e.interface, "region": e.region_id,
                        "region_id": e.region_id, "url": url,
                    }))
                })
                .collect();
            json!({
                "id": entry.service.id, "type": entry.service.service_type,
                "name": entry.service.name, "endpoints": endpoints,
            })
        })
        .collect()
}

fn substitute(url: &str, project_id: Option<&str>) -> Option<String> {
    let placeholders = [
        "%(tenant_id)s",
        "%(project_id)s",
        "$(tenant_id)s",
        "$(project_id)s",
    ];
    if !placeholders.iter().any(|p| url.contains(p)) {
        return Some(url.to_owned());
    }
    let project_id = project_id?;
    Some(
        placeholders
            .iter()
            .fold(url.to_owned(), |u, p| u.replace(p, project_id)),
    )
}

/// The `{"token": ...}` body of token issue and validation.
pub fn token(t: &ValidatedToken, catalog_entries: Option<&[CatalogEntry]>) -> Value {
    let mut body = json!({
        "methods": t.payload.method_names(),
        "user": {
        "id": t.user.id, "name": t.user.name, "domain": named_domain(&t.user_domain),
        "password_expires_at": null,
        },
        "audit_ids": t.payload.audit_ids,
        "issued_at": timestamp(t.payload.issued_at),
        "expires_at": timestamp(t.payload.expires_at),
    });
    match (&t.payload.scope, &t.project, &t.domain) {
        (TokenScope::Project(_), Some((p, d)), _) => {
            body["project"] = json!({ "id": p.id, "name": p.name, "domain": named_domain(d) });
            body["is_domain"] = json!(false);
        }
        (TokenScope::Domain(_), _, Some(d)) => body["domain"] = named_domain(d),
        (TokenScope::System, _, _) => body["system"] = json!({ "all": true }),
        _ => {}
    }
    if t.payload.scope != TokenScope::Unscoped {
        body["roles"] = t
            .roles
            .iter()
            .map(|r| json!({ "id": r.id, "name": r.name }))
            .collect();
        if let Some(entries) = catalog_entries {
            body["catalog"] =
                catalog(entries, t.project.as_ref().map(|(p, _)| p.id.as_str())).into();
        }
    }
    if let Some((id, name, unrestricted)) = &t.app_credential {
        body["application_credential"] =
            json!({ "id": id, "name": name, "restricted": !unrestricted });
    }
    json!({ "token": body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_keystone_timestamps() {
        assert_eq!(
            timestamp(1_446_757_233_819_948),
            "2015-11-05T21:00:33.819948Z"
        );
        assert_eq!(
            parse_timestamp("2015-11-05T21:00:33.819948Z"),
            Some(1_446_757_233_819_948)
        );
        assert_eq!(
            parse_timestamp("2015-11-05T21:00:33"),
            Some(1_446_757_233_000_000)
        );
        assert_eq!(parse_timestamp("tomorrow"), None);
    }

    #[test]
    fn substitutes_project_placeholders() {
        assert_eq!(
            substitute("http://h/v1/AUTH_%(project_id)s", Some("p")).unwrap(),
            "http://h/v1/AUTH_p"
        );
        assert_eq!(substitute("http://h/v1/AUTH_$(tenant_id)s", None), None);
        assert_eq!(
            substitute("http://h/identity/v3", None).unwrap(),
            "http://h/identity/v3"
        );
    }
}
