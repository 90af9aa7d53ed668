//! `GET /v2/images`: Glance's filters, sorting and marker pagination, in SQL.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use onestack_api::AuthContext;
use onestack_db::Sql;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::{MEMBER_STATUSES, VISIBILITIES};
use crate::service::Images;
use crate::{store, views};

const DEFAULT_LIMIT: i64 = 25;
const MAX_LIMIT: i64 = 1000;
/// Sortable attributes and their column expressions (NULLs compare as the empty value).
const SORT_KEYS: [(&str, &str); 12] = [
    ("name", "COALESCE(name, '')"),
    ("status", "status"),
    ("container_format", "COALESCE(container_format, '')"),
    ("disk_format", "COALESCE(disk_format, '')"),
    ("size", "COALESCE(size, -1)"),
    ("virtual_size", "COALESCE(virtual_size, -1)"),
    ("id", "id"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
    ("visibility", "visibility"),
    ("owner", "owner"),
    ("min_disk", "min_disk"),
];
const NUMERIC_SORT: [&str; 5] = [
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "min_disk",
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
fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn sort_column(key: &str) -> Result<&'static str> {
    SORT_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, c)| *c)
        .ok_or_else(|| Error::BadRequest(format!("Invalid sort key: {key}.")))
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

pub async fn list(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    crate::policy::enforce(&ctx, crate::policy::Action::GetImages, "")?;
    let params = parse_query(raw.as_deref());
    let project = ctx.project_id().map(str::to_owned);
    let mut sql = Sql::new("SELECT * FROM images");
    let mut limit = DEFAULT_LIMIT;
    let mut marker = None;
    let mut sort: Vec<(String, bool)> = Vec::new();
    let mut sort_keys: Vec<String> = Vec::new();
    let mut sort_dirs: Vec<bool> = Vec::new();
    let mut visibility: Option<String> = None;
    let mut member_status = "accepted".to_owned();
    let mut os_hidden = false;
    for (key, value) in &params {
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
            "name" | "status" | "owner" | "disk_format" | "container_format" | "id" => {
                // `in:a,b` lists alternatives, as Glance allows.
                let values: Vec<&str> = value
                    .strip_prefix("in:")
                    .map_or(vec![value.as_str()], |v| v.split(',').collect());
                let mut alternatives = Vec::new();
                for v in values {
                    alternatives.push(format!("{key} = {}", sql.bind(v)));
                }
                sql.and_raw(&format!("({})", alternatives.join(" OR ")));
            }
            "tag" => {
                sql.and(
                    "id IN (SELECT image_id FROM image_tags WHERE tag = {})",
                    value.as_str(),
                );
            }
            "size_min" => {
                sql.and("size >= {}", int_param(key, value)?);
            }
            "size_max" => {
                sql.and("size <= {}", int_param(key, value)?);
            }
            "created_at" | "updated_at" => {
                let (op, at) = time_filter(value)?;
                sql.and(&format!("{key} {op} {{}}"), at);
            }
            "protected" => {
                sql.and(
                    "protected = {}",
                    i64::from(value.eq_ignore_ascii_case("true")),
                );
            }
            _ => {
                // Any other parameter filters on a free-form property.
                let property = serde_json::to_string(key).unwrap_or_default();
                let pattern = format!(
                    "%{}:{}%",
                    property,
                    serde_json::to_string(value).unwrap_or_default()
                );
                sql.and("properties LIKE {}", pattern);
            }
        }
    }
    if !os_hidden {
        sql.and_raw("os_hidden = 0");
    }
    // What the caller may see, then the visibility filter asked for.
    let member_clause = |sql: &mut Sql, project: &str| -> String {
        let p = sql.bind(project);
        if member_status == "all" {
            format!("id IN (SELECT image_id FROM image_members WHERE member_id = {p})")
        } else {
            let s = sql.bind(member_status.as_str());
            format!(
                "id IN (SELECT image_id FROM image_members WHERE member_id = {p} AND status = {s})"
            )
        }
    };
    match (visibility.as_deref(), project.as_deref(), ctx.is_admin()) {
        (Some("all"), _, true) => {}
        (Some(v), _, true) => {
            sql.and("visibility = {}", v);
        }
        (None, _, true) => {
            sql.and_raw("visibility <> 'community'");
        }
        (Some("public"), _, _) | (Some("community"), _, _) => {
            sql.and("visibility = {}", visibility.as_deref().unwrap_or_default());
        }
        (_, None, false) => {
            let v = visibility.as_deref().unwrap_or("public");
            if v != "public" && v != "all" {
                sql.and_raw("1 = 0");
            } else {
                sql.and_raw("visibility = 'public'");
            }
        }
        (v, Some(p), false) => {
            let owner = sql.bind(p);
            let shared = member_clause(&mut sql, p);
            let clause = match v {
                Some("private") => format!("(visibility = 'private' AND owner = {owner})"),
                Some("shared") => {
                    format!("(visibility = 'shared' AND (owner = {owner} OR {shared}))")
                }
                Some("all") => format!(
                    "(visibility IN ('public', 'community') OR owner = {owner} OR (visibility = 'shared' AND {shared}))"
                ),
                _ => format!(
                    "(visibility = 'public' OR owner = {owner} OR (visibility = 'shared' AND {shared}))"
                ),
            };
            sql.and_raw(&clause);
        }
    }
    // Sorting: `sort=` wins; else sort_key/sort_dir; default created_at desc; id breaks ties.
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
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), sort_dirs.get(i).copied().unwrap_or(default_dir)))
            .collect();
    }
    if !sort.iter().any(|(k, _)| k == "id") {
        let last = sort.last().map(|(_, d)| *d).unwrap_or(false);
        sort.push(("id".into(), last));
    }
    let columns: Vec<(&'static str, bool, &str)> = sort
        .iter()
        .map(|(k, d)| sort_column(k).map(|c| (c, *d, k.as_str())))
        .collect::<Result<_>>()?;
    if let Some(marker) = &marker {
        let marker_image = match store::get(&images.pool, marker).await? {
            Some(m) if images.visible(&ctx, &m).await? => m,
            _ => {
                return Err(Error::BadRequest(format!(
                    "marker {marker} could not be found."
                )));
            }
        };
        let image_json = views::image(&marker_image);
        // Keyset pagination: rows strictly after the marker in the sort order.
        let mut alternatives = Vec::new();
        for i in 0..columns.len() {
            let mut parts = Vec::new();
            for (j, (column, asc, key)) in columns.iter().enumerate().take(i + 1) {
                let value = marker_value(&marker_image, &image_json, key);
                let placeholder = sql.bind(value);
                let op = if j < i {
                    "="
                } else if *asc {
                    ">"
                } else {
                    "<"
                };
                parts.push(format!("{column} {op} {placeholder}"));
            }
            alternatives.push(format!("({})", parts.join(" AND ")));
        }
        sql.and_raw(&format!("({})", alternatives.join(" OR ")));
    }
    let order: Vec<String> = columns
        .iter()
        .map(|(c, asc, _)| format!("{c} {}", if *asc { "ASC" } else { "DESC" }))
        .collect();
    sql.push(&format!(" ORDER BY {}", order.join(", ")));
    let fetch = sql.bind(limit + 1);
    sql.push(&format!(" LIMIT {fetch}"));
    let mut page = store::list(&images.pool, &sql).await?;
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    let mut body = json!({
        "images": page.iter().map(views::image).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if more && let Some(last) = page.last() {
        let kept: Vec<String> = params
            .iter()
            .filter(|(k, _)| k != "marker")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .chain(std::iter::once(format!("marker={}", last.id)))
            .collect();
        body["next"] = json!(format!("/v2/images?{}", kept.join("&")));
    }
    Ok(Json(body))
}

fn marker_value(image: &crate::model::Image, json: &Value, key: &str) -> onestack_db::Bind {
    match key {
        "created_at" => image.created_at.into(),
        "updated_at" => image.updated_at.into(),
        "size" => image.size.unwrap_or(-1).into(),
        "virtual_size" => image.virtual_size.unwrap_or(-1).into(),
        "min_disk" => image.min_disk.into(),
        k if NUMERIC_SORT.contains(&k) => 0i64.into(),
        k => json.get(k).and_then(Value::as_str).unwrap_or("").into(),
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
