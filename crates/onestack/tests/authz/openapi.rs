//! The OpenAPI documents: every mounted route in exactly one of them, its security as the
//! policy table says, and `docs/openapi/` up to date (`ONESTACK_WRITE_OPENAPI=1` rewrites
//! it). The example requests they show are the ones `policy` sends, so they stay valid.

use std::collections::BTreeSet;
use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use onestack::openapi::{SERVICES, document_path};

use super::policy::{POLICY, Rule, rule};
use crate::common::Cloud;

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi")
}

#[tokio::test]
async fn openapi_documents_describe_every_route() {
    let cloud = Cloud::start().await;
    let mounted: BTreeSet<(String, String)> = cloud
        .running
        .as_ref()
        .expect("the cloud is running")
        .mounted_routes()
        .into_iter()
        .collect();
    let table: BTreeSet<(String, String)> = POLICY
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        mounted.symmetric_difference(&table).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "the routes read from the router and the policy table differ"
    );

    let write = std::env::var_os("ONESTACK_WRITE_OPENAPI").is_some();
    let mut described = BTreeSet::new();
    for (prefix, name, _) in SERVICES {
        let reply = cloud
            .http
            .get(format!("{}{}", cloud.url, document_path(prefix)))
            .send()
            .await
            .expect("request is sent");
        assert_eq!(reply.status(), StatusCode::OK, "{prefix}/openapi.json");
        let doc: Value = reply.json().await.expect("a JSON document");
        assert_eq!(doc["openapi"], "3.0.3");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, operations) in paths {
            for (method, op) in operations.as_object().expect("operations") {
                let method = method.to_ascii_uppercase();
                let public = op.get("security") == Some(&Value::Array(vec![]));
                let m = Method::from_bytes(method.as_bytes()).expect("a method");
                assert_eq!(
                    public,
                    rule(&m, path) == Some(Rule::Public),
                    "{method} {path}: public in the document and in the policy table"
                );
                if m != Method::GET && m != Method::DELETE {
                    assert!(
                        op["requestBody"].get("content").is_none()
                            || op["requestBody"]["content"]
                                .as_object()
                                .is_some_and(|c| c.values().any(|v| v.get("schema").is_some())),
                        "{method} {path}: a request schema"
                    );
                }
                assert!(
                    described.insert((method.clone(), path.clone())),
                    "{method} {path} in two documents"
                );
            }
        }
        let file = docs_dir().join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&doc).expect("JSON") + "\n";
        if write {
            std::fs::create_dir_all(docs_dir()).expect("docs/openapi");
            std::fs::write(&file, &text).expect("write the document");
        } else {
            let kept = std::fs::read_to_string(&file).unwrap_or_default();
            assert!(
                kept == text,
                "{} is not the document served; rewrite it with \
                 `ONESTACK_WRITE_OPENAPI=1 cargo test --release -p onestack --test api openapi`",
                file.display()
            );
        }
    }
    assert_eq!(
        described.symmetric_difference(&mounted).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes mounted but not described, or described but not mounted"
    );
    println!(
        "openapi: {} routes described in {} documents",
        described.len(),
        SERVICES.len()
    );
}
