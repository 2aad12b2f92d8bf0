//! Secret values at rest (data-and-lifecycle §4.6): AES-256-GCM with a
//! random 12-byte nonce and no AAD, stored as `nonce ‖ ciphertext ‖ tag`
//! with `encryption_version = 1`; plaintext with version 0 when the
//! platform runs without a key (development only).
//!
//! [`Sealed`] can only be made by [`SecretBox::seal`], which returns the
//! bytes together with the version describing them, so a stored value's
//! version always matches its bytes (the reference's org import wrote
//! ciphertext with version 0). Values never reach logs: [`SecretsKey`] and
//! [`Sealed`] have redacting `Debug` impls.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

pub const VERSION_PLAINTEXT: i32 = 0;
pub const VERSION_AES_GCM: i32 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The 32-byte key from `SECRETS_ENCRYPTION_KEY`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretsKey([u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The reference's rule: standard base64 that decodes must decode to
    /// exactly 32 bytes; text that is not base64 is used raw if it is 32
    /// bytes long. Anything else is an error (the reference silently ran
    /// without encryption).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        match base64::engine::general_purpose::STANDARD.decode(raw) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
                .map(Self)
                .map_err(|_| {
                    format!(
                        "SECRETS_ENCRYPTION_KEY decodes as base64 to {} bytes; it must be 32 bytes \
                     (e.g. `openssl rand -base64 32`)",
                        bytes.len()
                    )
                }),
            Err(_) => <[u8; 32]>::try_from(raw.as_bytes()).map(Self).map_err(|_| {
                "SECRETS_ENCRYPTION_KEY must be 32 bytes, base64-encoded (e.g. `openssl rand \
                 -base64 32`) or raw"
                    .to_string()
            }),
        }
    }
}

/// A value ready to store: bytes and the format they are in.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    bytes: Vec<u8>,
    version: i32,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed(v{}, {} bytes)", self.version, self.bytes.len())
    }
}

impl Sealed {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn version(&self) -> i32 {
        self.version
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("value is encrypted but the platform has no SECRETS_ENCRYPTION_KEY")]
    NoKey,
    #[error("decryption failed (wrong SECRETS_ENCRYPTION_KEY or tampered value)")]
    Decrypt,
    #[error("encrypted value is truncated")]
    Truncated,
    #[error("unknown encryption_version {0}")]
    UnknownVersion(i32),
    #[error("value is not valid UTF-8")]
    NotUtf8,
}

/// Seals and opens secret values with the platform's key, if any.
#[derive(Clone, Debug, Default)]
pub struct SecretBox {
    key: Option<SecretsKey>,
}

impl SecretBox {
    pub fn new(key: Option<SecretsKey>) -> Self {
        Self { key }
    }

    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    pub fn seal(&self, plaintext: &str) -> Sealed {
        let Some(key) = &self.key else {
            return Sealed {
                bytes: plaintext.as_bytes().to_vec(),
                version: VERSION_PLAINTEXT,
            };
        };
        let cipher = Aes256Gcm::new((&key.0).into());
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        // Encryption with a valid key and an in-memory buffer cannot fail.
        let ct = cipher
            .encrypt(&Nonce::from(nonce_bytes), plaintext.as_bytes())
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_LEN + ct.len());
        bytes.extend_from_slice(&nonce_bytes);
        bytes.extend_from_slice(&ct);
        Sealed {
            bytes,
            version: VERSION_AES_GCM,
        }
    }

    /// Open stored bytes according to their version.
    pub fn open(&self, bytes: &[u8], version: i32) -> Result<String, OpenError> {
        let plain = match version {
            VERSION_PLAINTEXT => bytes.to_vec(),
            VERSION_AES_GCM => {
                let key = self.key.as_ref().ok_or(OpenError::NoKey)?;
                if bytes.len() < NONCE_LEN + TAG_LEN {
                    return Err(OpenError::Truncated);
                }
                let (nonce, ct) = bytes.split_at(NONCE_LEN);
                let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Truncated)?;
                Aes256Gcm::new((&key.0).into())
                    .decrypt(&Nonce::from(nonce), ct)
                    .map_err(|_| OpenError::Decrypt)?
            }
            other => return Err(OpenError::UnknownVersion(other)),
        };
        String::from_utf8(plain).map_err(|_| OpenError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(b: u8) -> SecretBox {
        SecretBox::new(Some(SecretsKey::from_bytes([b; 32])))
    }

    #[test]
    fn round_trip_with_a_key_is_version_1_and_not_plaintext() {
        let b = boxed(7);
        let s = b.seal("sk-live-123");
        assert_eq!(s.version(), VERSION_AES_GCM);
        assert_eq!(s.bytes().len(), NONCE_LEN + "sk-live-123".len() + TAG_LEN);
        assert!(!s.bytes().windows(11).any(|w| w == b"sk-live-123"));
        assert_eq!(b.open(s.bytes(), s.version()).unwrap(), "sk-live-123");
        // Fresh nonce every time.
        assert_ne!(b.seal("x").bytes(), b.seal("x").bytes());
    }

    #[test]
    fn without_a_key_values_are_version_0_plaintext() {
        let b = SecretBox::new(None);
        let s = b.seal("plain");
        assert_eq!((s.bytes(), s.version()), (&b"plain"[..], VERSION_PLAINTEXT));
        assert_eq!(b.open(b"plain", 0).unwrap(), "plain");
        // A keyed platform still reads version-0 rows as they are.
        assert_eq!(boxed(1).open(b"plain", 0).unwrap(), "plain");
    }

    #[test]
    fn wrong_key_tampering_and_bad_versions_fail_loudly() {
        let s = boxed(1).seal("secret");
        assert_eq!(boxed(2).open(s.bytes(), 1), Err(OpenError::Decrypt));
        assert_eq!(
            SecretBox::new(None).open(s.bytes(), 1),
            Err(OpenError::NoKey)
        );
        for i in 0..s.bytes().len() {
            let mut t = s.bytes().to_vec();
            t[i] ^= 0x01;
            assert_eq!(boxed(1).open(&t, 1), Err(OpenError::Decrypt), "byte {i}");
        }
        assert_eq!(
            boxed(1).open(&s.bytes()[..20], 1),
            Err(OpenError::Truncated)
        );
        assert_eq!(
            boxed(1).open(s.bytes(), 2),
            Err(OpenError::UnknownVersion(2))
        );
    }

    #[test]
    fn key_parsing_follows_the_reference_rule() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert_eq!(
            SecretsKey::parse(&b64).unwrap(),
            SecretsKey::from_bytes([9; 32])
        );
        // 32 raw characters that are not base64.
        assert!(SecretsKey::parse("this-is-a-32-byte-raw-key-!!!!!!").is_ok());
        // Base64 of the wrong length, and short raw text, are rejected.
        assert!(
            SecretsKey::parse(&base64::engine::general_purpose::STANDARD.encode([1u8; 16]))
                .is_err()
        );
        assert!(SecretsKey::parse("short!").is_err());
        assert!(!format!("{:?}", SecretsKey::from_bytes([3; 32])).contains('3'));
    }
}
