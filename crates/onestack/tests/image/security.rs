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
    let body = json!({"method": {"name": "glance-direct"}})
        .to_string()
        .into_bytes();
    let reply = glance
        .send(
            Method::POST,
            &format!("/v2/images/{staged}/import"),
            Some("application/json"),
            Some(body),
        )
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
    let body = json!({"method": {"name": "web-download", "uri": "http://example.com/x"}})
        .to_string()
        .into_bytes();
    let import = glance
        .send(
            Method::POST,
            &format!("/v2/images/{bare}/import"),
            Some("application/json"),
            Some(body),
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
