//! Hostile input on every route the server mounts: for each route of the policy table, a
//! valid request (alice's real ids, a valid body) is bent into hostile ones: each path
//! parameter replaced by traversal, NUL, invalid UTF-8 and percent-encoding, SQL and shell
//! metacharacters and huge values; hostile paging and filter queries on reads; whole bodies
//! that are empty, truncated, deeply nested, oversized or not UTF-8; each field of the body
//! removed, retyped, oversized or joined by an unknown one; seeded random combinations of
//! those; and garbage tokens. No answer may be a 5xx or a dropped connection, and a request
//! answered 4xx must leave every table of the database as it was.
//!
//! Bounded here; the long run is `ONESTACK_FUZZ_RANDOM=2000 cargo test --release -p onestack
//! --test api fuzz -- --nocapture` (see docs/security.md). `ONESTACK_FUZZ_SEED` repeats a
//! run: the seed is printed at the start; `ONESTACK_FUZZ_VERBOSE=1` lists what was accepted.

mod digest;
mod mutate;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::Value;

use crate::authz::policy::{Body, POLICY, Rule, valid_body};
use crate::authz::world::alice_world;
use crate::common::Cloud;
use crate::compute;
use mutate::RawBody;

/// Random body variants per route in the bounded run.
const RANDOM_PER_ROUTE: usize = 12;

/// One hostile request.
struct Variant {
    path: String,
    body: Option<RawBody>,
    token: Option<Vec<u8>>,
    what: String,
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The hostile requests for one route, whose valid form is `path` with `body`.
fn variants(
    rng: &mut StdRng,
    method: &Method,
    pattern: &str,
    values: &[(usize, String)],
    body: &Body,
    random: usize,
) -> Vec<Variant> {
    let segments: Vec<&str> = pattern.split('/').collect();
    let path_with = |index: usize, value: &str| -> String {
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == index {
                    value.to_owned()
                } else if let Some((_, v)) = values.iter().find(|(at, _)| *at == i) {
                    v.clone()
                } else {
                    (*s).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let valid_path = path_with(usize::MAX, "");
    let (content_type, seed): (&'static str, Option<&Value>) = match body {
        Body::Json(v) => ("application/json", Some(v)),
        Body::JsonPatch(v) => ("application/openstack-images-v2.1-json-patch", Some(v)),
        Body::Bytes(_) => ("application/octet-stream", None),
        Body::None => ("application/json", None),
    };
    let valid_body = seed.map(|v| RawBody {
        content_type,
        bytes: v.to_string().into_bytes(),
        what: "valid".into(),
    });
    let mut out = Vec::new();
    for (index, _) in values {
        for hostile in mutate::hostile_segments() {
            out.push(Variant {
                path: path_with(*index, &hostile),
                body: valid_body.clone(),
                token: None,
                what: format!(
                    "segment {index} = {}",
                    hostile.chars().take(40).collect::<String>()
                ),
            });
        }
    }
    if *method == Method::GET {
        for query in mutate::HOSTILE_QUERIES {
            out.push(Variant {
                path: format!("{valid_path}?{query}"),
                body: None,
                token: None,
                what: format!("query {query}"),
            });
        }
    }
    let takes_body = [Method::POST, Method::PUT, Method::PATCH].contains(method);
    if takes_body && !matches!(body, Body::Bytes(_)) {
        let mut bodies = mutate::whole_bodies(content_type, seed);
        if let Some(seed) = seed {
            bodies.extend(mutate::field_bodies(content_type, seed));
            bodies.extend(mutate::random_bodies(rng, content_type, seed, random));
        }
        for body in bodies {
            out.push(Variant {
                path: valid_path.clone(),
                what: format!("body: {}", body.what),
                body: Some(body),
                token: None,
            });
        }
    }
    for _ in 0..2 {
        out.push(Variant {
            path: valid_path.clone(),
            body: valid_body.clone(),
            token: Some(mutate::random_token(rng)),
            what: "a garbage token".into(),
        });
    }
    out
}

/// Work a request started in the background (a server booting, an image importing) ends
/// within this; the database is then still for [`QUIET`].
const SETTLE: Duration = Duration::from_secs(20);
const QUIET: Duration = Duration::from_millis(200);

/// Waits until the database stops changing (accepted compute, image and volume writes go on
/// in the background), so that what a later refused request is compared with is the settled state.
async fn settle(
    digest: &digest::Digest,
    pool: &onestack_db::Pool,
    route: &str,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + SETTLE;
    let mut last = digest.take(pool).await;
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = digest.take(pool).await;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= QUIET {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "the cloud's database kept changing for {SETTLE:?} after {route}"
        );
    }
}

/// A body larger than the services' limit, sent over a plain socket: the server answers 413
/// before reading it all and closes, which an HTTP client still writing reports as a send
/// error, so the status is read here whatever happens to the write.
async fn send_oversized(
    url: &str,
    method: &Method,
    path: &str,
    token: &str,
    body: &RawBody,
) -> Option<u16> {
    use std::io::{Read, Write};
    let authority = url.trim_start_matches("http://").to_owned();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.content_type,
        body.bytes.len()
    );
    let bytes = body.bytes.clone();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&authority).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        stream.write_all(head.as_bytes()).ok()?;
        let _ = stream.write_all(&bytes);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    })
    .await
    .ok()?
}

