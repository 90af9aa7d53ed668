//! Version discovery at `/identity` and `/identity/v3`, as Keystone serves it.

use axum::Json;
use axum::http::StatusCode;
use onestack_api::BaseUrl;
use serde_json::{Value, json};

fn v3_document(base: &BaseUrl) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{ "rel": "self", "href": format!("{}/identity/v3/", base.0) }],
        "media-types": [{ "base": "application/json", "type": "application/vnd.openstack.identity-v3+json" }],
    })
}

/// `GET /identity`: 300 Multiple Choices listing v3, as Keystone answers at its root.
pub async fn root(base: BaseUrl) -> (StatusCode, Json<Value>) {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({ "versions": { "values": [v3_document(&base)] } })),
    )
}

/// `GET /identity/v3`.
pub async fn v3(base: BaseUrl) -> Json<Value> {
    Json(json!({ "version": v3_document(&base) }))
}
