//! SSH public keys: validation, Nova's MD5 fingerprint, and generating a keypair for
//! clients that ask Nova to (microversions before 2.92).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};

use crate::error::{Error, Result};

const KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

fn invalid() -> Error {
    Error::BadRequest("Keypair data is invalid: failed to generate fingerprint".into())
}

/// Checks an OpenSSH public key line and returns its fingerprint (`aa:bb:...`, MD5 of the
/// key blob, as Nova reports it).
pub fn fingerprint(public_key: &str) -> Result<String> {
    let mut words = public_key.split_whitespace();
    let kind = words.next().ok_or_else(invalid)?;
    let blob = words.next().ok_or_else(invalid)?;
    if !KEY_TYPES.contains(&kind) {
        return Err(invalid());
    }
    let blob = STANDARD.decode(blob).map_err(|_| invalid())?;
    // The blob starts with the key type as an SSH string: a u32 length, then the bytes.
    let len = blob
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(invalid)?;
    if blob.get(4..4 + len) != Some(kind.as_bytes()) {
        return Err(invalid());
    }
    let digest = Md5::digest(&blob);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// A new keypair: (private key in OpenSSH format, public key line), made by `ssh-keygen`.
pub async fn generate(comment: &str) -> Result<(String, String)> {
    let dir = std::env::temp_dir().join(format!("onestack-key-{}", uuid::Uuid::new_v4()));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let path = dir.join("key");
    #[expect(
        clippy::disallowed_methods,
        reason = "OpenSSH's own key generator: its private key format is what clients load"
    )]
    let outcome = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .output()
        .await;
    let result = match outcome {
        Ok(out) if out.status.success() => {
            let private = tokio::fs::read_to_string(&path).await;
            let public = tokio::fs::read_to_string(path.with_extension("pub")).await;
            match (private, public) {
                (Ok(private), Ok(public)) => Ok((private, public.trim().to_owned())),
                _ => Err(Error::Internal("ssh-keygen wrote no key".into())),
            }
        }
        Ok(out) => Err(Error::Internal(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))),
        Err(e) => Err(Error::Internal(format!(
            "cannot run ssh-keygen (install openssh-client): {e}"
        ))),
    };
    let _ = tokio::fs::remove_dir_all(&dir).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_a_valid_key_and_refuses_garbage() {
        // ssh-ed25519 key blob: "ssh-ed25519" + 32 zero bytes.
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[0u8; 32]);
        let key = format!("ssh-ed25519 {} me@host", STANDARD.encode(&blob));
        let fp = fingerprint(&key).unwrap();
        assert_eq!(fp.len(), 47);
        assert!(fingerprint("ssh-rsa notbase64!").is_err());
        assert!(fingerprint("bogus AAAA").is_err());
        // Type word and blob type disagree.
        let lie = format!("ssh-rsa {}", STANDARD.encode(&blob));
        assert!(fingerprint(&lie).is_err());
    }
}
