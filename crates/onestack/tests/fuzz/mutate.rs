//! Hostile variants of a valid request: path segments, query strings, whole bodies and each
//! field of a JSON body, deterministic first, then seeded random combinations.

use rand::rngs::StdRng;
use rand::{Rng, RngCore};
use serde_json::{Map, Value, json};

/// A number no 64-bit integer holds; written raw into the body text where this marker is.
const HUGE_MARK: &str = "__fuzz_huge_number__";
const HUGE: &str = "18446744073709551616123";

/// What replaces one `{param}` of a path (already percent-encoded where it must be). Not a
/// bare `..` or `%2e%2e`: the client resolves those before sending (RFC 3986), which would
/// aim a valid request at another route rather than a hostile one at this route.
pub fn hostile_segments() -> Vec<String> {
    let mut out: Vec<String> = [
        "..%2f",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%5c..%5cwindows",
        "a%00b",
        "%00",
        "%ff%fe%fd",
        "%c0%af",
        "%zz",
        "%",
        "'%20OR%20'1'%3D'1",
        "1%3BDROP%20TABLE%20users",
        "%24(id)",
        "%60id%60",
        "-1",
        "0",
        HUGE,
        "%e2%80%ae%e2%80%8b",
        "%20",
        "*",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    out.push("x".repeat(5000));
    out
}

/// Query strings for reads: paging and filters with wrong types, huge and hostile values.
pub const HOSTILE_QUERIES: &[&str] = &[
    "limit=-1",
    "limit=abc",
    "limit=18446744073709551616123",
    "limit=0",
    "marker=%00",
    "marker=5a1c7e2e-0000-4000-8000-00000000a11e",
    "marker=%27%20OR%201%3D1--",
    "sort_key=name%3Bdrop%20table%20x",
    "sort_key=password",
    "sort_dir=sideways",
    "sort=name:sideways,id:asc:asc",
    "name=%27%20OR%201%3D1--",
    "name=%ff%fe",
    "name=%00",
    "id=%2e%2e%2f",
    "changes-since=yesterday",
    "changes-since=99999-99-99T99:99:99Z",
    "fields=..",
    "%zz=1",
    "a[b][c]=1",
    "tags=a,,b,%00",
    "status=%3Cscript%3E",
    "all_tenants=maybe",
    "project_id=*",
    "limit=1&limit=2&limit=x",
];

/// Values that replace one field of a body.
fn hostile_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(1e308),
        json!(-9_223_372_036_854_775_807i64),
        json!(HUGE_MARK),
        json!(""),
        json!("x".repeat(70_000)),
        json!("../../../../etc/passwd"),
        json!("a\u{0}b"),
        json!("' OR '1'='1' --"),
        json!("$(reboot); `reboot` | reboot"),
        json!("\u{202e}\u{200b}\u{feff}"),
        json!([]),
        json!({}),
        json!([[[[{"a": [[[1]]]}]]]]),
        json!({"$ne": 1}),
    ]
}

/// Bodies above this are sent as [`super::send_oversized`] does: no service takes one.
pub const OVERSIZED: usize = 2 << 20;

/// A request body: JSON text (possibly not valid JSON) or raw bytes, with a content type.
#[derive(Clone, Debug)]
pub struct RawBody {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    /// What was done to the valid body, for the failure message.
    pub what: String,
}

fn raw(content_type: &'static str, bytes: impl Into<Vec<u8>>, what: impl Into<String>) -> RawBody {
    RawBody {
        content_type,
        bytes: bytes.into(),
        what: what.into(),
    }
}

/// Serialized `value`, with the huge-number marker written as the raw number.
fn text(value: &Value) -> Vec<u8> {
    value
        .to_string()
        .replace(&format!("\"{HUGE_MARK}\""), HUGE)
        .into_bytes()
}

/// Whole-body variants, for any route that takes a body of `content_type`.
pub fn whole_bodies(content_type: &'static str, seed: Option<&Value>) -> Vec<RawBody> {
    let mut out = vec![
        raw(content_type, "", "empty body"),
        raw(content_type, "{", "truncated JSON"),
        raw(content_type, "null", "null"),
        raw(content_type, "[]", "an array"),
        raw(content_type, "\"a string\"", "a string"),
        raw(content_type, "1e999999", "an overflowing number"),
        raw(
            content_type,
            b"{\"a\": \"\xff\xfe\"}".to_vec(),
            "invalid UTF-8",
        ),
        raw(content_type, "\u{feff}{}", "a byte-order mark"),
        raw(
            content_type,
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            "100000 levels of nesting",
        ),
        raw(
            content_type,
            format!("{{\"a\": \"{}\"}}", "x".repeat(3 << 20)),
            "a 3 MiB string",
        ),
        raw(content_type, "{\"a\": 1, \"a\": 2}", "a duplicate key"),
    ];
    if let Some(seed) = seed {
        out.push(raw(
            "text/plain",
            text(seed),
            "the valid body as text/plain",
        ));
        out.push(raw(
            "application/x-www-form-urlencoded",
            "a=1&b=2",
            "a form",
        ));
    }
    out
}

