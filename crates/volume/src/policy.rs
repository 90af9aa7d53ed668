//! Who may do what, following Cinder's default (secure RBAC) policy: admins everything;
//! project members manage their project's volumes; readers only read; volume types,
//! quotas and status resets are the cloud admin's.

pub use onestack_api::Caller;
