//! Stateless tokens: a msgpack payload sealed with Fernet. Nothing is stored per token;
//! revocation works through revocation events and by re-checking the user, scope and roles
//! at validation.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::fernet::{KeyError, KeyRepository, KeySet};

/// Authentication methods, as a bit set in the payload.
pub const METHODS: [&str; 3] = ["password", "token", "application_credential"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenScope {
    Unscoped,
    Project(String),
    Domain(String),
    System,
}

/// What a token says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub version: u8,
    pub user_id: String,
    pub methods: u8,
    pub scope: TokenScope,
    /// Microseconds since the epoch.
    pub issued_at: i64,
    pub expires_at: i64,
    /// This token's audit id first, then the one of the token it was re-scoped from.
    pub audit_ids: Vec<String>,
    pub application_credential_id: Option<String>,
}

impl Payload {
    pub fn method_names(&self) -> Vec<&'static str> {
        METHODS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.methods & (1 << i) != 0)
            .map(|(_, m)| *m)
            .collect()
    }

    pub fn method_bit(name: &str) -> u8 {
        METHODS
            .iter()
            .position(|m| *m == name)
            .map(|i| 1 << i)
            .unwrap_or(0)
    }
}

pub fn new_audit_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seals and opens tokens with the keys of a repository, picking up rotations made by
/// `onestack token-keys rotate` while the server runs.
pub struct TokenSealer {
    repository: KeyRepository,
    keys: RwLock<(Option<SystemTime>, KeySet)>,
}

impl TokenSealer {
    pub fn open(dir: PathBuf) -> Result<Self, KeyError> {
        let repository = KeyRepository::new(dir);
        repository.setup()?;
        let keys = repository.load()?;
        let stamp = Self::stamp(&repository);
        Ok(Self {
            repository,
            keys: RwLock::new((stamp, keys)),
        })
    }

    fn stamp(repository: &KeyRepository) -> Option<SystemTime> {
        std::fs::metadata(repository.dir())
            .and_then(|m| m.modified())
            .ok()
    }

    /// The current key set, reloaded when the repository directory changed.
    fn keys(&self) -> KeySet {
        let stamp = Self::stamp(&self.repository);
        if let Ok(guard) = self.keys.read()
            && guard.0 == stamp
        {
            return guard.1.clone();
        }
        match self.repository.load() {
            Ok(keys) => {
                if let Ok(mut guard) = self.keys.write() {
                    *guard = (stamp, keys.clone());
                }
                keys
            }
            Err(error) => {
                tracing::error!(%error, "cannot reload token keys; keeping the loaded ones");
                self.keys
                    .read()
                    .map(|g| g.1.clone())
                    .unwrap_or_else(|p| p.into_inner().1.clone())
            }
        }
    }

    pub fn seal(&self, payload: &Payload) -> String {
        // Serializing a plain struct to msgpack cannot fail.
        let bytes = rmp_serde::to_vec(payload).unwrap_or_default();
        self.keys().primary().encrypt(&bytes)
    }

    /// The payload of an intact token made with one of our keys, expired or not.
    pub fn unseal(&self, token: &str) -> Option<Payload> {
        if token.len() > 1024 {
            return None;
        }
        let bytes = self.keys().decrypt(token)?;
        let payload: Payload = rmp_serde::from_slice(&bytes).ok()?;
        (payload.version == 1).then_some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_unseals() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = TokenSealer::open(dir.path().join("k")).unwrap();
        let payload = Payload {
            version: 1,
            user_id: "u".into(),
            methods: Payload::method_bit("password") | Payload::method_bit("token"),
            scope: TokenScope::Project("p".into()),
            issued_at: 1,
            expires_at: 2,
            audit_ids: vec![new_audit_id()],
            application_credential_id: None,
        };
        let token = sealer.seal(&payload);
        assert!(token.len() < 300, "{}", token.len());
        let back = sealer.unseal(&token).unwrap();
        assert_eq!(back, payload);
        assert_eq!(back.method_names(), vec!["password", "token"]);
        assert!(sealer.unseal("garbage").is_none());
    }
}
