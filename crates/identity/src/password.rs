//! Password and secret hashing. bcrypt (Keystone's default) runs on the blocking pool so
//! that a 250 ms hash never stalls the async workers and token issue uses every core.

use std::sync::OnceLock;

use tokio::sync::Semaphore;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

pub fn check_length(password: &str) -> Result<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::validation(format!(
            "Invalid input for field 'password': it is longer than {MAX_PASSWORD_BYTES} bytes."
        )));
    }
    Ok(())
}

/// bcrypt is pure CPU: running more at once than there are cores only adds context switches
/// and evicts each other's Blowfish state from the caches, so the checks queue here instead.
fn cpu_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

pub async fn hash(password: String, cost: u32) -> Result<String> {
    check_length(&password)?;
    let _permit = cpu_permits()
        .acquire()
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Whether `password` matches `hash`. With no hash (unknown user, no password set) it
/// still spends the time of one check, so timing does not tell whether the user exists.
pub async fn verify(password: String, hash: Option<String>, cost: u32) -> bool {
    // Our own generated secrets are checked in a microsecond: no need to queue for a core.
    if let Some(stored) = hash.as_deref().filter(|h| h.starts_with("$sha256$")) {
        return verify_fast(&password, stored);
    }
    let Ok(_permit) = cpu_permits().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) if hash.starts_with("$2") => bcrypt::verify(&password, &hash).unwrap_or(false),
        Some(hash) if hash.starts_with("$sha256$") => verify_fast(&password, &hash),
        _ => {
            let _ = bcrypt::verify(&password, dummy_hash(cost));
            false
        }
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash(cost: u32) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| bcrypt::hash("onestack-no-such-user", cost).unwrap_or_default())
}

/// A random secret of 64 bytes, as Keystone generates application credential secrets.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Salted SHA-256, for secrets onestack generated itself: with 512 bits of entropy a slow
/// hash adds nothing, and application-credential auth stays fast.
pub fn hash_fast(secret: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = hex::encode(salt);
    format!(
        "$sha256${salt}${}",
        hex::encode(Sha256::digest(format!("{salt}{secret}")))
    )
}

fn verify_fast(secret: &str, stored: &str) -> bool {
    let mut parts = stored.trim_start_matches("$sha256$").splitn(2, '$');
    let (Some(salt), Some(digest)) = (parts.next(), parts.next()) else {
        return false;
    };
    let actual = hex::encode(Sha256::digest(format!("{salt}{secret}")));
    // Constant-time comparison of equal-length hex strings.
    actual.len() == digest.len()
        && actual
            .bytes()
            .zip(digest.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bcrypt_round_trip() {
        let h = hash("secret".into(), 4).await.unwrap();
        assert!(h.starts_with("$2b$04$"));
        assert!(verify("secret".into(), Some(h.clone()), 4).await);
        assert!(!verify("wrong".into(), Some(h), 4).await);
        assert!(!verify("secret".into(), None, 4).await);
    }

    #[tokio::test]
    async fn verifies_a_keystone_bcrypt_hash() {
        // Made by Python's bcrypt (Keystone's hasher) for the password "password".
        let h = "$2b$04$KdyR0uFeP2z6yvnZJmH8lONSH0I6s.gyVqj30HhRhgDzC51jgFXTm".to_owned();
        assert!(verify("password".into(), Some(h), 4).await);
    }

    #[tokio::test]
    async fn fast_hash_round_trip() {
        let secret = generate_secret();
        let h = hash_fast(&secret);
        assert!(verify(secret.clone(), Some(h.clone()), 4).await);
        assert!(!verify(format!("{secret}x"), Some(h), 4).await);
    }

    #[test]
    fn refuses_passwords_bcrypt_would_truncate() {
        assert!(check_length(&"x".repeat(72)).is_ok());
        assert!(check_length(&"x".repeat(73)).is_err());
    }
}
