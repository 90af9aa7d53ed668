//! New resource ids, in the two forms the OpenStack APIs use.

/// A random UUID in its hyphenated form (Nova, Neutron, Glance ids).
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random UUID as 32 hex digits (Keystone ids).
pub fn hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
