//! A volume's data into a new image (`os-volume_upload_image`): the image gets the volume's
//! bytes in the format asked for, the volume is available again, and what cannot be done is
//! refused with nothing left behind.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{available, call, get, post, upload_image};
use crate::common::Cloud;
use crate::compute::{self, Client};

async fn image_bytes(client: &Client<'_>, id: &str) -> Vec<u8> {
    let (cloud, token) = client.parts();
    let response = cloud
        .http
        .get(format!("{}/image/v2/images/{id}/file", cloud.url))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

/// Polls the image service until the image is active (an upload that failed removes it).
async fn image(client: &Client<'_>, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + super::WAIT;
    loop {
        let reply = client
            .send(Method::GET, &format!("/image/v2/images/{id}"), None)
            .await;
        if reply.body["status"] == "active" {
            return reply.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "image {id} never became active: {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn upload(name: &str, format: &str) -> Value {
    json!({"os-volume_upload_image": {"image_name": name, "disk_format": format}})
}

#[tokio::test]
async fn volumes_upload_into_images() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 241) as u8).collect();
    let source = upload_image(alice, "pattern", "raw", data.clone()).await;
    let volume = post(
        alice,
        "/volumes",
        json!({"volume": {"size": 1, "imageRef": source}}),
    )
    .await
    .id("volume");
    available(alice, &volume).await;

    // Raw: the image is the volume's bytes, the image's own properties carried over.
    let action = format!("/volumes/{volume}/action");
    let started = post(alice, &action, upload("as-raw", "raw")).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let answer = &started.body["os-volume_upload_image"];
    assert_eq!(answer["status"], "uploading", "{answer}");
    assert_eq!(answer["disk_format"], "raw");
    assert_eq!(answer["volume_type"]["name"], "__DEFAULT__");
    let raw_id = answer["image_id"].as_str().unwrap().to_owned();
    let raw = image(alice, &raw_id).await;
    assert_eq!(raw["disk_format"], "raw");
    assert_eq!(raw["os_distro"], "cirros", "{raw}");
    assert_eq!(raw["min_disk"], 1);
    assert_eq!(raw["size"], 1u64 << 30);
    available(alice, &volume).await;
    let bytes = image_bytes(alice, &raw_id).await;
    assert_eq!(&bytes[..data.len()], &data[..]);
    assert!(bytes[data.len()..].iter().all(|b| *b == 0));

    // qcow2: a standalone image the image service accepted, as small as the data.
    let started = post(alice, &action, upload("as-qcow2", "qcow2")).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    let qcow2_id = started.body["os-volume_upload_image"]["image_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let qcow2 = image(alice, &qcow2_id).await;
    assert_eq!(qcow2["disk_format"], "qcow2");
    assert!(qcow2["size"].as_u64().unwrap() < 4 << 20, "{qcow2}");
    available(alice, &volume).await;

    // Refused, with no image left behind: another format, public by a member, no name,
    // another project's volume.
    let count = image_count(alice).await;
    let vmdk = post(alice, &action, upload("x", "vmdk")).await;
    assert_eq!(vmdk.status, StatusCode::BAD_REQUEST, "{}", vmdk.body);
    let public = post(
        alice,
        &action,
        json!({"os-volume_upload_image": {"image_name": "x", "visibility": "public"}}),
    )
    .await;
    assert_eq!(public.status, StatusCode::FORBIDDEN, "{}", public.body);
    let unnamed = post(alice, &action, json!({"os-volume_upload_image": {}})).await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST, "{}", unnamed.body);
    let bobs = call(
        &env.bob,
        Method::POST,
        &action,
        None,
        Some(upload("x", "raw")),
    )
    .await;
    assert_eq!(bobs.status, StatusCode::NOT_FOUND, "{}", bobs.body);
    assert_eq!(image_count(alice).await, count);
    assert_eq!(
        get(alice, &format!("/volumes/{volume}")).await.body["volume"]["status"],
        "available"
    );
}

async fn image_count(client: &Client<'_>) -> usize {
    client
        .send(Method::GET, "/image/v2/images", None)
        .await
        .body["images"]
        .as_array()
        .unwrap()
        .len()
}
