//! Cinder's collection paging, shared by volumes and snapshots: `limit` (at most 1000) and
//! `marker` over a listing in its order, the `*_links` next link, and `count` from 3.45.

use onestack_api::paging::{self, Params};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

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
    // Moved in, not through `json!`: that would serialize every item into a copy.
    let mut body = Value::Object(Map::from_iter([(key.to_owned(), Value::Array(items))]));
    if let Some(next) = next {
        body[format!("{key}_links")] = next;
    }
    if let Some(count) = asked_count(count, ctx, params) {
        body["count"] = json!(count);
    }
    body
}

/// The same body with typed items, serialized straight into the response.
pub struct Listing<T> {
    pub key: &'static str,
    pub items: Vec<T>,
    pub next: Option<Value>,
    pub count: Option<usize>,
}

impl<T> Listing<T> {
    pub fn new(
        key: &'static str,
        items: Vec<T>,
        next: Option<Value>,
        count: usize,
        ctx: &Ctx,
        params: &Params,
    ) -> Self {
        Self {
            key,
            items,
            next,
            count: asked_count(count, ctx, params),
        }
    }
}

impl<T: Serialize> Serialize for Listing<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(self.key, &self.items)?;
        if let Some(next) = &self.next {
            map.serialize_entry(&format!("{}_links", self.key), next)?;
        }
        if let Some(count) = self.count {
            map.serialize_entry("count", &count)?;
        }
        map.end()
    }
}

/// `count`, when the request asked for it (`with_count`, 3.45+).
fn asked_count(count: usize, ctx: &Ctx, params: &Params) -> Option<usize> {
    let with_count = paging::first(params, "with_count")
        .is_some_and(|v| flag("with_count", &json!(v)).unwrap_or(false));
    (with_count && ctx.version.at_least(45)).then_some(count)
}

/// Whether an admin asked for every project's (`all_tenants`).
pub fn all_projects(params: &Params) -> bool {
    paging::first(params, "all_tenants")
        .is_some_and(|v| flag("all_tenants", &json!(v)).unwrap_or(false))
}
