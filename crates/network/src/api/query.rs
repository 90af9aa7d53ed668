//! Neutron's collection behaviour over rendered resources: filters on any attribute (several
//! values of one attribute are alternatives), tag filters, `fields=`, `sort_key`/`sort_dir`,
//! and `limit`/`marker`/`page_reverse` with `<collection>_links`.

use std::cmp::Ordering;

use onestack_api::ApiError;
use serde_json::{Map, Value, json};

pub use onestack_api::paging::Params;
use onestack_api::paging::{self, values};

const CONTROL: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "page_reverse",
    "sort_key",
    "sort_dir",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
];

/// Keeps only the requested fields of a resource (`?fields=id&fields=name`).
pub fn select_fields(params: &Params, view: Value) -> Value {
    let wanted: Vec<&str> = values(params, "fields")
        .flat_map(|v| v.split(','))
        .collect();
    if wanted.is_empty() {
        return view;
    }
    match view {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| wanted.contains(&k.as_str()))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

fn matches_scalar(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(s) => s == wanted,
        Value::Bool(b) => {
            wanted.eq_ignore_ascii_case(if *b { "true" } else { "false" })
                || wanted == if *b { "1" } else { "0" }
        }
        Value::Number(n) => n.to_string() == wanted,
        Value::Null => wanted.is_empty() || wanted == "None" || wanted == "null",
        _ => false,
    }
}

/// `fixed_ips=ip_address=10.0.0.5` or `subnet_id=...` or `ip_address_substr=...`.
fn matches_list(items: &[Value], wanted: &str) -> bool {
    if let Some((key, needle)) = wanted.split_once('=') {
        return items.iter().any(|item| match key.strip_suffix("_substr") {
            Some(base) => item[base].as_str().is_some_and(|s| s.contains(needle)),
            None => item.get(key).is_some_and(|v| matches_scalar(v, needle)),
        });
    }
    items.iter().any(|item| matches_scalar(item, wanted))
}