/// Every path to a leaf or an object member of `value`, as keys and indexes.
fn field_paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                out.push(prefix.clone());
                field_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                field_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn describe(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!(".{k}"),
            Step::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// The container holding the last step of `path`, and that step.
fn parent<'a>(value: &'a mut Value, path: &'a [Step]) -> Option<(&'a mut Value, &'a Step)> {
    let (last, init) = path.split_last()?;
    let mut at = value;
    for step in init {
        at = match step {
            Step::Key(k) => at.get_mut(k)?,
            Step::Index(i) => at.get_mut(*i)?,
        };
    }
    Some((at, last))
}

fn replace(value: &mut Value, path: &[Step], new: Value) {
    if let Some((container, step)) = parent(value, path) {
        match step {
            Step::Key(k) => {
                if let Some(map) = container.as_object_mut() {
                    map.insert(k.clone(), new);
                }
            }
            Step::Index(i) => {
                if let Some(slot) = container.get_mut(*i) {
                    *slot = new;
                }
            }
        }
    }
}

fn remove(value: &mut Value, path: &[Step]) {
    if let Some((container, step)) = parent(value, path) {
        match step {
            Step::Key(k) => {
                if let Some(map) = container.as_object_mut() {
                    map.remove(k);
                }
            }
            Step::Index(i) => {
                if let Some(items) = container.as_array_mut()
                    && *i < items.len()
                {
                    items.remove(*i);
                }
            }
        }
    }
}

/// Field-level variants of a JSON seed: each field removed, replaced by each hostile value,
/// and an unknown field added next to it.
pub fn field_bodies(content_type: &'static str, seed: &Value) -> Vec<RawBody> {
    let mut paths = Vec::new();
    field_paths(seed, &mut Vec::new(), &mut paths);
    let mut out = Vec::new();
    for path in &paths {
        let at = describe(path);
        let mut removed = seed.clone();
        remove(&mut removed, path);
        out.push(raw(content_type, text(&removed), format!("{at} removed")));
        for value in hostile_values() {
            let mut changed = seed.clone();
            let shown = short(&value);
            replace(&mut changed, path, value);
            out.push(raw(content_type, text(&changed), format!("{at} = {shown}")));
        }
        let mut extra = seed.clone();
        let mut unknown = path.clone();
        unknown.pop();
        unknown.push(Step::Key("fuzz_unknown_field".into()));
        if let Some((container, _)) = parent(&mut extra, &unknown)
            && let Some(map) = container.as_object_mut()
        {
            map.insert("fuzz_unknown_field".into(), json!({"nested": [1, "two"]}));
            out.push(raw(
                content_type,
                text(&extra),
                format!("unknown field next to {at}"),
            ));
        }
    }
    out
}

fn short(value: &Value) -> String {
    let shown = value.to_string();
    if shown.chars().count() > 40 {
        let head: String = shown.chars().take(40).collect();
        format!("{head}… ({} bytes)", shown.len())
    } else {
        shown
    }
}

/// A random hostile value: a random type, length and content.
fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 10f64.powi(rng.random_range(-300..300))),
        4 => json!(random_string(rng)),
        5 if depth < 4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        6 if depth < 4 => {
            let mut map = Map::new();
            for _ in 0..rng.random_range(0..4) {
                map.insert(random_string(rng), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
        7 => json!(HUGE_MARK),
        _ => json!(random_string(rng).repeat(rng.random_range(1..2000))),
    }
}

/// A short string of characters that matter to parsers, shells, SQL and paths.
fn random_string(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "a", "Z", "0", "-", "_", ".", "..", "/", "\\", "%", "%00", "\0", "'", "\"", ";", "--",
        "$(", ")", "`", "|", "&", "<", ">", "{", "}", "[", "]", "*", "?", " ", "\n", "\t",
        "\u{202e}", "\u{ffff}", "é", "𝕏", "null", "true", "-1", "1e999",
    ];
    (0..rng.random_range(0..12))
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// `count` seeded random variants of `seed`: one to three fields each replaced by a random
/// value or removed, sometimes with random unknown fields added at the top.
pub fn random_bodies(
    rng: &mut StdRng,
    content_type: &'static str,
    seed: &Value,
    count: usize,
) -> Vec<RawBody> {
    let mut paths = Vec::new();
    field_paths(seed, &mut Vec::new(), &mut paths);
    let mut out = Vec::new();
    for _ in 0..count {
        let mut body = seed.clone();
        let mut what = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            if paths.is_empty() || rng.random_range(0..5) == 0 {
                if let Some(map) = body.as_object_mut() {
                    let key = random_string(rng);
                    what.push(format!("+{key:?}"));
                    map.insert(key, random_value(rng, 0));
                }
                continue;
            }
            let path = &paths[rng.random_range(0..paths.len())];
            if rng.random_range(0..6) == 0 {
                remove(&mut body, path);
                what.push(format!("{} removed", describe(path)));
            } else {
                let value = random_value(rng, 0);
                what.push(format!("{} = {}", describe(path), short(&value)));
                replace(&mut body, path, value);
            }
        }
        out.push(raw(content_type, text(&body), what.join(", ")));
    }
    out
}

/// A random garbage header value for `X-Auth-Token`.
pub fn random_token(rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = vec![0u8; rng.random_range(0..300)];
    rng.fill_bytes(&mut bytes);
    // Header values cannot hold control characters; keep what a client could send.
    bytes.retain(|b| *b >= 0x20 && *b != 0x7f);
    bytes
}
