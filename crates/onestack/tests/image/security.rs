//! The image side of issue 16 ("Close the holes"), tried as an attacker would over the API:
//! a VMDK that names a host file, data for an image without formats, readers writing,
//! reused ids, parallel uploads past the quota, web-download to the host's own addresses.

use super::*;

/// The CVE-2022-47951 file: a sparse VMDK header with no capacity whose descriptor offset
/// points at an embedded descriptor (`desc_size` 0) of type monolithicFlat with a flat
/// extent that is a host file.
fn vmdk_reading_a_host_file() -> Vec<u8> {
    let mut h = vec![0u8; 64 * 1024];
    h[..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h[8..12].copy_from_slice(&3u32.to_le_bytes());
    h[20..28].copy_from_slice(&128u64.to_le_bytes());
    h[28..36].copy_from_slice(&1u64.to_le_bytes());
    h[44..48].copy_from_slice(&512u32.to_le_bytes());
    let descriptor = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
                      createType=\"monolithicFlat\"\n\nRW 8 FLAT \"/etc/passwd\" 0\n";
    h[512..512 + descriptor.len()].copy_from_slice(descriptor.as_bytes());
    h
}

#[tokio::test]
async fn a_vmdk_naming_a_host_file_is_refused_at_upload_and_import() {
    let cloud = Cloud::start().await;
    let (alice, _, _, _) = two_tenants(&cloud).await;
    let glance = Glance::new(&cloud, &alice);
    let id = glance
        .created(json!({"name": "evil", "disk_format": "vmdk", "container_format": "bare"}))
        .await;
    let reply = glance.upload(&id, vmdk_reading_a_host_file()).await;
    assert_glance_error(&reply, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("vmdk")),
        "{}",
        reply.body
    );
    assert_eq!(glance.status_of(&id).await, "killed");
    assert_eq!(glance.download(&id, None).await.0, StatusCode::NO_CONTENT);

    // Staged and imported: the import kills it too.
    let staged = glance
        .created(json!({"name": "evil2", "disk_format": "vmdk", "container_format": "bare"}))
        .await;
    let reply = glance
        .send(
            Method::PUT,
            &format!("/v2/images/{staged}/stage"),
            Some("application/octet-stream"),
            Some(vmdk_reading_a_host_file()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let reply = glance
        .import(&staged, json!({"name": "glance-direct"}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(glance.wait_for(&staged, "active").await, "killed");
}

#[tokio::test]
async fn data_needs_a_disk_and_a_container_format() {
    let cloud = Cloud::start().await;
    let (alice, _, _, _) = two_tenants(&cloud).await;
    let glance = Glance::new(&cloud, &alice);
    let bare = glance.created(json!({"name": "no formats"})).await;
    let reply = glance.upload(&bare, b"data".to_vec()).await;
    assert_glance_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["message"],
        "Properties disk_format, container_format must be set prior to saving data."
    );
    assert_eq!(glance.status_of(&bare).await, "queued");
    let stage = glance
        .send(
            Method::PUT,
            &format!("/v2/images/{bare}/stage"),
            Some("application/octet-stream"),
            Some(b"data".to_vec()),
        )
        .await;
    assert_glance_error(&stage, StatusCode::BAD_REQUEST);
    assert_eq!(glance.status_of(&bare).await, "queued");
    let import = glance
        .import(
            &bare,
            json!({"name": "web-download", "uri": "http://example.com/x"}),
        )
        .await;
    assert_glance_error(&import, StatusCode::CONFLICT);
    assert_eq!(
        import.body["message"],
        "'container_format' needs to be set before import"
    );

    let half = glance
        .created(json!({"name": "half", "container_format": "bare"}))
        .await;
    let reply = glance.upload(&half, b"data".to_vec()).await;
    assert_glance_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["message"],
        "Property disk_format must be set prior to saving data."
    );
    // Once set, the same image takes its data.
    let patched = glance
        .patch(
            &half,
            json!([{"op": "add", "path": "/disk_format", "value": "raw"}]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(
        glance.upload(&half, b"data".to_vec()).await.status,
        StatusCode::NO_CONTENT
    );
}

/// A user with `role` in an existing project, and their token.
async fn user_in(cloud: &Cloud, admin: &str, project: &str, name: &str, role: &str) -> String {
    let user = cloud
        .post(
            "/users",
            admin,
            json!({"user": {"name": name, "domain_id": "default", "password": "pw-pw-pw"}}),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.body);
    let user_id = user.id("user");
    let role_id = cloud.role_id(admin, role).await;
    let grant = cloud
        .put(
            &format!("/projects/{project}/users/{user_id}/roles/{role_id}"),
            admin,
        )
        .await;
    assert_eq!(grant.status, StatusCode::NO_CONTENT, "{}", grant.body);
    let projects = cloud.get(&format!("/projects/{project}"), admin).await;
    let project_name = projects.body["project"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    cloud.token(name, "pw-pw-pw", &project_name).await
}

/// Every image write a caller can attempt on image `id` (owned by `owner_project`), with
/// what it is: (label, reply).
async fn every_write(g: &Glance<'_>, id: &str, other_project: &str) -> Vec<(&'static str, Reply)> {
    let json = Some("application/json");
    let octets = Some("application/octet-stream");
    vec![
        ("create", g.create(json!({"name": "x"})).await),
        (
            "update",
            g.patch(
                id,
                json!([{"op": "replace", "path": "/name", "value": "y"}]),
            )
            .await,
        ),
        ("upload", g.upload(id, b"data".to_vec()).await),
        (
            "stage",
            g.send(
                Method::PUT,
                &format!("/v2/images/{id}/stage"),
                octets,
                Some(b"data".to_vec()),
            )
            .await,
        ),
        (
            "import",
            g.import(id, json!({"name": "glance-direct"})).await,
        ),
        (
            "add tag",
            g.send(Method::PUT, &format!("/v2/images/{id}/tags/t"), None, None)
                .await,
        ),
        (
            "remove tag",
            g.delete(&format!("/v2/images/{id}/tags/keep")).await,
        ),
        (
            "add member",
            g.send(
                Method::POST,
                &format!("/v2/images/{id}/members"),
                json,
                Some(json!({"member": other_project}).to_string().into_bytes()),
            )
            .await,
        ),
        (
            "delete member",
            g.delete(&format!("/v2/images/{id}/members/{other_project}"))
                .await,
        ),
        (
            "deactivate",
            g.send(
                Method::POST,
                &format!("/v2/images/{id}/actions/deactivate"),
                None,
                None,
            )
            .await,
        ),
        (
            "reactivate",
            g.send(
                Method::POST,
                &format!("/v2/images/{id}/actions/reactivate"),
                None,
                None,
            )
            .await,
        ),
        ("delete", g.delete(&format!("/v2/images/{id}")).await),
    ]
}

/// The member project's answer to a share.
async fn accept(g: &Glance<'_>, id: &str, member: &str) -> Reply {
    let body = json!({"status": "accepted"}).to_string().into_bytes();
    g.send(
        Method::PUT,
        &format!("/v2/images/{id}/members/{member}"),
        Some("application/json"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn image_writes_follow_glances_default_roles() {
    let cloud = Cloud::start().await;
    let (alice, alice_project, bob, bob_project) = two_tenants(&cloud).await;
    let admin = cloud.admin_token().await;
    let reader = user_in(&cloud, &admin, &alice_project, "carol", "reader").await;
    let bob_reader = user_in(&cloud, &admin, &bob_project, "dave", "reader").await;
    let (a, r, b, br, root) = (
        Glance::new(&cloud, &alice),
        Glance::new(&cloud, &reader),
        Glance::new(&cloud, &bob),
        Glance::new(&cloud, &bob_reader),
        Glance::new(&cloud, &admin),
    );
    let id = a
        .created(
            json!({"name": "shared", "visibility": "shared", "disk_format": "raw",
                        "container_format": "bare", "tags": ["keep"]}),
        )
        .await;
    let before = a.get(&format!("/v2/images/{id}")).await.body;

    // A reader of the owning project: every write is a 403, and nothing changed.
    for (what, reply) in every_write(&r, &id, &bob_project).await {
        assert_glance_error(&reply, StatusCode::FORBIDDEN);
        assert!(
            reply.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("not authorized")),
            "{what}: {}",
            reply.body
        );
    }
    assert_eq!(a.get(&format!("/v2/images/{id}")).await.body, before);
    assert_eq!(
        a.get(&format!("/v2/images/{id}/members")).await.body["members"],
        json!([])
    );
    // ... but reads.
    assert_eq!(
        r.get(&format!("/v2/images/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(r.get("/v2/images").await.body["images"][0]["id"], json!(id));
    assert_eq!(
        r.get(&format!("/v2/images/{id}/members")).await.status,
        StatusCode::OK
    );

    // The owner's member shares it; only a member of the other project accepts it.
    let shared = a
        .send(
            Method::POST,
            &format!("/v2/images/{id}/members"),
            Some("application/json"),
            Some(json!({"member": bob_project}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(shared.status, StatusCode::OK, "{}", shared.body);
    assert_glance_error(&accept(&br, &id, &bob_project).await, StatusCode::FORBIDDEN);
    assert_glance_error(&accept(&a, &id, &bob_project).await, StatusCode::FORBIDDEN);
    assert_eq!(accept(&b, &id, &bob_project).await.status, StatusCode::OK);
    // A member of the other project sees it but writes nothing of it.
    for (what, reply) in every_write(&b, &id, &bob_project).await {
        if what == "create" {
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            continue;
        }
        assert_glance_error(&reply, StatusCode::FORBIDDEN);
    }

    // Data: a reader cannot upload, download or stage; the member can.
    assert_eq!(
        a.upload(&id, b"image bytes".to_vec()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(r.download(&id, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(br.download(&id, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(b.download(&id, None).await.2, b"image bytes");
    assert_eq!(a.download(&id, None).await.2, b"image bytes");

    // Only an admin publicizes; a member may make its image community.
    let publicize = json!([{"op": "replace", "path": "/visibility", "value": "public"}]);
    assert_glance_error(
        &a.patch(&id, publicize.clone()).await,
        StatusCode::FORBIDDEN,
    );
    assert_glance_error(
        &r.patch(
            &id,
            json!([{"op": "replace", "path": "/visibility", "value": "community"}]),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(root.patch(&id, publicize).await.status, StatusCode::OK);

    // The owner's member does every write on its own image; an admin on anyone's.
    let own = a
        .created(
            json!({"name": "own", "disk_format": "raw", "container_format": "bare",
                        "visibility": "shared", "tags": ["keep"]}),
        )
        .await;
    for (what, reply) in every_write(&a, &own, &bob_project).await {
        assert!(
            reply.status.is_success() || reply.status == StatusCode::CONFLICT,
            "{what}: {} {}",
            reply.status,
            reply.body
        );
    }
    assert_glance_error(
        &a.get(&format!("/v2/images/{own}")).await,
        StatusCode::NOT_FOUND,
    );
    let theirs = a
        .created(
            json!({"name": "theirs", "disk_format": "raw", "container_format": "bare",
                        "visibility": "shared", "tags": ["keep"]}),
        )
        .await;
    for (what, reply) in every_write(&root, &theirs, &bob_project).await {
        assert!(
            reply.status.is_success() || reply.status == StatusCode::CONFLICT,
            "{what}: {} {}",
            reply.status,
            reply.body
        );
    }
    assert_glance_error(
        &a.get(&format!("/v2/images/{theirs}")).await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn a_deleted_images_id_is_never_given_out_again() {
    let cloud = Cloud::start().await;
    let (alice, _, bob, _) = two_tenants(&cloud).await;
    let (a, b) = (Glance::new(&cloud, &alice), Glance::new(&cloud, &bob));
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({"id": id, "name": "first", "disk_format": "raw", "container_format": "bare"});
    assert_eq!(a.create(body.clone()).await.status, StatusCode::CREATED);
    assert_eq!(
        a.upload(&id, b"old bytes".to_vec()).await.status,
        StatusCode::NO_CONTENT
    );
    let live = a.create(body.clone()).await;
    assert_glance_error(&live, StatusCode::CONFLICT);
    assert_eq!(
        a.delete(&format!("/v2/images/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    // Neither the owner nor another project can take the id again.
    let again = a.create(body.clone()).await;
    assert_glance_error(&again, StatusCode::CONFLICT);
    assert_eq!(
        again.body["message"],
        json!(format!("Image ID {id} already exists!"))
    );
    assert_glance_error(&b.create(body).await, StatusCode::CONFLICT);
    assert_glance_error(
        &a.get(&format!("/v2/images/{id}")).await,
        StatusCode::NOT_FOUND,
    );
}

/// Sends a PUT of `length` bytes to `path` on a raw connection: the head and `first` bytes
/// now; the rest is for the caller.
async fn start_put(
    cloud: &Cloud,
    token: &str,
    path: &str,
    length: usize,
    first: &[u8],
) -> tokio::net::TcpStream {
    let addr = cloud.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /image{path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    stream
}

/// The status code of the answer on a raw connection.
async fn status_on(mut stream: tokio::net::TcpStream) -> u16 {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn parallel_uploads_cannot_pass_the_storage_quota_together() {
    let cloud = Cloud::start_with(|c| c.image.quota_image_size_total = 1000).await;
    let (alice, _, _, _) = two_tenants(&cloud).await;
    let glance = Glance::new(&cloud, &alice);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            glance
                .created(json!({"disk_format": "raw", "container_format": "bare"}))
                .await,
        );
    }
    // Four uploads of 600 bytes start together, each with its first 300 bytes (1200 in
    // all, past the quota: the last to send is refused already) ...
    let mut streams = Vec::new();
    for id in &ids {
        let path = format!("/v2/images/{id}/file");
        streams.push(start_put(&cloud, &alice, &path, 600, &[1u8; 300]).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ... then the rest of each.
    for stream in &mut streams {
        let _ = stream.write_all(&[2u8; 300]).await;
    }
    let mut statuses = Vec::new();
    for stream in streams {
        statuses.push(status_on(stream).await);
    }
    let mut active = 0;
    for (id, status) in ids.iter().zip(&statuses) {
        let image = glance.get(&format!("/v2/images/{id}")).await.body;
        match status {
            204 => {
                assert_eq!(image["status"], "active");
                active += 1;
            }
            413 => assert_eq!(image["status"], "queued", "{image}"),
            other => panic!("upload answered {other}"),
        }
    }
    assert!(active <= 1, "{statuses:?}: together past the quota");
    // Nothing is left reserved: what is left of the quota is usable, and no more.
    let left = 1000 - 600 * active;
    let next = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    assert_glance_error(
        &glance.upload(&next, vec![3u8; left + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    assert_eq!(glance.status_of(&next).await, "queued");
    assert_eq!(
        glance.upload(&next, vec![3u8; left]).await.status,
        StatusCode::NO_CONTENT
    );
    // Staged data counts too.
    let staged = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    let reply = glance
        .send(
            Method::PUT,
            &format!("/v2/images/{staged}/stage"),
            Some("application/octet-stream"),
            Some(vec![4u8; 10]),
        )
        .await;
    assert_glance_error(&reply, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(glance.status_of(&staged).await, "queued");
}

#[tokio::test]
async fn staged_data_counts_against_the_quota_until_imported() {
    let cloud = Cloud::start_with(|c| c.image.quota_image_size_total = 1000).await;
    let (alice, _, _, _) = two_tenants(&cloud).await;
    let glance = Glance::new(&cloud, &alice);
    let stage = |id: String, bytes: usize| {
        let g = &glance;
        async move {
            g.send(
                Method::PUT,
                &format!("/v2/images/{id}/stage"),
                Some("application/octet-stream"),
                Some(vec![5u8; bytes]),
            )
            .await
        }
    };
    let first = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    let second = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    assert_eq!(
        stage(first.clone(), 700).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        glance.get(&format!("/v2/images/{first}")).await.body["size"],
        700
    );
    assert_glance_error(
        &stage(second.clone(), 700).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    // The import of the staged data replaces it: it does not count twice.
    let reply = glance
        .import(&first, json!({"name": "glance-direct"}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(glance.wait_for(&first, "active").await, "active");
    assert_eq!(
        stage(second.clone(), 300).await.status,
        StatusCode::NO_CONTENT
    );
}

/// This host's address on the interface its default route uses, if it has one.
fn host_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:80").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn web_download_refuses_the_new_ranges_and_the_hosts_own_addresses() {
    let cloud = Cloud::start().await;
    let (alice, _, _, _) = two_tenants(&cloud).await;
    let glance = Glance::new(&cloud, &alice);
    let id = glance
        .created(json!({"disk_format": "raw", "container_format": "bare"}))
        .await;
    let mut uris = vec![
        "http://0.0.0.0:5000/x".to_owned(),
        "http://0/x".to_owned(),
        "http://0.1.2.3/x".to_owned(),
        "http://[64:ff9b::7f00:1]/x".to_owned(),
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data".to_owned(),
        "http://[2002:7f00:1::1]/x".to_owned(),
        "http://[::ffff:7f00:1]/x".to_owned(),
        "http://user:hunter2@[64:ff9b::7f00:1]/x".to_owned(),
        "http://user:hunter2@host with spaces/x".to_owned(),
    ];
    if let Some(ip) = host_address() {
        let host = match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        uris.push(format!("http://user:hunter2@{host}:1/x"));
    }
    for uri in uris {
        let reply = glance
            .import(&id, json!({"name": "web-download", "uri": uri}))
            .await;
        assert_glance_error(&reply, StatusCode::BAD_REQUEST);
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(!message.contains("hunter2"), "{uri}: {message}");
    }
    assert_eq!(glance.status_of(&id).await, "queued");
}

/// A monolithicSparse VMDK header of `sectors` with its embedded descriptor.
fn sparse_vmdk(sectors: u64) -> Vec<u8> {
    let mut h = vec![0u8; 64 * 1024];
    h[..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h[8..12].copy_from_slice(&3u32.to_le_bytes());
    h[12..20].copy_from_slice(&sectors.to_le_bytes());
    h[20..28].copy_from_slice(&128u64.to_le_bytes());
    h[28..36].copy_from_slice(&1u64.to_le_bytes());
    h[36..44].copy_from_slice(&20u64.to_le_bytes());
    h[44..48].copy_from_slice(&512u32.to_le_bytes());
    h[48..56].copy_from_slice(&0x15u64.to_le_bytes());
    h[56..64].copy_from_slice(&0x22u64.to_le_bytes());
    h[64..72].copy_from_slice(&0x80u64.to_le_bytes());
    let descriptor = format!(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
         createType=\"monolithicSparse\"\n\nRW {sectors} SPARSE \"disk.vmdk\"\n"
    );
    h[512..512 + descriptor.len()].copy_from_slice(descriptor.as_bytes());
    h
}

#[tokio::test]
async fn a_crafted_vmdk_already_stored_is_refused_at_boot() {
    let cloud = Cloud::start().await;
    let env = crate::compute::env(&cloud).await;
    let alice = cloud.token("alice", "pw-alice", "alice").await;
    let glance = Glance::new(&cloud, &alice);
    let id = glance
        .created(json!({"name": "sparse", "disk_format": "vmdk", "container_format": "bare"}))
        .await;
    assert_eq!(
        glance.upload(&id, sparse_vmdk(2048)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        glance.get(&format!("/v2/images/{id}")).await.body["virtual_size"],
        2048 * 512
    );
    // Its data replaced behind the API's back, as data stored before the inspector knew
    // the trick would be: the host inspects it again before qemu-img may see it.
    std::fs::write(
        cloud.data_dir.join("images").join(&id),
        vmdk_reading_a_host_file(),
    )
    .unwrap();
    let server = env.alice.boot("evil", &id, json!({})).await;
    env.alice.wait_status(&server, "ERROR").await;
    let fault = env.admin.server(&server).await["fault"].clone();
    assert!(
        fault.to_string().contains("vmdk"),
        "the fault says why: {fault}"
    );
}
