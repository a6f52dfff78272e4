//! The marketplace's two signatures. A **license key** is signed with Ed25519, so that a
//! seller's software can check one offline with the service's published public key alone;
//! a **download link** carries an HMAC-SHA256 tag, so that the service checks it without
//! storing it. Both keys come from one secret (`ADESCROW_MARKET_SECRET`), each derived under
//! its own label, so that neither can stand in for the other.
//!
//! A license key is `ADL1.<payload>.<signature>`: the payload is the JSON of
//! [`LicenseClaims`] and the signature the Ed25519 signature of those exact bytes, both in
//! unpadded base64url. To verify offline: split on `.`, decode, verify the signature over
//! the decoded payload with the public key, then read the claims (and refuse an expired one).

use alloy::primitives::Address;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// The prefix of a license key in this format.
pub const LICENSE_PREFIX: &str = "ADL1";
/// The fewest bytes the secret may have.
pub const MIN_SECRET_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// What a license key says, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseClaims {
    pub license: Uuid,
    pub item: Uuid,
    pub order: Uuid,
    pub buyer: Address,
    pub activation_limit: u32,
    /// Unix seconds; `None`: perpetual.
    pub expires: Option<i64>,
    pub issued: i64,
}

/// Why a license key or a download link is refused. Deliberately unspecific about what
/// was wrong with a forged one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the secret must be at least {MIN_SECRET_LEN} bytes")]
    WeakSecret,
    #[error("not a license key of this service")]
    BadLicense,
    #[error("not a download link of this service")]
    BadLink,
    #[error("the download link has expired; ask for a new one")]
    LinkExpired,
}

/// The service's marketplace keys.
#[derive(Clone)]
pub struct MarketKeys {
    signing: SigningKey,
    links: [u8; 32],
}

impl std::fmt::Debug for MarketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketKeys")
            .field("public_key", &self.public_key_base64())
            .finish_non_exhaustive()
    }
}

impl MarketKeys {
    pub fn from_secret(secret: &str) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::WeakSecret);
        }
        Ok(Self {
            signing: SigningKey::from_bytes(&derive(secret, b"adescrow market license signing key v1")),
            links: derive(secret, b"adescrow market download link key v1"),
        })
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The public key as published: its 32 bytes in unpadded base64url.
    pub fn public_key_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key().as_bytes())
    }

    pub fn license_key(&self, claims: &LicenseClaims) -> String {
        // Serializing plain fields cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let signature = self.signing.sign(&payload);
        format!(
            "{LICENSE_PREFIX}.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    /// The claims of a key this service signed (expiry is the caller's to judge).
    pub fn read_license(&self, key: &str) -> Result<LicenseClaims, KeyError> {
        verify_license(&self.public_key(), key)
    }

    /// A download token for `file` of `order`, good until `expires` (unix seconds).
    pub fn download_token(&self, order: Uuid, file: Uuid, expires: i64) -> String {
        let mut token = Vec::with_capacity(16 + 16 + 8 + 32);
        token.extend_from_slice(order.as_bytes());
        token.extend_from_slice(file.as_bytes());
        token.extend_from_slice(&expires.to_be_bytes());
        let tag = self.link_mac(&token).finalize().into_bytes();
        token.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The order and file a token is for, if it is this service's and `now` (unix seconds)
    /// is before its expiry.
    pub fn read_download(&self, token: &str, now: i64) -> Result<(Uuid, Uuid), KeyError> {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| KeyError::BadLink)?;
        if bytes.len() != 16 + 16 + 8 + 32 {
            return Err(KeyError::BadLink);
        }
        let (signed, tag) = bytes.split_at(40);
        self.link_mac(signed).verify_slice(tag).map_err(|_| KeyError::BadLink)?;
        let order = Uuid::from_slice(&signed[..16]).map_err(|_| KeyError::BadLink)?;
        let file = Uuid::from_slice(&signed[16..32]).map_err(|_| KeyError::BadLink)?;
        let expires = i64::from_be_bytes(signed[32..40].try_into().map_err(|_| KeyError::BadLink)?);
        if now >= expires {
            return Err(KeyError::LinkExpired);
        }
        Ok((order, file))
    }

    fn link_mac(&self, message: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.links).unwrap_or_else(|_| unreachable!());
        mac.update(b"download:");
        mac.update(message);
        mac
    }
}

/// Checks a license key with the public key alone, as a seller's software does offline.
pub fn verify_license(public_key: &VerifyingKey, key: &str) -> Result<LicenseClaims, KeyError> {
    let mut parts = key.trim().split('.');
    let (Some(LICENSE_PREFIX), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyError::BadLicense);
    };
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| KeyError::BadLicense)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| KeyError::BadLicense)?;
    let signature = Signature::from_slice(&signature).map_err(|_| KeyError::BadLicense)?;
    public_key
        .verify(&payload, &signature)
        .map_err(|_| KeyError::BadLicense)?;
    serde_json::from_slice(&payload).map_err(|_| KeyError::BadLicense)
}

fn derive(secret: &str, label: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(label);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> MarketKeys {
        MarketKeys::from_secret("a marketplace secret of at least thirty-two bytes").unwrap()
    }

    fn claims() -> LicenseClaims {
        LicenseClaims {
            license: Uuid::from_u128(1),
            item: Uuid::from_u128(2),
            order: Uuid::from_u128(3),
            buyer: Address::repeat_byte(7),
            activation_limit: 3,
            expires: Some(2_000_000_000),
            issued: 1_900_000_000,
        }
    }

    #[test]
    fn a_license_key_verifies_with_the_published_public_key_alone() {
        let keys = keys();
        let key = keys.license_key(&claims());
        let published = URL_SAFE_NO_PAD.decode(keys.public_key_base64()).unwrap();
        let public = VerifyingKey::from_bytes(&published.try_into().unwrap()).unwrap();
        assert_eq!(verify_license(&public, &key).unwrap(), claims());
    }

    #[test]
    fn a_tampered_license_key_or_another_services_is_refused() {
        let keys = keys();
        let key = keys.license_key(&claims());
        let mut forged = claims();
        forged.activation_limit = 1000;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = key.split('.').collect();
        let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(keys.read_license(&tampered), Err(KeyError::BadLicense));
        let other = MarketKeys::from_secret("another marketplace secret, thirty-two bytes or more").unwrap();
        assert_eq!(other.read_license(&key), Err(KeyError::BadLicense));
        for junk in ["", "ADL1", "ADL1..", "ADL2.a.b", &format!("{key}.x")] {
            assert_eq!(keys.read_license(junk), Err(KeyError::BadLicense), "{junk}");
        }
    }

    #[test]
    fn a_download_token_is_good_until_it_expires_and_cannot_be_altered() {
        let keys = keys();
        let (order, file) = (Uuid::from_u128(10), Uuid::from_u128(11));
        let token = keys.download_token(order, file, 1_000);
        assert_eq!(keys.read_download(&token, 999), Ok((order, file)));
        assert_eq!(keys.read_download(&token, 1_000), Err(KeyError::LinkExpired));
        // A later expiry with the old tag is a forgery.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[39] ^= 0x01;
        assert_eq!(
            keys.read_download(&URL_SAFE_NO_PAD.encode(&bytes), 0),
            Err(KeyError::BadLink)
        );
        assert_eq!(keys.read_download("not-a-token", 0), Err(KeyError::BadLink));
    }

    #[test]
    fn the_secret_must_be_long_enough() {
        assert_eq!(MarketKeys::from_secret("short").unwrap_err(), KeyError::WeakSecret);
    }
}
