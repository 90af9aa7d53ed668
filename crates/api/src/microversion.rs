//! API microversions as Nova and Cinder negotiate them: the version a request asks for in
//! `OpenStack-API-Version: <service> X.Y` (or a service's legacy header), checked against
//! the range served (400 malformed, 406 outside it), echoed with `Vary` on every response,
//! and handed to handlers as the [`Version`] extractor.

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::ApiError;

/// A version `major.minor` of one service; only the minor varies within a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16);

impl Version {
    /// Whether the request's version is at least `major.minor`.
    pub fn at_least(self, minor: u16) -> bool {
        self.0 >= minor
    }
}

/// How one service names and bounds its versions.
#[derive(Debug)]
pub struct Scheme {
    /// The service's word in `OpenStack-API-Version` (`compute`, `volume`).
    pub service: &'static str,
    pub major: u16,
    pub min: Version,
    pub max: Version,
    /// An older header carrying the bare version (`X-OpenStack-Nova-API-Version`).
    pub legacy: Option<&'static str>,
    /// The `Vary` value: the headers that select the version.
    pub vary: &'static str,
}

const MODERN: &str = "openstack-api-version";

impl Scheme {
    pub fn text(&self, version: Version) -> String {
        format!("{}.{}", self.major, version.0)
    }

    /// The version asked for, `None` for the default (the minimum).
    pub fn requested(&self, headers: &HeaderMap) -> Result<Option<Version>, ApiError> {
        let modern = headers
            .get_all(MODERN)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|item| {
                let mut words = item.split_whitespace();
                (words.next()?.eq_ignore_ascii_case(self.service))
                    .then(|| words.next().unwrap_or(""))
            });
        let legacy = || {
            self.legacy
                .and_then(|name| headers.get(name))
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
        };
        let Some(text) = modern.map(str::to_owned).or_else(legacy) else {
            return Ok(None);
        };
        if text.eq_ignore_ascii_case("latest") {
            return Ok(Some(self.max));
        }
        let invalid = || {
            ApiError::bad_request(format!(
                "Invalid API version request string: {text}. It must be of the form {}.N or 'latest'.",
                self.major
            ))
        };
        let (major, minor) = text.split_once('.').ok_or_else(invalid)?;
        let major: u16 = major.parse().map_err(|_| invalid())?;
        let version = Version(minor.parse().map_err(|_| invalid())?);
        if major != self.major || version < self.min || version > self.max {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "Version {text} is not supported by the API. Minimum is {} and maximum is {}.",
                    self.text(self.min),
                    self.text(self.max)
                ),
            ));
        }
        Ok(Some(version))
    }

    /// Middleware body: resolves the version, refuses unsupported ones and echoes the
    /// version served. Mount with `middleware::from_fn(|r, n| SCHEME.negotiate(r, n))`.
    pub async fn negotiate(&'static self, mut request: Request, next: Next) -> Response {
        let version = match self.requested(request.headers()) {
            Ok(v) => v.unwrap_or(self.min),
            Err(error) => return self.echo(error.into_response(), self.min),
        };
        request.extensions_mut().insert(version);
        self.echo(next.run(request).await, version)
    }

    fn echo(&self, mut response: Response, version: Version) -> Response {
        let headers = response.headers_mut();
        let text = self.text(version);
        if let Ok(v) = HeaderValue::from_str(&format!("{} {text}", self.service)) {
            headers.insert(MODERN, v);
        }
        if let Some(name) = self.legacy
            && let Ok(v) = HeaderValue::from_str(&text)
        {
            headers.insert(name, v);
        }
        headers.insert(http::header::VARY, HeaderValue::from_static(self.vary));
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Version {
    type Rejection = ApiError;

    /// The version the service's [`Scheme::negotiate`] layer resolved.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Version>()
            .copied()
            .ok_or_else(|| ApiError::internal("no microversion layer on this route"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOLUME: Scheme = Scheme {
        service: "volume",
        major: 3,
        min: Version(0),
        max: Version(70),
        legacy: None,
        vary: "OpenStack-API-Version",
    };
    const COMPUTE: Scheme = Scheme {
        service: "compute",
        major: 2,
        min: Version(1),
        max: Version(90),
        legacy: Some("x-openstack-nova-api-version"),
        vary: "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    };

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_the_services_own_word_legacy_headers_and_latest() {
        let mixed = headers(&[(MODERN, "volume 3.5, compute 2.60")]);
        assert_eq!(VOLUME.requested(&mixed).ok(), Some(Some(Version(5))));
        assert_eq!(COMPUTE.requested(&mixed).ok(), Some(Some(Version(60))));
        let legacy = headers(&[("x-openstack-nova-api-version", "2.10")]);
        assert_eq!(COMPUTE.requested(&legacy).ok(), Some(Some(Version(10))));
        assert_eq!(VOLUME.requested(&legacy).ok(), Some(None));
        let latest = headers(&[(MODERN, "volume latest")]);
        assert_eq!(VOLUME.requested(&latest).ok(), Some(Some(VOLUME.max)));
    }

    #[test]
    fn refuses_malformed_and_unsupported_versions() {
        let bad = VOLUME.requested(&headers(&[(MODERN, "volume three")]));
        assert_eq!(bad.unwrap_err().status, StatusCode::BAD_REQUEST);
        let high = VOLUME.requested(&headers(&[(MODERN, "volume 3.999")]));
        assert_eq!(high.unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
        let major = VOLUME.requested(&headers(&[(MODERN, "volume 2.1")]));
        assert_eq!(major.unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
    }
}