/// Where each `{param}` of `pattern` sits and alice's value for it.
fn path_values(
    pattern: &str,
    world: &std::collections::HashMap<String, String>,
) -> Vec<(usize, String)> {
    let filled = crate::authz::world::fill(pattern, world);
    pattern
        .split('/')
        .zip(filled.split('/'))
        .enumerate()
        .filter(|(_, (p, _))| p.starts_with('{'))
        .map(|(i, (_, v))| (i, v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_a_4xx_and_changes_nothing() {
    let seed = env_number("ONESTACK_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let random = env_number("ONESTACK_FUZZ_RANDOM").map_or(RANDOM_PER_ROUTE, |n| n as usize);
    println!("fuzz: ONESTACK_FUZZ_SEED={seed} ONESTACK_FUZZ_RANDOM={random}");
    let mut rng = StdRng::seed_from_u64(seed);

    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let world = alice_world(&cloud, &env).await;
    let admin = cloud.admin_token().await;
    let pool = cloud.database().await.expect("the cloud's database opens");
    let digest = digest::Digest::new(&pool, cloud.on_postgres()).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mounted: BTreeSet<String> = cloud
        .running
        .as_ref()
        .expect("the cloud is running")
        .mounted_paths()
        .into_iter()
        .collect();

    let started = Instant::now();
    let verbose = std::env::var_os("ONESTACK_FUZZ_VERBOSE").is_some();
    let mut sent = 0usize;
    let mut accepted = 0usize;
    let mut per_route: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = BTreeSet::new();
    let mut state = digest.take(&pool).await;
    for (method, pattern, rule) in POLICY {
        assert!(mounted.contains(*pattern), "{pattern} is not mounted");
        let method: Method = method.parse().expect("a method");
        let body = valid_body(&method, pattern, &world).expect("every row has a valid body");
        // Alice (her project's member and the owner of everything in it) for her routes; the
        // admin for admin-only ones. Her token is fresh for each route, so that a request
        // that revoked it cannot hide the rest.
        let token = match rule {
            Rule::Admin => admin.clone(),
            _ => {
                let issued = cloud.auth("alice", "pw-alice", Some("alice")).await;
                assert!(
                    issued.status.is_success(),
                    "seed {seed}: alice can no longer log in, before {method} {pattern}: {}",
                    issued.body
                );
                issued.subject_token()
            }
        };
        let values = path_values(pattern, &world);
        let route = format!("{method} {pattern}");
        for variant in variants(&mut rng, &method, pattern, &values, &body, random) {
            let mut request = http
                .request(method.clone(), format!("{}{}", cloud.url, variant.path))
                .header("OpenStack-API-Version", "compute latest");
            request = match &variant.token {
                Some(garbage) => match reqwest::header::HeaderValue::from_bytes(garbage) {
                    Ok(value) => request.header("X-Auth-Token", value),
                    Err(_) => continue,
                },
                None => request.header("X-Auth-Token", &token),
            };
            if let Some(body) = &variant.body {
                request = request
                    .header("Content-Type", body.content_type)
                    .body(body.bytes.clone());
            }
            sent += 1;
            *per_route.entry(route.clone()).or_default() += 1;
            let oversized = variant
                .body
                .as_ref()
                .filter(|b| b.bytes.len() > mutate::OVERSIZED && variant.token.is_none());
            let answer = match oversized {
                Some(body) => send_oversized(&cloud.url, &method, &variant.path, &token, body)
                    .await
                    .and_then(|code| reqwest::StatusCode::from_u16(code).ok())
                    .ok_or_else(|| "no status line".to_owned()),
                None => match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.bytes().await;
                        Ok(status)
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            let status = match answer {
                Ok(status) => status,
                Err(e) => {
                    failures.insert(format!("{route} [{}]: no answer: {e}", variant.what));
                    continue;
                }
            };
            if status.is_server_error() {
                failures.insert(format!("{route} [{}]: {status}", variant.what));
            }
            if status.is_success() {
                accepted += 1;
                if verbose {
                    println!("fuzz: accepted: {route} [{}]: {status}", variant.what);
                }
            }
            let background = method != Method::GET
                && ["/compute", "/image", "/volume"]
                    .iter()
                    .any(|service| pattern.starts_with(service));
            let now = if status.is_success() && background {
                settle(&digest, &pool, &route).await
            } else {
                digest.take(&pool).await
            };
            if status.is_client_error() {
                let tables = digest::changed(&state, &now);
                if !tables.is_empty() {
                    failures.insert(format!(
                        "{route} [{}]: {status}, yet changed {tables:?}",
                        variant.what
                    ));
                }
            }
            state = now;
        }
    }
    let fewest = per_route.iter().min_by_key(|(_, n)| **n);
    println!(
        "fuzz: {sent} hostile requests on {} routes in {:.1} s (fewest on one route: {fewest:?}); \
         accepted as valid: {accepted}; failures: {}",
        per_route.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    pool.close().await;
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures: {failures:#?}",
        failures.len()
    );
}
