//! Fernet (AES-128-CBC + HMAC-SHA256), the token format Keystone uses, with Keystone's key
//! repository layout: files named by integer, `0` the staged key, the highest the primary.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type Encryptor = cbc::Encryptor<aes::Aes128>;
type Decryptor = cbc::Decryptor<aes::Aes128>;
type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 0x80;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key repository {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("key repository {0} has no valid keys; run `onestack token-keys setup`")]
    Empty(String),
    #[error("key file {0} is not a 32-byte urlsafe base64 Fernet key")]
    BadKey(String),
}

/// One Fernet key: 16 bytes for signing, 16 for encryption.
#[derive(Clone)]
pub struct Key {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl Key {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        signing.copy_from_slice(&bytes[..16]);
        encryption.copy_from_slice(&bytes[16..]);
        Self {
            signing,
            encryption,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let bytes = URL_SAFE.decode(text.trim()).ok()?;
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        Some(Self::from_bytes(&bytes))
    }

    fn encode(&self) -> String {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&self.signing);
        bytes[16..].copy_from_slice(&self.encryption);
        URL_SAFE.encode(bytes)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.signing).expect("HMAC takes any key length")
    }

    fn encrypt_at(&self, plaintext: &[u8], timestamp: u64, iv: [u8; 16]) -> String {
        let ciphertext = Encryptor::new(&self.encryption.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut token = Vec::with_capacity(1 + 8 + 16 + ciphertext.len() + 32);
        token.push(VERSION);
        token.extend_from_slice(&timestamp.to_be_bytes());
        token.extend_from_slice(&iv);
        token.extend_from_slice(&ciphertext);
        let mut mac = self.mac();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(token)
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let mut iv = [0u8; 16];
        rand::rng().fill_bytes(&mut iv);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.encrypt_at(plaintext, now, iv)
    }

    /// The plaintext, if the token was made with this key and is intact.
    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
        if raw.len() < 1 + 8 + 16 + 16 + 32 || raw[0] != VERSION {
            return None;
        }
        let (signed, tag) = raw.split_at(raw.len() - 32);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag).ok()?;
        let iv: [u8; 16] = signed[9..25].try_into().ok()?;
        Decryptor::new(&self.encryption.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&signed[25..])
            .ok()
    }
}

/// The keys of a repository: the primary encrypts, all of them decrypt.
#[derive(Clone)]
pub struct KeySet {
    /// Highest index first; the first is the primary.
    keys: Vec<Key>,
}

impl KeySet {
    pub fn primary(&self) -> &Key {
        &self.keys[0]
    }

    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        self.keys.iter().find_map(|k| k.decrypt(token))
    }
}

/// A directory of Fernet keys named `0..N`.
#[derive(Debug, Clone)]
pub struct KeyRepository {
    dir: PathBuf,
}

fn io_error(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl KeyRepository {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn indexes(&self) -> Result<Vec<u64>, KeyError> {
        let mut indexes: Vec<u64> = fs::read_dir(&self.dir)
            .map_err(|e| io_error(&self.dir, e))?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        indexes.sort_unstable();
        Ok(indexes)
    }

    fn write_key(&self, index: u64) -> Result<(), KeyError> {
        let path = self.dir.join(index.to_string());
        let tmp = self.dir.join(format!(".{index}.tmp"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, e))?;
        file.write_all(Key::generate().encode().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))
    }

    /// Creates the repository with a staged and a primary key unless it has keys already.
    pub fn setup(&self) -> Result<bool, KeyError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(&self.dir, e))?;
        if !self.indexes()?.is_empty() {
            return Ok(false);
        }
        self.write_key(0)?;
        self.write_key(1)?;
        Ok(true)
    }

    /// Keystone's rotation: the staged key becomes the new primary, a new staged key is
    /// made, and the oldest secondaries beyond `max_active` are removed.
    pub fn rotate(&self, max_active: usize) -> Result<u64, KeyError> {
        let indexes = self.indexes()?;
        let next = indexes.last().copied().unwrap_or(0) + 1;
        let staged = self.dir.join("0");
        if staged.exists() {
            fs::rename(&staged, self.dir.join(next.to_string()))
                .map_err(|e| io_error(&staged, e))?;
        }
        self.write_key(0)?;
        let mut remaining: Vec<u64> = self.indexes()?.into_iter().filter(|i| *i != 0).collect();
        while remaining.len() + 1 > max_active.max(2) {
            let oldest = remaining.remove(0);
            let path = self.dir.join(oldest.to_string());
            fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
        }
        Ok(next)
    }

    pub fn load(&self) -> Result<KeySet, KeyError> {
        let mut keys = Vec::new();
        for index in self.indexes()?.into_iter().rev() {
            let path = self.dir.join(index.to_string());
            let text = fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
            keys.push(
                Key::parse(&text).ok_or_else(|| KeyError::BadKey(path.display().to_string()))?,
            );
        }
        if keys.is_empty() {
            return Err(KeyError::Empty(self.dir.display().to_string()));
        }
        Ok(KeySet { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pythons_cryptography_fernet() {
        // Produced by Python's cryptography 48 `Fernet._encrypt_from_parts` with these inputs.
        let key = Key::parse("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").unwrap();
        let iv: [u8; 16] = (0..16).collect::<Vec<u8>>().try_into().unwrap();
        let expected = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
        assert_eq!(
            key.encrypt_at(b"hello", 499162800, iv),
            expected.trim_end_matches('=')
        );
        assert_eq!(key.decrypt(expected).unwrap(), b"hello");
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let key = Key::generate();
        let token = key.encrypt(b"payload");
        assert_eq!(key.decrypt(&token).unwrap(), b"payload");
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 5;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            key.decrypt(std::str::from_utf8(&tampered).unwrap())
                .is_none()
        );
        assert!(Key::generate().decrypt(&token).is_none());
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path().join("keys"));
        assert!(repo.setup().unwrap());
        assert!(!repo.setup().unwrap());
        let token = repo.load().unwrap().primary().encrypt(b"t");
        repo.rotate(3).unwrap();
        assert_eq!(repo.load().unwrap().decrypt(&token).unwrap(), b"t");
        repo.rotate(3).unwrap();
        repo.rotate(3).unwrap();
        assert!(repo.load().unwrap().decrypt(&token).is_none());
        assert_eq!(repo.indexes().unwrap().len(), 3);
    }
}
