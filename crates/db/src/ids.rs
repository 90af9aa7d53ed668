//! New resource ids, in the two forms the OpenStack APIs use.

/// A random UUID in its hyphenated form (Nova, Neutron, Glance ids).
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random UUID as 32 hex digits (Keystone ids).
pub fn hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A UUID-shaped id that is the same for the same parts on every host and every build (a
/// host's service record, a network agent): SHA-256 over the parts, marked as a custom
/// (version 8) UUID.
pub fn stable_uuid(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_uuids_depend_on_every_part_and_its_bounds() {
        let a = super::stable_uuid(&["host-1", "service"]);
        assert_eq!(a, super::stable_uuid(&["host-1", "service"]));
        assert_ne!(a, super::stable_uuid(&["host-1", "hypervisor"]));
        assert_ne!(
            super::stable_uuid(&["ab", "c"]),
            super::stable_uuid(&["a", "bc"])
        );
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
