//! Collections as the OpenStack APIs page them: query parameters in order (repeated keys
//! kept, `tag=a&tag=b`), `limit`/`marker` windows over a listing in its order, and the link
//! to the next page. Each service words its own refusals; the mechanics are here once.

/// Query parameters of a request, in order, repeated keys kept.
pub type Params = Vec<(String, String)>;

/// Every value of `key`, in order.
pub fn values<'a>(params: &'a Params, key: &'a str) -> impl Iterator<Item = &'a str> {
    params
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The first value of `key`.
pub fn first<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Percent-encodes a query component (unreserved characters, `:` and `,` stay).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:,".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `href` with the request's parameters except `dropped`, then `added`, encoded.
pub fn link(href: &str, params: &Params, dropped: &[&str], added: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter(|(k, _)| !dropped.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(added.iter().copied())
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{href}?{}", query.join("&"))
}

/// A marker that names nothing in the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerNotFound(pub String);

/// The items after `marker` (by id), at most `limit` of them, and whether more follow.
pub fn window<T>(
    mut items: Vec<(String, T)>,
    marker: Option<&str>,
    limit: Option<usize>,
) -> Result<(Vec<(String, T)>, bool), MarkerNotFound> {
    if let Some(marker) = marker {
        let position = items
            .iter()
            .position(|(id, _)| id == marker)
            .ok_or_else(|| MarkerNotFound(marker.to_owned()))?;
        items.drain(..=position);
    }
    let more = limit.is_some_and(|limit| items.len() > limit);
    if let Some(limit) = limit {
        items.truncate(limit);
    }
    Ok((items, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn windows_start_after_the_marker_and_say_whether_more_follow() {
        let items: Vec<(String, u8)> = (1..=5).map(|i| (format!("id{i}"), i)).collect();
        let (page, more) = window(items.clone(), Some("id2"), Some(2)).expect("marker exists");
        assert_eq!(page.iter().map(|(_, i)| *i).collect::<Vec<_>>(), [3, 4]);
        assert!(more);
        let (page, more) = window(items.clone(), Some("id3"), Some(2)).expect("marker exists");
        assert_eq!(page.len(), 2);
        assert!(!more);
        assert_eq!(
            window(items, Some("nope"), None).map(|_| ()),
            Err(MarkerNotFound("nope".into()))
        );
    }

    #[test]
    fn links_keep_the_request_but_the_marker_and_encode_it() {
        let p = params(&[
            ("name", "a b&c"),
            ("marker", "old"),
            ("tag", "x"),
            ("tag", "y"),
        ]);
        assert_eq!(
            link("/v2/images", &p, &["marker"], &[("marker", "new")]),
            "/v2/images?name=a%20b%26c&tag=x&tag=y&marker=new"
        );
        assert_eq!(values(&p, "tag").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(first(&p, "tag"), Some("x"));
    }
}
