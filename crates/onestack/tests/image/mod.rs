//! Integration tests of the Image v2 API (Glance): the whole server in process, real HTTP,
//! real files under the temporary data directory.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Cloud, Reply};

mod security;

const PATCH: &str = "application/openstack-images-v2.1-json-patch";

/// A project's view of the image API.
struct Glance<'a> {
    cloud: &'a Cloud,
    token: String,
}

impl<'a> Glance<'a> {
    fn new(cloud: &'a Cloud, token: &str) -> Self {
        Glance {
            cloud,
            token: token.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/image{path}", self.cloud.url)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = self
            .cloud
            .http
            .request(method, self.url(path))
            .header("X-Auth-Token", &self.token);
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    async fn create(&self, body: Value) -> Reply {
        self.send(
            Method::POST,
            "/v2/images",
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    async fn created(&self, body: Value) -> String {
        let reply = self.create(body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    async fn upload(&self, id: &str, data: Vec<u8>) -> Reply {
        self.send(
            Method::PUT,
            &format!("/v2/images/{id}/file"),
            Some("application/octet-stream"),
            Some(data),
        )
        .await
    }

    /// `POST /v2/images/{id}/import` with `method` (e.g. `{"name": "glance-direct"}`).
    async fn import(&self, id: &str, method: Value) -> Reply {
        self.send(
            Method::POST,
            &format!("/v2/images/{id}/import"),
            Some("application/json"),
            Some(json!({ "method": method }).to_string().into_bytes()),
        )
        .await
    }

    async fn patch(&self, id: &str, ops: Value) -> Reply {
        self.send(
            Method::PATCH,
            &format!("/v2/images/{id}"),
            Some(PATCH),
            Some(ops.to_string().into_bytes()),
        )
        .await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, None).await
    }

    async fn download(&self, id: &str, range: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = self
            .cloud
            .http
            .get(self.url(&format!("/v2/images/{id}/file")))
            .header("X-Auth-Token", &self.token);
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.unwrap().to_vec())
    }

    async fn status_of(&self, id: &str) -> String {
        self.get(&format!("/v2/images/{id}")).await.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits for an asynchronous import to settle.
    async fn wait_for(&self, id: &str, wanted: &str) -> String {
        for _ in 0..200 {
            let status = self.status_of(id).await;
            if status == wanted || status == "killed" {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.status_of(id).await
    }
}

fn assert_glance_error(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.body["code"],
        json!(format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap()
        )),
        "{}",
        reply.body
    );
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.body
    );
}

fn hex_md5(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

fn hex_sha512(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(data))
}

/// A minimal qcow2 v3 header (no data clusters needed for the checks), `virtual` bytes big.
fn qcow2(virtual_size: u64, backing: bool) -> Vec<u8> {
    let mut h = vec![0u8; 64 * 1024];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    if backing {
        h[8..16].copy_from_slice(&0x200u64.to_be_bytes());
        h[16..20].copy_from_slice(&9u32.to_be_bytes());
        h[0x200..0x209].copy_from_slice(b"/etc/shad");
    }
    h[20..24].copy_from_slice(&16u32.to_be_bytes());
    h[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    h[100..104].copy_from_slice(&112u32.to_be_bytes());
    h
}

async fn two_tenants(cloud: &Cloud) -> (String, String, String, String) {
    let admin = cloud.admin_token().await;
    let (alice_project, _) = cloud.tenant(&admin, "alice", "alice-pw", "member").await;
    let (bob_project, _) = cloud.tenant(&admin, "bob", "bob-pw", "member").await;
    let alice = cloud.token("alice", "alice-pw", "alice").await;
    let bob = cloud.token("bob", "bob-pw", "bob").await;
    assert_ne!(alice_project, bob_project);
    (alice, alice_project, bob, bob_project)
}

#[tokio::test]
async fn image_versions_catalog_and_schemas() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);
    let versions = glance.get("").await;
    assert_eq!(versions.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(versions.body["versions"][0]["status"], "CURRENT");
    assert!(
        versions.body["versions"][0]["links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("/image/v2/")
    );
    let token = cloud
        .auth("admin", &cloud.admin_password.clone(), Some("admin"))
        .await;
    let catalog = token.body["token"]["catalog"].as_array().unwrap();
    let image = catalog
        .iter()
        .find(|s| s["type"] == "image")
        .expect("image in the catalog");
    assert!(
        image["endpoints"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/image")
    );
    for schema in ["image", "images", "member", "members"] {
        let reply = glance.get(&format!("/v2/schemas/{schema}")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["name"], schema);
    }
    let import = glance.get("/v2/info/import").await;
    assert_eq!(
        import.body["import-methods"]["value"],
        json!(["glance-direct", "web-download"])
    );
    assert_eq!(
        glance.get("/v2/info/stores").await.body["stores"][0]["default"],
        true
    );
    // Without a token: 401.
    let anonymous = Reply::from(
        cloud
            .http
            .get(glance.url("/v2/images"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_glance_error(&anonymous, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn create_upload_show_download_with_hashes_and_ranges() {
    let cloud = Cloud::start().await;
    let (alice, alice_project, _, _) = two_tenants(&cloud).await;
    let glance = Glance::new(&cloud, &alice);
    let reply = glance
        .create(json!({"name": "cirros", "disk_format": "raw", "container_format": "bare", "os_distro": "cirros", "tags": ["a", "b"], "min_ram": 64}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let image = &reply.body;
    let id = image["id"].as_str().unwrap().to_owned();
    assert!(
        reply
            .headers
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with(&format!("/v2/images/{id}"))
    );
    assert_eq!(image["status"], "queued");
    assert_eq!(image["visibility"], "shared");
    assert_eq!(image["owner"], alice_project);
    assert_eq!(image["os_distro"], "cirros");
    assert_eq!(image["tags"], json!(["a", "b"]));
    assert_eq!(image["min_ram"], 64);
    assert_eq!(image["size"], Value::Null);
    assert_eq!(image["self"], format!("/v2/images/{id}"));
    assert_eq!(image["file"], format!("/v2/images/{id}/file"));
    assert_eq!(image["schema"], "/v2/schemas/image");
    assert!(image["created_at"].as_str().unwrap().ends_with('Z'));

    // Downloading a queued image: 204, as Glance does.
    assert_eq!(glance.download(&id, None).await.0, StatusCode::NO_CONTENT);

    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        glance.upload(&id, data.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    let shown = glance.get(&format!("/v2/images/{id}")).await.body;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["size"], data.len());
    assert_eq!(shown["virtual_size"], data.len());
    assert_eq!(shown["checksum"], hex_md5(&data));
    assert_eq!(shown["os_hash_algo"], "sha512");
    assert_eq!(shown["os_hash_value"], hex_sha512(&data));
    assert_eq!(shown["stores"], "file");

    let (status, headers, body) = glance.download(&id, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);
    assert_eq!(
        headers.get("content-md5").unwrap().to_str().unwrap(),
        hex_md5(&data)
    );
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    let (status, headers, body) = glance.download(&id, Some("bytes=100-199")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, data[100..200]);
    assert_eq!(
        headers.get("content-range").unwrap(),
        &format!("bytes 100-199/{}", data.len())
    );
    assert_eq!(
        glance.download(&id, Some("bytes=-10")).await.2,
        data[data.len() - 10..]
    );
    assert_eq!(
        glance.download(&id, Some("bytes=999999999-")).await.0,
        StatusCode::RANGE_NOT_SATISFIABLE
    );

    // Data goes in once: a second upload is a conflict and changes nothing.
    assert_glance_error(
        &glance.upload(&id, b"other".to_vec()).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(glance.download(&id, None).await.2, data);
    // Only application/octet-stream is image data.
    let other = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    let wrong = glance
        .send(
            Method::PUT,
            &format!("/v2/images/{other}/file"),
            Some("text/plain"),
            Some(b"x".to_vec()),
        )
        .await;
    assert_glance_error(&wrong, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(glance.status_of(&other).await, "queued");
}

#[tokio::test]
async fn uploads_must_be_what_they_claim_and_self_contained() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);

    let good = glance
        .created(json!({"name": "q", "disk_format": "qcow2", "container_format": "bare"}))
        .await;
    assert_eq!(
        glance.upload(&good, qcow2(1 << 30, false)).await.status,
        StatusCode::NO_CONTENT
    );
    let shown = glance.get(&format!("/v2/images/{good}")).await.body;
    assert_eq!(shown["virtual_size"], 1u64 << 30);
    assert_eq!(shown["size"], 64 * 1024);

    let backing = glance
        .created(json!({"disk_format": "qcow2", "container_format": "bare"}))
        .await;
    let reply = glance.upload(&backing, qcow2(1 << 30, true)).await;
    assert_glance_error(&reply, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("backing file"),
        "{}",
        reply.body
    );
    assert_eq!(glance.status_of(&backing).await, "killed");

    let liar = glance
        .created(json!({"disk_format": "qcow2", "container_format": "bare"}))
        .await;
    assert_glance_error(
        &glance.upload(&liar, b"not a qcow2 at all".to_vec()).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(glance.status_of(&liar).await, "killed");

    // A qcow2 smuggled in as "raw" would be read as qcow2 by a careless hypervisor.
    let smuggled = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    assert_glance_error(
        &glance.upload(&smuggled, qcow2(1 << 20, true)).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(glance.status_of(&smuggled).await, "killed");
    assert_eq!(
        std::fs::read_dir(cloud.data_dir.join("images/tmp"))
            .unwrap()
            .count(),
        0,
        "no leftovers"
    );

    // A declared md5 that does not match the data is refused.
    let declared = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    let reply = cloud
        .http
        .put(glance.url(&format!("/v2/images/{declared}/file")))
        .header("X-Auth-Token", &admin)
        .header("Content-Type", "application/octet-stream")
        .header("Content-MD5", hex_md5(b"something else"))
        .body(b"the data".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(glance.status_of(&declared).await, "killed");
}

#[tokio::test]
async fn a_truncated_upload_kills_the_image_and_leaves_nothing() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);
    let id = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    let addr = cloud.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /image/v2/images/{id}/file HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {admin}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[7u8; 5000]).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert_eq!(glance.wait_for(&id, "killed").await, "killed");
    assert_eq!(glance.download(&id, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        std::fs::read_dir(cloud.data_dir.join("images/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn json_patch_updates_with_glance_rules() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);
    let id = glance.created(json!({"name": "before", "disk_format": "raw", "container_format": "bare", "hw_disk_bus": "virtio"})).await;
    let reply = glance
        .patch(
            &id,
            json!([
                {"op": "replace", "path": "/name", "value": "after"},
                {"op": "add", "path": "/os_distro", "value": "debian"},
                {"op": "remove", "path": "/hw_disk_bus"},
                {"op": "add", "path": "/tags", "value": ["x"]},
                {"op": "replace", "path": "/min_disk", "value": 2},
            ]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["name"], "after");
    assert_eq!(reply.body["os_distro"], "debian");
    assert!(reply.body.get("hw_disk_bus").is_none());
    assert_eq!(reply.body["tags"], json!(["x"]));
    assert_eq!(reply.body["min_disk"], 2);

    for (ops, status) in [
        (
            json!([{"op": "replace", "path": "/status", "value": "active"}]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{"op": "replace", "path": "/size", "value": 5}]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{"op": "replace", "path": "/a/b", "value": "x"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "replace", "path": "name", "value": "x"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "move", "path": "/name", "value": "x"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "remove", "path": "/no_such_property"}]),
            StatusCode::CONFLICT,
        ),
        (
            json!([{"op": "replace", "path": "/no_such_property", "value": "x"}]),
            StatusCode::CONFLICT,
        ),
        (
            json!([{"op": "replace", "path": "/disk_format", "value": "floppy"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "replace", "path": "/min_ram", "value": -1}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "add", "path": "/custom", "value": 5}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "replace", "path": "/visibility", "value": "everyone"}]),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"op": "replace"}), StatusCode::BAD_REQUEST),
    ] {
        assert_glance_error(&glance.patch(&id, ops.clone()).await, status);
    }
    // A failed patch changes nothing, even when earlier operations in it were valid.
    let partial = json!([{"op": "replace", "path": "/name", "value": "half"}, {"op": "replace", "path": "/status", "value": "x"}]);
    assert_glance_error(&glance.patch(&id, partial).await, StatusCode::FORBIDDEN);
    assert_eq!(
        glance.get(&format!("/v2/images/{id}")).await.body["name"],
        "after"
    );
    let wrong_type = glance
        .send(
            Method::PATCH,
            &format!("/v2/images/{id}"),
            Some("application/json"),
            Some(b"[]".to_vec()),
        )
        .await;
    assert_glance_error(&wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Formats may change only while queued.
    assert_eq!(
        glance.upload(&id, vec![1, 2, 3]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_glance_error(
        &glance
            .patch(
                &id,
                json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"}]),
            )
            .await,
        StatusCode::FORBIDDEN,
    );
}

#[tokio::test]
async fn bad_create_input_is_refused_and_stores_nothing() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);
    for (body, status) in [
        (json!({"disk_format": "floppy"}), StatusCode::BAD_REQUEST),
        (
            json!({"container_format": "crate"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"name": 5}), StatusCode::BAD_REQUEST),
        (json!({"min_disk": "big"}), StatusCode::BAD_REQUEST),
        (json!({"protected": "yes"}), StatusCode::BAD_REQUEST),
        (json!({"status": "active"}), StatusCode::FORBIDDEN),
        (json!({"checksum": "abc"}), StatusCode::FORBIDDEN),
        (json!({"id": "not-a-uuid"}), StatusCode::BAD_REQUEST),
        (json!({"custom": {"nested": true}}), StatusCode::BAD_REQUEST),
        (json!({"tags": "a"}), StatusCode::BAD_REQUEST),
        (json!([1, 2]), StatusCode::BAD_REQUEST),
    ] {
        assert_glance_error(&glance.create(body.clone()).await, status);
    }
    let malformed = glance
        .send(
            Method::POST,
            "/v2/images",
            Some("application/json"),
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_glance_error(&malformed, StatusCode::BAD_REQUEST);
    assert_eq!(
        glance.get("/v2/images").await.body["images"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    for path in [
        "/v2/images/not-a-uuid",
        "/v2/images/..%2F..%2Fetc%2Fpasswd",
        "/v2/images/00000000-0000-0000-0000-000000000000",
    ] {
        assert_glance_error(&glance.get(path).await, StatusCode::NOT_FOUND);
    }
    let fixed = "5c3f36b5-3b0e-4a2c-9a8f-6b2b1d4e7f10";
    assert_eq!(glance.created(json!({"id": fixed})).await, fixed);
    assert_glance_error(
        &glance.create(json!({"id": fixed})).await,
        StatusCode::CONFLICT,
    );
}

#[tokio::test]
async fn visibility_sharing_and_isolation() {
    let cloud = Cloud::start().await;
    let (alice, _, bob, bob_project) = two_tenants(&cloud).await;
    let admin = cloud.admin_token().await;
    let (a, b, root) = (
        Glance::new(&cloud, &alice),
        Glance::new(&cloud, &bob),
        Glance::new(&cloud, &admin),
    );

    let private = a
        .created(json!({"name": "mine", "visibility": "private"}))
        .await;
    assert_glance_error(
        &b.get(&format!("/v2/images/{private}")).await,
        StatusCode::NOT_FOUND,
    );
    assert_glance_error(
        &b.patch(
            &private,
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
        )
        .await,
        StatusCode::NOT_FOUND,
    );
    assert_glance_error(
        &b.delete(&format!("/v2/images/{private}")).await,
        StatusCode::NOT_FOUND,
    );
    assert_glance_error(
        &b.upload(&private, b"x".to_vec()).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(b.download(&private, None).await.0, StatusCode::NOT_FOUND);
    assert!(
        b.get("/v2/images").await.body["images"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Only admins publicize.
    assert_glance_error(
        &a.create(json!({"visibility": "public"})).await,
        StatusCode::FORBIDDEN,
    );
    assert_glance_error(
        &a.patch(
            &private,
            json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    let public = root
        .created(json!({"name": "everyone", "visibility": "public"}))
        .await;
    assert_eq!(
        b.get(&format!("/v2/images/{public}")).await.status,
        StatusCode::OK
    );
    assert_glance_error(
        &b.patch(
            &public,
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    assert_glance_error(
        &b.delete(&format!("/v2/images/{public}")).await,
        StatusCode::FORBIDDEN,
    );

    // Sharing: members see a shared image by id; it lists once they accept.
    let shared = a
        .created(json!({"name": "for-bob", "visibility": "shared"}))
        .await;
    assert_glance_error(
        &b.get(&format!("/v2/images/{shared}")).await,
        StatusCode::NOT_FOUND,
    );
    let member = a
        .send(
            Method::POST,
            &format!("/v2/images/{shared}/members"),
            Some("application/json"),
            Some(json!({"member": bob_project}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(member.status, StatusCode::OK, "{}", member.body);
    assert_eq!(member.body["status"], "pending");
    assert_eq!(member.body["schema"], "/v2/schemas/member");
    let again = a
        .send(
            Method::POST,
            &format!("/v2/images/{shared}/members"),
            Some("application/json"),
            Some(json!({"member": bob_project}).to_string().into_bytes()),
        )
        .await;
    assert_glance_error(&again, StatusCode::CONFLICT);
    assert_eq!(
        b.get(&format!("/v2/images/{shared}")).await.status,
        StatusCode::OK
    );
    let names = |reply: &Reply| -> Vec<String> {
        reply.body["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert!(
        !names(&b.get("/v2/images").await).contains(&"for-bob".to_owned()),
        "pending members do not list it"
    );
    assert!(
        names(&b.get("/v2/images?member_status=pending").await).contains(&"for-bob".to_owned())
    );
    // The owner cannot accept for the member; the member can.
    let accept = json!({"status": "accepted"}).to_string().into_bytes();
    let by_owner = a
        .send(
            Method::PUT,
            &format!("/v2/images/{shared}/members/{bob_project}"),
            Some("application/json"),
            Some(accept.clone()),
        )
        .await;
    assert_glance_error(&by_owner, StatusCode::FORBIDDEN);
    let by_member = b
        .send(
            Method::PUT,
            &format!("/v2/images/{shared}/members/{bob_project}"),
            Some("application/json"),
            Some(accept),
        )
        .await;
    assert_eq!(by_member.body["status"], "accepted");
    assert!(names(&b.get("/v2/images").await).contains(&"for-bob".to_owned()));
    // A member can neither add members nor edit the image.
    let sneaky = b
        .send(
            Method::POST,
            &format!("/v2/images/{shared}/members"),
            Some("application/json"),
            Some(json!({"member": "x"}).to_string().into_bytes()),
        )
        .await;
    assert_glance_error(&sneaky, StatusCode::FORBIDDEN);
    assert_glance_error(
        &b.patch(
            &shared,
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    // Members of a private image are refused.
    let not_shared = a
        .send(
            Method::POST,
            &format!("/v2/images/{private}/members"),
            Some("application/json"),
            Some(json!({"member": bob_project}).to_string().into_bytes()),
        )
        .await;
    assert_glance_error(&not_shared, StatusCode::FORBIDDEN);
    // Removing the member hides the image again.
    assert_eq!(
        a.delete(&format!("/v2/images/{shared}/members/{bob_project}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_glance_error(
        &b.get(&format!("/v2/images/{shared}")).await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn listing_filters_sorts_and_pages() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);
    for i in 0..7 {
        let tags = if i % 2 == 0 {
            json!(["even"])
        } else {
            json!(["odd"])
        };
        let id = glance
            .created(json!({"name": format!("img-{i}"), "disk_format": "raw", "container_format": "bare", "tags": tags, "os_distro": if i < 3 { "debian" } else { "ubuntu" }}))
            .await;
        if i < 2 {
            assert_eq!(
                glance.upload(&id, vec![0u8; 100 * (i + 1)]).await.status,
                StatusCode::NO_CONTENT
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let names = |reply: &Reply| -> Vec<String> {
        reply.body["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = glance.get("/v2/images").await;
    assert_eq!(all.body["schema"], "/v2/schemas/images");
    assert_eq!(all.body["first"], "/v2/images");
    assert_eq!(
        names(&all),
        vec![
            "img-6", "img-5", "img-4", "img-3", "img-2", "img-1", "img-0"
        ],
        "newest first"
    );
    assert_eq!(
        names(&glance.get("/v2/images?sort_key=name&sort_dir=asc").await)[0],
        "img-0"
    );
    assert_eq!(
        names(&glance.get("/v2/images?sort=name:asc").await)[6],
        "img-6"
    );
    assert_eq!(names(&glance.get("/v2/images?tag=even").await).len(), 4);
    assert_eq!(
        names(&glance.get("/v2/images?name=img-3").await),
        vec!["img-3"]
    );
    assert_eq!(
        names(&glance.get("/v2/images?name=in:img-3,img-4").await).len(),
        2
    );
    assert_eq!(
        names(&glance.get("/v2/images?status=active").await).len(),
        2
    );
    assert_eq!(
        names(&glance.get("/v2/images?size_min=150").await),
        vec!["img-1"]
    );
    assert_eq!(
        names(&glance.get("/v2/images?os_distro=debian").await).len(),
        3
    );
    assert_eq!(
        names(
            &glance
                .get("/v2/images?created_at=gt:2000-01-01T00:00:00Z")
                .await
        )
        .len(),
        7
    );
    assert_eq!(
        names(
            &glance
                .get("/v2/images?created_at=lt:2000-01-01T00:00:00Z")
                .await
        )
        .len(),
        0
    );
    // Pages of 3 follow `next` to the end, without repeats.
    let mut seen = Vec::new();
    let mut next = Some("/v2/images?limit=3&sort_key=name&sort_dir=asc".to_owned());
    while let Some(path) = next {
        let page = glance.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(names(&page));
        next = page.body["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, (0..7).map(|i| format!("img-{i}")).collect::<Vec<_>>());
    for bad in [
        "/v2/images?limit=-1",
        "/v2/images?sort_key=secret",
        "/v2/images?sort_dir=up",
        "/v2/images?marker=nope",
        "/v2/images?visibility=everyone",
        "/v2/images?created_at=gt:yesterday",
    ] {
        assert_glance_error(&glance.get(bad).await, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn tags_protection_deactivation_and_delete() {
    let cloud = Cloud::start().await;
    let (alice, _, _, _) = two_tenants(&cloud).await;
    let glance = Glance::new(&cloud, &alice);
    let id = glance.created(json!({"name": "t", "disk_format": "raw", "container_format": "bare", "protected": true})).await;
    assert_eq!(
        glance
            .send(
                Method::PUT,
                &format!("/v2/images/{id}/tags/blue"),
                None,
                None
            )
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        glance.get(&format!("/v2/images/{id}")).await.body["tags"],
        json!(["blue"])
    );
    assert_eq!(
        glance
            .delete(&format!("/v2/images/{id}/tags/blue"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_glance_error(
        &glance.delete(&format!("/v2/images/{id}/tags/blue")).await,
        StatusCode::NOT_FOUND,
    );

    assert_eq!(
        glance.upload(&id, vec![9u8; 10]).await.status,
        StatusCode::NO_CONTENT
    );
    let deactivate = glance
        .send(
            Method::POST,
            &format!("/v2/images/{id}/actions/deactivate"),
            None,
            None,
        )
        .await;
    assert_eq!(deactivate.status, StatusCode::NO_CONTENT);
    assert_eq!(glance.status_of(&id).await, "deactivated");
    assert_eq!(glance.download(&id, None).await.0, StatusCode::FORBIDDEN);
    let reactivate = glance
        .send(
            Method::POST,
            &format!("/v2/images/{id}/actions/reactivate"),
            None,
            None,
        )
        .await;
    assert_eq!(reactivate.status, StatusCode::NO_CONTENT);
    assert_eq!(glance.download(&id, None).await.2, vec![9u8; 10]);

    assert_glance_error(
        &glance.delete(&format!("/v2/images/{id}")).await,
        StatusCode::FORBIDDEN,
    );
    assert!(cloud.data_dir.join("images").join(&id).exists());
    glance
        .patch(
            &id,
            json!([{"op": "replace", "path": "/protected", "value": false}]),
        )
        .await;
    assert_eq!(
        glance.delete(&format!("/v2/images/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_glance_error(
        &glance.get(&format!("/v2/images/{id}")).await,
        StatusCode::NOT_FOUND,
    );
    assert!(
        !cloud.data_dir.join("images").join(&id).exists(),
        "the data is removed"
    );
}

#[tokio::test]
async fn interoperable_import_glance_direct_and_guarded_web_download() {
    // A tiny HTTP server on loopback that serves one image file.
    let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = listener.local_addr().unwrap();
    let served = payload.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = served.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });

    let cloud =
        Cloud::start_with(|c| c.image.web_download_allowed_networks = vec!["127.0.0.1/32".into()])
            .await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);

    let direct = glance
        .created(json!({"name": "direct", "disk_format": "raw", "container_format": "bare"}))
        .await;
    // Importing before staging is a conflict.
    assert_glance_error(
        &glance
            .import(&direct, json!({"name": "glance-direct"}))
            .await,
        StatusCode::CONFLICT,
    );
    let staged = glance
        .send(
            Method::PUT,
            &format!("/v2/images/{direct}/stage"),
            Some("application/octet-stream"),
            Some(payload.clone()),
        )
        .await;
    assert_eq!(staged.status, StatusCode::NO_CONTENT);
    assert_eq!(glance.status_of(&direct).await, "uploading");
    assert_eq!(
        glance
            .import(&direct, json!({"name": "glance-direct"}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(glance.wait_for(&direct, "active").await, "active");
    assert_eq!(glance.download(&direct, None).await.2, payload);
    assert_eq!(
        glance.get(&format!("/v2/images/{direct}")).await.body["os_hash_value"],
        hex_sha512(&payload)
    );

    let web = glance
        .created(json!({"name": "web", "disk_format": "raw", "container_format": "bare"}))
        .await;
    let uri = format!("http://{source}/cirros.img");
    assert_eq!(
        glance
            .import(&web, json!({"name": "web-download", "uri": uri}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(glance.wait_for(&web, "active").await, "active");
    assert_eq!(glance.download(&web, None).await.2, payload);

    assert_glance_error(
        &glance.import(&web, json!({"name": "copy-image"})).await,
        StatusCode::BAD_REQUEST,
    );
    assert_glance_error(
        &glance.import(&web, json!({})).await,
        StatusCode::BAD_REQUEST,
    );
}

#[tokio::test]
async fn web_download_refuses_internal_addresses_by_default() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);
    let id = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    for uri in [
        "http://127.0.0.1:1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/x",
        "http://[::1]/x",
        "file:///etc/passwd",
        "http://localhost/x",
    ] {
        let reply = glance
            .import(&id, json!({"name": "web-download", "uri": uri}))
            .await;
        assert_glance_error(&reply, StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        glance.status_of(&id).await,
        "queued",
        "a refused import changes nothing"
    );
}

#[tokio::test]
async fn quotas_are_enforced_with_413() {
    let cloud = Cloud::start_with(|c| {
        c.image.quota_image_count_total = 2;
        c.image.quota_image_size_total = 1000;
    })
    .await;
    let admin = cloud.admin_token().await;
    let glance = Glance::new(&cloud, &admin);
    let first = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    let second = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    assert_glance_error(
        &glance.create(json!({})).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    assert_eq!(
        glance.upload(&first, vec![1u8; 600]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_glance_error(
        &glance.upload(&second, vec![1u8; 600]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    // Glance puts the image back to queued.
    assert_eq!(glance.status_of(&second).await, "queued");
}

#[tokio::test]
async fn the_in_process_interface_for_other_services() {
    let dir = tempfile::tempdir().unwrap();
    let pool = onestack_db::open_sqlite(&dir.path().join("db"))
        .await
        .unwrap();
    let images = onestack_image::Images::open(pool, Default::default(), dir.path())
        .await
        .unwrap();
    let source = dir.path().join("snapshot.raw");
    std::fs::write(&source, b"snapshot bytes").unwrap();
    let now = onestack_db::now_micros();
    let template = onestack_image::model::Image {
        id: uuid::Uuid::new_v4().to_string(),
        name: Some("snap".into()),
        status: onestack_image::model::Status::Queued,
        visibility: "private".into(),
        protected: false,
        os_hidden: false,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        owner: "p".into(),
        size: None,
        virtual_size: None,
        min_disk: 0,
        min_ram: 0,
        container_format: Some("bare".into()),
        disk_format: Some("raw".into()),
        properties: Default::default(),
        tags: vec![],
        created_at: now,
        updated_at: now,
    };
    let created = images.create_from_file(template, &source).await.unwrap();
    assert_eq!(created.status, onestack_image::model::Status::Active);
    assert_eq!(
        created.checksum.as_deref(),
        Some(hex_md5(b"snapshot bytes").as_str())
    );
    let (_, path) = images.open_data(&created.id).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"snapshot bytes");
}

#[tokio::test]
async fn an_administrator_can_hand_an_image_to_another_project() {
    let cloud = Cloud::start().await;
    let (alice, _, bob, bob_project) = two_tenants(&cloud).await;
    let admin = cloud.admin_token().await;
    let id = Glance::new(&cloud, &alice)
        .created(json!({"name": "moving", "visibility": "private"}))
        .await;
    let moved = Glance::new(&cloud, &admin)
        .patch(
            &id,
            json!([{"op": "replace", "path": "/owner", "value": bob_project}]),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let seen = Glance::new(&cloud, &bob)
        .get(&format!("/v2/images/{id}"))
        .await;
    assert_eq!(seen.body["owner"], json!(bob_project), "{}", seen.body);
    assert_glance_error(
        &Glance::new(&cloud, &alice)
            .get(&format!("/v2/images/{id}"))
            .await,
        StatusCode::NOT_FOUND,
    );
}
