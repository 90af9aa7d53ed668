//! Identity settings, as the `[identity]` section of the config file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Token lifetime in seconds (Keystone's `[token] expiration`).
    pub token_expiration: u64,
    /// bcrypt cost for new password hashes (Keystone's `password_hash_rounds`).
    pub password_hash_rounds: u32,
    /// Failed password attempts before a user is locked out; 0 disables lockout
    /// (Keystone's `lockout_failure_attempts`).
    pub lockout_failure_attempts: u32,
    /// Seconds a locked-out user stays locked (Keystone's `lockout_duration`).
    pub lockout_duration: u64,
    /// Fernet keys kept by `onestack token-keys rotate`: staged + primary + secondaries.
    pub max_active_keys: usize,
    /// Largest accepted request body, in bytes (Keystone's `max_request_body_size`).
    pub max_request_body_size: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            token_expiration: 3600,
            password_hash_rounds: 12,
            lockout_failure_attempts: 0,
            lockout_duration: 1800,
            max_active_keys: 3,
            max_request_body_size: 114_688,
        }
    }
}
