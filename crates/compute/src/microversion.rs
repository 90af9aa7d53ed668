//! Compute API microversions: `OpenStack-API-Version: compute 2.X` or the legacy
//! `X-OpenStack-Nova-API-Version: 2.X`, negotiated by the shared [`Scheme`] (400 malformed,
//! 406 outside 2.1–2.90, echoed with `Vary`); handlers get a [`Version`].

use onestack_api::microversion::Scheme;
pub use onestack_api::microversion::Version;

/// The highest version whose behaviour is served completely (2.90: `hostname` on create).
pub static SCHEME: Scheme = Scheme {
    service: "compute",
    major: 2,
    min: Version(1),
    max: Version(90),
    legacy: Some("x-openstack-nova-api-version"),
    vary: "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
};

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, StatusCode};

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
        let modern = "openstack-api-version";
        let legacy = "x-openstack-nova-api-version";
        assert_eq!(SCHEME.requested(&headers(&[])).ok(), Some(None));
        assert_eq!(
            SCHEME.requested(&headers(&[(modern, "compute 2.47")])).ok(),
            Some(Some(Version(47)))
        );
        assert_eq!(
            SCHEME.requested(&headers(&[(legacy, "2.10")])).ok(),
            Some(Some(Version(10)))
        );
        assert_eq!(
            SCHEME
                .requested(&headers(&[(modern, "compute latest")]))
                .ok(),
            Some(Some(SCHEME.max))
        );
        let major = SCHEME.requested(&headers(&[(legacy, "3.1")])).unwrap_err();
        assert_eq!(major.status, StatusCode::NOT_ACCEPTABLE);
    }
}
