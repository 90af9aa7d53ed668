//! Compute API microversions: the version a request asks for (`OpenStack-API-Version:
//! compute X.Y` or the legacy `X-OpenStack-Nova-API-Version: X.Y`), checked against the
//! range served, echoed on every response, and handed to handlers as an extractor.

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use onestack_api::ApiError;

/// A compute API version `2.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16);

pub const MIN: Version = Version(1);
/// The highest version whose behaviour is served completely (2.90: `hostname` on create).
pub const MAX: Version = Version(90);

impl Version {
    /// Whether the request's version is at least `2.minor`.
    pub fn at_least(self, minor: u16) -> bool {
        self.0 >= minor
    }
    pub fn text(self) -> String {
        format!("2.{}", self.0)
    }
}

const MODERN: &str = "openstack-api-version";
const LEGACY: &str = "x-openstack-nova-api-version";

/// The version asked for, `None` for the default (2.1).
fn requested(headers: &HeaderMap) -> Result<Option<Version>, ApiError> {
    let modern = headers
        .get_all(MODERN)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|item| {
            let mut words = item.split_whitespace();
            (words.next()?.eq_ignore_ascii_case("compute")).then(|| words.next().unwrap_or(""))
        });
    let text = match modern {
        Some(text) => text.to_owned(),
        None => match headers.get(LEGACY).and_then(|v| v.to_str().ok()) {
            Some(text) => text.trim().to_owned(),
            None => return Ok(None),
        },
    };
    if text.eq_ignore_ascii_case("latest") {
        return Ok(Some(MAX));
    }
    let invalid = || {
        ApiError::bad_request(format!(
            "Invalid API version request string: {text}. It must be of the form 2.N or 'latest'."
        ))
    };
    let (major, minor) = text.split_once('.').ok_or_else(invalid)?;
    let major: u16 = major.parse().map_err(|_| invalid())?;
    let minor: u16 = minor.parse().map_err(|_| invalid())?;
    let version = Version(minor);
    if major != 2 || version < MIN || version > MAX {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version {text} is not supported by the API. Minimum is {} and maximum is {}.",
                MIN.text(),
                MAX.text()
            ),
        ));
    }
    Ok(Some(version))
}

/// Middleware: resolves the version, refuses unsupported ones (406) and echoes the version
/// served on the response.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let version = match requested(request.headers()) {
        Ok(v) => v.unwrap_or(MIN),
        Err(error) => return with_headers(error.into_response(), MIN),
    };
    request.extensions_mut().insert(version);
    with_headers(next.run(request).await, version)
}

fn with_headers(mut response: Response, version: Version) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("compute {}", version.text())) {
        headers.insert(MODERN, v);
    }
    if let Ok(v) = HeaderValue::from_str(&version.text()) {
        headers.insert(LEGACY, v);
    }
    headers.insert(
        http::header::VARY,
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Version {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(parts.extensions.get::<Version>().copied().unwrap_or(MIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_both_headers_and_latest() {
        assert_eq!(requested(&headers(&[])).ok(), Some(None));
        assert_eq!(
            requested(&headers(&[(MODERN, "compute 2.47")])).ok(),
            Some(Some(Version(47)))
        );
        assert_eq!(
            requested(&headers(&[(MODERN, "volume 3.5, compute 2.60")])).ok(),
            Some(Some(Version(60)))
        );
        assert_eq!(
            requested(&headers(&[(LEGACY, "2.10")])).ok(),
            Some(Some(Version(10)))
        );
        assert_eq!(
            requested(&headers(&[(MODERN, "compute latest")])).ok(),
            Some(Some(MAX))
        );
    }

    #[test]
    fn refuses_bad_and_unsupported_versions() {
        let bad = requested(&headers(&[(MODERN, "compute two")])).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let high = requested(&headers(&[(MODERN, "compute 2.999")])).unwrap_err();
        assert_eq!(high.status, StatusCode::NOT_ACCEPTABLE);
        let major = requested(&headers(&[(LEGACY, "3.1")])).unwrap_err();
        assert_eq!(major.status, StatusCode::NOT_ACCEPTABLE);
    }
}
