//! `GET /v2/images`: the query string parsed into an [`ImageQuery`] (Glance's filters,
//! sorting and marker pagination), and the page rendered with its `next` link.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use onestack_api::{AuthContext, paging};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::{MEMBER_STATUSES, VISIBILITIES};
use crate::ops::list::{DEFAULT_LIMIT, Filter, ImageQuery, MAX_LIMIT, SortKey};
use crate::service::Images;
use crate::views;

/// Core attributes filtered by equality; each is also its column.
const EQUALITY_FILTERS: [&str; 6] = [
    "name",
    "status",
    "owner",
    "disk_format",
    "container_format",
    "id",
];

fn decode(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters in order, repeated keys kept (`tag=a&tag=b`).
fn parse_query(raw: Option<&str>) -> paging::Params {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn direction(dir: &str) -> Result<bool> {
    match dir {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => Err(Error::BadRequest(format!(
            "Invalid sort direction: {other}."
        ))),
    }
}

/// `gt:2020-01-01T00:00:00Z`-style time filters: operator and µs timestamp.
fn time_filter(value: &str) -> Result<(&'static str, i64)> {
    let (op, text) = value
        .split_once(':')
        .filter(|(op, _)| matches!(*op, "gt" | "gte" | "lt" | "lte" | "eq" | "neq"))
        .unwrap_or(("eq", value));
    let sql_op = match op {
        "gt" => ">",
        "gte" => ">=",
        "lt" => "<",
        "lte" => "<=",
        "neq" => "<>",
        _ => "=",
    };
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            Error::BadRequest(format!(
                "Invalid time '{text}': use ISO 8601, e.g. 2026-01-31T12:00:00Z."
            ))
        })?;
    Ok((sql_op, (parsed.unix_timestamp_nanos() / 1000) as i64))
}

fn int_param(key: &str, value: &str) -> Result<i64> {
    value
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| Error::BadRequest(format!("Invalid {key}: {value}.")))
}

/// The order asked for: `sort=` wins; else `sort_key`/`sort_dir`; by default `created_at`
/// descending; `id` always breaks ties.
fn sort_order(
    sort: Vec<(String, bool)>,
    mut sort_keys: Vec<String>,
    sort_dirs: Vec<bool>,
) -> Result<Vec<(SortKey, bool)>> {
    let mut sort = sort;
    if sort.is_empty() {
        if sort_keys.is_empty() {
            sort_keys.push("created_at".into());
        }
        if sort_dirs.len() > 1 && sort_dirs.len() != sort_keys.len() {
            return Err(Error::BadRequest(
                "The number of sort_dir values must match the number of sort_key values.".into(),
            ));
        }
        let default_dir = sort_dirs.first().copied().unwrap_or(false);
        sort = sort_keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, sort_dirs.get(i).copied().unwrap_or(default_dir)))
            .collect();
    }
    if !sort.iter().any(|(k, _)| k == "id") {
        let last = sort.last().map(|(_, d)| *d).unwrap_or(false);
        sort.push(("id".into(), last));
    }
    sort.iter()
        .map(|(k, d)| SortKey::parse(k).map(|key| (key, *d)))
        .collect()
}

/// The list's query parameters as a typed query; any other parameter filters on a
/// free-form property.
fn image_query(params: &[(String, String)]) -> Result<ImageQuery> {
    let mut filters = Vec::new();
    let mut limit = DEFAULT_LIMIT;
    let mut marker = None;
    let mut sort: Vec<(String, bool)> = Vec::new();
    let mut sort_keys: Vec<String> = Vec::new();
    let mut sort_dirs: Vec<bool> = Vec::new();
    let mut visibility: Option<String> = None;
    let mut member_status = "accepted".to_owned();
    let mut os_hidden = false;
    for (key, value) in params {
        match key.as_str() {
            "limit" => limit = int_param("limit", value)?.min(MAX_LIMIT),
            "marker" => marker = Some(value.clone()),
            "sort_key" => sort_keys.extend(value.split(',').map(str::to_owned)),
            "sort_dir" => {
                for d in value.split(',') {
                    sort_dirs.push(direction(d)?);
                }
            }
            "sort" => {
                for part in value.split(',').filter(|p| !p.is_empty()) {
                    let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
                    sort.push((k.to_owned(), direction(d)?));
                }
            }
            "visibility" => {
                if value != "all" && !VISIBILITIES.contains(&value.as_str()) {
                    return Err(Error::BadRequest(format!(
                        "Invalid visibility value: {value}."
                    )));
                }
                visibility = Some(value.clone());
            }
            "member_status" => {
                if value != "all" && !MEMBER_STATUSES.contains(&value.as_str()) {
                    return Err(Error::BadRequest(format!(
                        "Invalid member_status value: {value}."
                    )));
                }
                member_status = value.clone();
            }
            "os_hidden" => os_hidden = value.eq_ignore_ascii_case("true"),
            "tag" => filters.push(Filter::Tag(value.clone())),
            "size_min" => filters.push(Filter::SizeMin(int_param(key, value)?)),
            "size_max" => filters.push(Filter::SizeMax(int_param(key, value)?)),
            "created_at" | "updated_at" => {
                let (op, at) = time_filter(value)?;
                let attribute = if key == "created_at" {
                    "created_at"
                } else {
                    "updated_at"
                };
                filters.push(Filter::Time { attribute, op, at });
            }
            "protected" => filters.push(Filter::Protected(value.eq_ignore_ascii_case("true"))),
            other => match EQUALITY_FILTERS.iter().find(|a| **a == other) {
                // `in:a,b` lists alternatives, as Glance allows.
                Some(attribute) => filters.push(Filter::OneOf {
                    attribute,
                    values: value.strip_prefix("in:").map_or(vec![value.clone()], |v| {
                        v.split(',').map(str::to_owned).collect()
                    }),
                }),
                None => filters.push(Filter::Property {
                    name: key.clone(),
                    value: value.clone(),
                }),
            },
        }
    }
    Ok(ImageQuery {
        filters,
        visibility,
        member_status,
        os_hidden,
        sort: sort_order(sort, sort_keys, sort_dirs)?,
        marker,
        limit,
    })
}

pub async fn list(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let params = parse_query(raw.as_deref());
    let page = images.list(&ctx, image_query(&params)).await?;
    let mut body = json!({
        "images": page.images.iter().map(views::image).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if page.more
        && let Some(last) = page.images.last()
    {
        let next = paging::link("/v2/images", &params, &["marker"], &[("marker", &last.id)]);
        body["next"] = json!(next);
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_keep_repeats_and_decode() {
        let q = parse_query(Some("tag=a&tag=b%20c&name=x+y&empty"));
        assert_eq!(q[0], ("tag".into(), "a".into()));
        assert_eq!(q[1], ("tag".into(), "b c".into()));
        assert_eq!(q[2], ("name".into(), "x y".into()));
        assert_eq!(q[3], ("empty".into(), String::new()));
    }

    #[test]
    fn time_filters_take_operators() {
        assert_eq!(
            time_filter("gt:1970-01-01T00:00:01Z").unwrap(),
            (">", 1_000_000)
        );
        assert_eq!(time_filter("1970-01-01T00:00:01Z").unwrap().0, "=");
        assert!(time_filter("lte:yesterday").is_err());
    }
}
