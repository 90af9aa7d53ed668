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
    /// A regular expression every new password must match; empty accepts any (Keystone's
    /// `[security_compliance] password_regex`).
    pub password_regex: String,
    /// What `password_regex` asks for, in words, for the 400 that refuses a password.
    pub password_regex_description: String,
    /// A new password must differ from this many passwords, itself included (the current
    /// one and the ones before); 0 or 1 turns the history off (`unique_last_password_count`).
    pub unique_last_password_count: u32,
    /// Days a password lasts before it must be changed; 0 never expires
    /// (`password_expires_days`).
    pub password_expires_days: u32,
    /// Days a user must keep a password before changing it themselves; 0 any time
    /// (`minimum_password_age`). Admins may always set one.
    pub minimum_password_age: u32,
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
            password_regex: String::new(),
            password_regex_description: String::new(),
            unique_last_password_count: 0,
            password_expires_days: 0,
            minimum_password_age: 0,
            max_active_keys: 3,
            max_request_body_size: 114_688,
        }
    }
}