fn matches(view: &Value, params: &Params) -> bool {
    let mut keys: Vec<&str> = params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !CONTROL.contains(k))
        .collect();
    keys.dedup();
    for key in keys {
        // Unknown attributes are ignored, as Neutron does without filter validation.
        let Some(value) = view.get(key) else { continue };
        let ok = values(params, key).any(|wanted| match value {
            Value::Array(items) => matches_list(items, wanted),
            other => matches_scalar(other, wanted),
        });
        if !ok {
            return false;
        }
    }
    let tags: Vec<&str> = view["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let list = |key| -> Vec<&str> { values(params, key).flat_map(|v| v.split(',')).collect() };
    let all = list("tags");
    let any = list("tags-any");
    let not_all = list("not-tags");
    let not_any = list("not-tags-any");
    (all.is_empty() || all.iter().all(|t| tags.contains(t)))
        && (any.is_empty() || any.iter().any(|t| tags.contains(t)))
        && (not_all.is_empty() || !not_all.iter().all(|t| tags.contains(t)))
        && (not_any.is_empty() || !not_any.iter().any(|t| tags.contains(t)))
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Filters, sorts, pages and trims `views`, and wraps them as `{"<collection>": [...]}`
/// with `<collection>_links` when a page is cut.
pub fn respond(
    views: Vec<Value>,
    params: &Params,
    collection: &str,
    href: &str,
) -> Result<Value, ApiError> {
    let mut items: Vec<Value> = views.into_iter().filter(|v| matches(v, params)).collect();

    let keys: Vec<&str> = values(params, "sort_key").collect();
    let dirs: Vec<&str> = values(params, "sort_dir").collect();
    for dir in &dirs {
        if *dir != "asc" && *dir != "desc" {
            return Err(ApiError::bad_request(format!(
                "Invalid input for operation: sort_dir {dir} is not one of asc, desc."
            )));
        }
    }
    if let Some(first) = items.first() {
        for key in &keys {
            if first.get(*key).is_none() {
                return Err(ApiError::bad_request(format!(
                    "{key} is invalid attribute for sort_key"
                )));
            }
        }
    }
    items.sort_by(|a, b| {
        for (i, key) in keys.iter().enumerate() {
            let order = compare(&a[*key], &b[*key]);
            let order = if dirs.get(i) == Some(&"desc") {
                order.reverse()
            } else {
                order
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        compare(&a["id"], &b["id"])
    });

    let limit = match values(params, "limit").next() {
        None | Some("") => None,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(0) => None,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Bad limit request: Limit must be an integer 0 or greater and not '{l}'."
                )));
            }
        },
    };
    let marker = values(params, "marker").next().filter(|m| !m.is_empty());
    let reverse = values(params, "page_reverse")
        .next()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));

    let (start, end) = match marker {
        Some(m) => {
            let at = items
                .iter()
                .position(|v| v["id"] == m)
                .ok_or_else(|| ApiError::not_found(format!("Marker {m} could not be found.")))?;
            if reverse {
                (0, at)
            } else {
                (at + 1, items.len())
            }
        }
        None => (0, items.len()),
    };
    let mut window: Vec<Value> = items.drain(start..end).collect();
    let mut more = false;
    if let Some(limit) = limit
        && window.len() > limit
    {
        more = true;
        if reverse {
            window.drain(..window.len() - limit);
        } else {
            window.truncate(limit);
        }
    }

    let mut links = Vec::new();
    if let Some(limit) = limit {
        let limit = limit.to_string();
        let base = |marker: &str, reverse: bool| {
            let mut added = vec![("limit", limit.as_str()), ("marker", marker)];
            if reverse {
                added.push(("page_reverse", "True"));
            }
            paging::link(href, params, &["marker", "page_reverse", "limit"], &added)
        };
        let (first, last) = (window.first(), window.last());
        if let Some(last) = last.and_then(|v| v["id"].as_str())
            && (more && !reverse || reverse && marker.is_some())
        {
            links.push(json!({"rel": "next", "href": base(last, false)}));
        }
        if let Some(first) = first.and_then(|v| v["id"].as_str())
            && (marker.is_some() && !reverse || reverse && more)
        {
            links.push(json!({"rel": "previous", "href": base(first, true)}));
        }
    }

    let window: Vec<Value> = window
        .into_iter()
        .map(|v| select_fields(params, v))
        .collect();
    let mut body = json!({ collection: window });
    if !links.is_empty() {
        body[format!("{collection}_links")] = Value::Array(links);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn items() -> Vec<Value> {
        (1..=5)
            .map(|i| json!({"id": format!("id{i}"), "name": format!("n{}", 6 - i), "shared": i % 2 == 0, "tags": ["a"],
                "fixed_ips": [{"subnet_id": "s", "ip_address": format!("10.0.0.{i}")}]}))
            .collect()
    }

    #[test]
    fn filters_on_any_attribute() {
        let out = respond(items(), &p(&[("shared", "True")]), "networks", "h").unwrap();
        assert_eq!(out["networks"].as_array().unwrap().len(), 2);
        let out = respond(
            items(),
            &p(&[("name", "n1"), ("name", "n2")]),
            "networks",
            "h",
        )
        .unwrap();
        assert_eq!(out["networks"].as_array().unwrap().len(), 2);
        let out = respond(
            items(),
            &p(&[("fixed_ips", "ip_address=10.0.0.3")]),
            "ports",
            "h",
        )
        .unwrap();
        assert_eq!(out["ports"][0]["id"], "id3");
        let out = respond(items(), &p(&[("tags", "a,b")]), "ports", "h").unwrap();
        assert_eq!(out["ports"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn pages_with_links_and_sorts() {
        let out = respond(
            items(),
            &p(&[("limit", "2"), ("sort_key", "name")]),
            "networks",
            "h",
        )
        .unwrap();
        assert_eq!(out["networks"][0]["id"], "id5");
        let next = out["networks_links"][0]["href"].as_str().unwrap();
        assert!(next.contains("marker=id4"), "{next}");
        let out = respond(
            items(),
            &p(&[("limit", "2"), ("marker", "id2")]),
            "networks",
            "h",
        )
        .unwrap();
        assert_eq!(out["networks"][0]["id"], "id3");
        assert_eq!(out["networks_links"].as_array().unwrap().len(), 2);
        let out = respond(items(), &p(&[("fields", "id")]), "networks", "h").unwrap();
        assert_eq!(out["networks"][0], json!({"id": "id1"}));
        assert!(respond(items(), &p(&[("limit", "x")]), "networks", "h").is_err());
    }
}
