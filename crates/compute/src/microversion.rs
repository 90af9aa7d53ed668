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
