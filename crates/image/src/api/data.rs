//! Image data: upload (`PUT /file`), download with ranges (`GET /file`), and the
//! interoperable import workflow (`PUT /stage`, `POST /import` with glance-direct or
//! web-download).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onestack_api::{AuthContext, JsonBody};
use serde_json::Value;
use tokio::io::AsyncSeekExt;

use crate::error::{Error, Result};
use crate::ops::import::ImportMethod;
use crate::ops::transfer::Incoming;
use crate::service::Images;

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// `Content-MD5` as hex (what Glance clients send) or base64 (RFC 1864).
fn declared_md5(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("content-md5")?.to_str().ok()?.trim().to_owned();
    if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(value.to_ascii_lowercase());
    }
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    (bytes.len() == 16).then(|| hex::encode(bytes))
}

/// The body of `PUT /file` or `PUT /stage`: raw data, sent as `application/octet-stream`.
fn incoming(headers: &HeaderMap, body: Body) -> Result<Incoming<axum::body::BodyDataStream>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/octet-stream") {
        return Err(Error::UnsupportedMediaType(format!(
            "Image data must be sent as application/octet-stream (got '{content_type}')."
        )));
    }
    Ok(Incoming {
        body: body.into_data_stream(),
        length: declared_length(headers),
        md5: declared_md5(headers),
    })
}

/// `PUT /v2/images/{id}/file`: queued → saving → active (or killed).
pub async fn upload(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    images.upload(&ctx, &id, incoming(&headers, body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/images/{id}/stage`: queued → uploading, data kept for a later glance-direct
/// import; a failed upload leaves the image queued, as Glance does.
pub async fn stage(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    images.stage(&ctx, &id, incoming(&headers, body)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses a single `bytes=` range against the data size.
fn range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let unsatisfiable = || {
        Error::Api(onestack_api::ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("Invalid range '{value}' for {size} bytes."),
        ))
    };
    let spec = value.strip_prefix("bytes=").ok_or_else(unsatisfiable)?;
    if spec.contains(',') {
        return Err(unsatisfiable());
    }
    let (start, end) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (first, last) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(n), size - 1)
        }
        (s, "") => (
            s.parse().map_err(|_| unsatisfiable())?,
            size.saturating_sub(1),
        ),
        (s, e) => {
            let (s, e): (u64, u64) = (
                s.parse().map_err(|_| unsatisfiable())?,
                e.parse().map_err(|_| unsatisfiable())?,
            );
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if first > last || first >= size {
        return Err(unsatisfiable());
    }
    Ok(Some((first, last)))
}

/// `GET /v2/images/{id}/file`: streamed, with `Content-MD5` and single ranges.
pub async fn download(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let Some(data) = images.download(&ctx, &id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let size = data.size;
    let (status, start, length) = match range(&headers, size)? {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut file = data.file;
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let stream = read_ahead(file.into_std().await, length);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + length - 1))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
    } else if let Some(md5) = data
        .checksum
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("content-md5", md5);
    }
    Ok(response)
}

/// Chunks read ahead of the socket, so that disk reads and network sends overlap.
const READ_AHEAD: usize = 4;
const READ_CHUNK: usize = 2 << 20;

/// Streams `length` bytes of `file` from its current position, read on a thread of its own.
fn read_ahead(
    mut file: std::fs::File,
    length: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    use std::io::Read;
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    std::thread::spawn(move || {
        let mut left = length;
        while left > 0 {
            let want = READ_CHUNK.min(left as usize);
            // read_to_end fills spare capacity without zeroing it first.
            let mut buffer = Vec::with_capacity(want);
            let result = match (&mut file).take(want as u64).read_to_end(&mut buffer) {
                Ok(n) if n == want => Ok(bytes::Bytes::from(buffer)),
                Ok(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the image file is shorter than recorded",
                )),
                Err(e) => Err(e),
            };
            let failed = result.is_err();
            // A closed channel means the client went away: stop reading.
            if tx.blocking_send(result).is_err() || failed {
                return;
            }
            left -= want as u64;
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// `{"method": {"name": ..., "uri": ...}}`.
fn import_method(body: &Value) -> Result<ImportMethod> {
    let method = body.get("method").cloned().unwrap_or(Value::Null);
    let name = method
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match name {
        "glance-direct" => Ok(ImportMethod::GlanceDirect),
        "web-download" => {
            let uri = method
                .get("uri")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::BadRequest("web-download needs a 'uri'.".into()))?;
            Ok(ImportMethod::WebDownload {
                uri: uri.to_owned(),
            })
        }
        "" => Err(Error::BadRequest(
            "The body needs {\"method\": {\"name\": ...}}.".into(),
        )),
        other => Err(Error::BadRequest(format!(
            "Import method {other} is not supported: use glance-direct or web-download."
        ))),
    }
}

/// `POST /v2/images/{id}/import`: 202, the import runs in the background.
pub async fn import(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode> {
    images.import(&ctx, &id, import_method(&body)).await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_7233() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-5"));
        assert_eq!(range(&h, 10).unwrap(), Some((2, 5)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=-3"));
        assert_eq!(range(&h, 10).unwrap(), Some((7, 9)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=8-"));
        assert_eq!(range(&h, 10).unwrap(), Some((8, 9)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-"));
        assert!(range(&h, 10).is_err());
        h.insert(header::RANGE, HeaderValue::from_static("bytes=1-2,4-5"));
        assert!(range(&h, 10).is_err());
    }

    #[test]
    fn content_md5_in_hex_or_base64() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-md5",
            HeaderValue::from_static("XrY7u+Ae7tCTyyK7j1rNww=="),
        );
        assert_eq!(
            declared_md5(&h).unwrap(),
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        );
        h.insert(
            "content-md5",
            HeaderValue::from_static("5EB63BBBE01EEED093CB22BB8F5ACDC3"),
        );
        assert_eq!(
            declared_md5(&h).unwrap(),
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        );
    }
}
