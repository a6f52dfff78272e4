//! API keys for machine clients (hoster and witness nodes, back-office jobs).
//!
//! A key is `adk_` followed by 32 random bytes in base64url. Only its SHA-256 is stored:
//! with 256 bits of entropy there is nothing for a slow password hash to protect, and every
//! authenticated request would pay for one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every API key starts with this, so a key is recognizable in logs and secret scanners and
/// the principal extractor can tell it from a session token without a lookup.
pub const PREFIX: &str = "adk_";

/// A freshly generated key: the secret is shown to its owner once and never stored.
#[derive(Debug)]
pub struct NewApiKey {
    pub secret: String,
    pub hash: [u8; 32],
    /// The first characters of the key, kept so owners can tell their keys apart.
    pub display_prefix: String,
}

pub fn generate() -> NewApiKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewApiKey {
        hash: hash(&secret),
        display_prefix: secret[..PREFIX.len() + 6].to_owned(),
        secret,
    }
}

/// The lookup hash of a presented key.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_hash_consistently() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(PREFIX));
        assert_eq!(a.hash, hash(&a.secret));
        assert!(a.secret.starts_with(&a.display_prefix));
    }
}
