//! Password and secret hashing. bcrypt (Keystone's default) runs on the blocking pool so
//! that a 250 ms hash never stalls the async workers and token issue uses every core.

use std::sync::OnceLock;

use http::StatusCode;
use onestack_api::ApiError;
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

/// A queue for bcrypt work: at most `permits` checks run at once (bcrypt is pure CPU: more
/// than there are cores only adds context switches), and at most `max_waiting` wait. Past
/// that, a check is refused at once instead of queueing without bound, so a flood of
/// logins costs the attacker as much as it costs us and memory stays bounded. Places in the
/// queue are semaphore permits, so a request dropped while it waits (a client that hung up)
/// gives its place back.
struct Lane {
    running: Semaphore,
    places: Semaphore,
}

impl Lane {
    fn new(permits: usize, max_waiting: usize) -> Self {
        Self {
            running: Semaphore::new(permits),
            places: Semaphore::new(permits + max_waiting),
        }
    }

    /// Runs `work` on the blocking pool when a permit is free; `None` when the queue is full.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _place = self.places.try_acquire().ok()?;
        let _running = self.running.acquire().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Hashes and checks against a real hash: every core, a queue of 64 per core.
fn known_lane() -> &'static Lane {
    static LANE: OnceLock<Lane> = OnceLock::new();
    LANE.get_or_init(|| Lane::new(cores(), 64 * cores()))
}

/// The stand-in checks for unknown users and users without a password: one core at most,
/// so a flood of made-up names cannot starve real logins. When its queue is full the answer
/// is the same 503 a full queue of real checks gives, so it does not tell that a name does
/// not exist.
fn unknown_lane() -> &'static Lane {
    static LANE: OnceLock<Lane> = OnceLock::new();
    LANE.get_or_init(|| Lane::new(1, 64))
}

fn overloaded() -> Error {
    Error::Api(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many password checks are queued; retry in a moment.",
    ))
}

pub async fn hash(password: String, cost: u32) -> Result<String> {
    check_length(&password)?;
    known_lane()
        .run(move || bcrypt::hash(password, cost))
        .await
        .ok_or_else(overloaded)?
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Whether `password` matches `hash`. With no hash (unknown user, no password set) it
/// still spends the time of one check, so timing does not tell whether the user exists.
/// Fails with 503 when the checks of real hashes are queued past their bound.
pub async fn verify(password: String, hash: Option<String>, cost: u32) -> Result<bool> {
    // Our own generated secrets are checked in a microsecond: no need to queue for a core.
    if let Some(stored) = hash.as_deref().filter(|h| h.starts_with("$sha256$")) {
        return Ok(verify_fast(&password, stored));
    }
    match hash {
        Some(hash) if hash.starts_with("$2") => known_lane()
            .run(move || bcrypt::verify(&password, &hash).unwrap_or(false))
            .await
            .ok_or_else(overloaded),
        _ => {
            unknown_lane()
                .run(move || {
                    // Only the time it takes matters: no user, no match.
                    let _ = bcrypt::verify(&password, dummy_hash(cost));
                })
                .await
                .ok_or_else(overloaded)?;
            Ok(false)
        }
    }
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
        assert!(verify("secret".into(), Some(h.clone()), 4).await.unwrap());
        assert!(!verify("wrong".into(), Some(h), 4).await.unwrap());
        assert!(!verify("secret".into(), None, 4).await.unwrap());
    }

    #[tokio::test]
    async fn verifies_a_keystone_bcrypt_hash() {
        // Made by Python's bcrypt (Keystone's hasher) for the password "password".
        let h = "$2b$04$KdyR0uFeP2z6yvnZJmH8lONSH0I6s.gyVqj30HhRhgDzC51jgFXTm".to_owned();
        assert!(verify("password".into(), Some(h), 4).await.unwrap());
    }

    #[tokio::test]
    async fn fast_hash_round_trip() {
        let secret = generate_secret();
        let h = hash_fast(&secret);
        assert!(verify(secret.clone(), Some(h.clone()), 4).await.unwrap());
        assert!(!verify(format!("{secret}x"), Some(h), 4).await.unwrap());
    }

    /// A flood of checks for made-up users neither queues without bound nor takes the
    /// cores from real logins: past its bound it is refused at once (503), and a real check
    /// still runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_user_floods_are_bounded_and_do_not_starve_real_logins() {
        let cost = 8;
        let h = hash("secret".into(), cost).await.unwrap();
        let flood: Vec<_> = (0..400)
            .map(|_| tokio::spawn(verify("guess".into(), None, cost)))
            .collect();
        tokio::task::yield_now().await;
        assert!(verify("secret".into(), Some(h), cost).await.unwrap());
        // Starved, the real check would end after every stand-in check; on its own core it
        // ends while most of them still wait. Counted, not timed: a loaded machine slows
        // both alike.
        let still_waiting = flood.iter().filter(|f| !f.is_finished()).count();
        let (mut failed, mut refused) = (0, 0);
        for f in flood {
            match f.await.unwrap() {
                Ok(matched) => {
                    assert!(!matched);
                    failed += 1;
                }
                Err(_) => refused += 1,
            }
        }
        // One running and 64 waiting at most: the rest were turned away.
        assert!(failed <= 65 + 1, "{failed} stand-in checks ran");
        assert_eq!(failed + refused, 400);
        assert!(
            still_waiting > failed / 2,
            "the real check ended after {} of {failed} stand-in checks",
            failed.saturating_sub(still_waiting)
        );
    }

    /// Keeps `lane`'s one running slot busy until something is sent on the returned sender.
    async fn occupy(
        lane: &std::sync::Arc<Lane>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Option<bool>>,
    ) {
        let (hold, release) = std::sync::mpsc::channel::<()>();
        let busy = {
            let lane = lane.clone();
            tokio::spawn(async move { lane.run(move || release.recv().is_ok()).await })
        };
        while lane.running.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        (hold, busy)
    }

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_waiting() {
        let lane = std::sync::Arc::new(Lane::new(1, 0));
        let (hold, busy) = occupy(&lane).await;
        assert_eq!(lane.run(|| 1).await, None);
        hold.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Some(true));
        assert_eq!(lane.run(|| 2).await, Some(2));
    }

    /// A request dropped while it waits (its client hung up) gives its place back: hanging
    /// up in a loop cannot fill the queue for good.
    #[tokio::test]
    async fn a_cancelled_wait_gives_its_place_back() {
        let lane = std::sync::Arc::new(Lane::new(1, 1));
        let (hold, busy) = occupy(&lane).await;
        for _ in 0..10 {
            let waited =
                tokio::time::timeout(std::time::Duration::from_millis(5), lane.run(|| 3)).await;
            assert!(waited.is_err(), "it waited, then was dropped");
        }
        assert_eq!(lane.places.available_permits(), 1);
        hold.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Some(true));
        assert_eq!(lane.run(|| 4).await, Some(4));
    }

    #[test]
    fn refuses_passwords_bcrypt_would_truncate() {
        assert!(check_length(&"x".repeat(72)).is_ok());
        assert!(check_length(&"x".repeat(73)).is_err());
    }
}
