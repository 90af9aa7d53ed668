//! Cinder's collection paging, shared by volumes and snapshots: `limit` (at most 1000) and
//! `marker` over a listing in its order, the `*_links` next link, and `count` from 3.45.

use onestack_api::paging::{self, Params};
use serde_json::{Value, json};

use super::Ctx;
use super::input::flag;
use crate::error::{Error, Result};

/// One page of `items` (keyed by id, in order), its next link, and how many there were.
pub fn page<T>(
    items: Vec<(String, T)>,
    params: &Params,
    ctx: &Ctx,
    path: &str,
) -> Result<(Vec<T>, Option<Value>, usize)> {
    let count = items.len();
    let limit = match paging::first(params, "limit") {
        Some(l) => match l.parse::<i64>() {
            Ok(l) if l < 0 => return Err(Error::Invalid("limit param must be positive".into())),
            Ok(l) => Some(usize::try_from(l).unwrap_or(usize::MAX).min(1000)),
            Err(_) => return Err(Error::Invalid("limit param must be an integer".into())),
        },
        None => None,
    };
    let (page, more) = paging::window(items, paging::first(params, "marker"), limit)
        .map_err(|m| Error::NotFound(format!("Marker {} could not be found.", m.0)))?;
    let next = match page.last() {
        Some((last, _)) if more => Some(json!([{
            "rel": "next",
            "href": paging::link(&ctx.view.collection(path), params, &["marker"], &[("marker", last)]),
        }])),
        _ => None,
    };
    Ok((page.into_iter().map(|(_, v)| v).collect(), next, count))
}

/// `{"<key>": items}` with `<key>_links` when there is a next page and `count` when asked
/// for (3.45+).
pub fn body(
    key: &str,
    items: Vec<Value>,
    next: Option<Value>,
    count: usize,
    ctx: &Ctx,
    params: &Params,
) -> Value {
    let mut body = json!({ key: items });
    if let Some(next) = next {
        body[format!("{key}_links")] = next;
    }
    let with_count = paging::first(params, "with_count")
        .is_some_and(|v| flag("with_count", &json!(v)).unwrap_or(false));
    if with_count && ctx.version.at_least(45) {
        body["count"] = json!(count);
    }
    body
}

/// Whether an admin asked for every project's (`all_tenants`).
pub fn all_projects(params: &Params) -> bool {
    paging::first(params, "all_tenants")
        .is_some_and(|v| flag("all_tenants", &json!(v)).unwrap_or(false))
}
