//! Sign-In with Ethereum (EIP-4361).
//!
//! Parsing is the `siwe` crate's; signature recovery is alloy's (through
//! [`personal_sign`](super::personal_sign)). This module holds the policy: which domain, URI,
//! chain and times a message must name, and the single-use nonces it must carry.

use std::time::Duration;

use alloy::primitives::Address;
use sqlx::{Acquire, PgConnection};
use time::OffsetDateTime;
use url::Url;

use super::client_network::ClientNetwork;
use super::personal_sign::{self, SignatureError};

/// Clock skew tolerated between a wallet and this server for `Issued At`.
const ISSUED_AT_SKEW: Duration = Duration::from_secs(60);

/// Why a sign-in was refused. Each variant names the part of the message at fault.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("not a valid EIP-4361 message: {0}")]
    Malformed(String),
    #[error("message is for domain {got}, this service is {expected}")]
    WrongDomain { expected: String, got: String },
    #[error("message URI {got} is not on {expected}")]
    WrongUri { expected: String, got: String },
    #[error("message is for chain {got}, this service is on chain {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("message was issued in the future")]
    IssuedInFuture,
    #[error("message was issued too long ago")]
    IssuedTooLongAgo,
    #[error("message has expired")]
    Expired,
    #[error("message is not valid yet")]
    NotYetValid,
    #[error("bad signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("signature was made by {recovered}, not by the message's address")]
    WrongSigner { recovered: Address },
    #[error("unknown nonce; request a new one")]
    UnknownNonce,
    #[error("nonce was already used; request a new one")]
    NonceUsed,
    #[error("nonce has expired; request a new one")]
    NonceExpired,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl SignInError {
    /// The request field (or part of the message) the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "message",
            Self::WrongDomain { .. } => "message.domain",
            Self::WrongUri { .. } => "message.uri",
            Self::WrongChain { .. } => "message.chainId",
            Self::IssuedInFuture | Self::IssuedTooLongAgo => "message.issuedAt",
            Self::Expired => "message.expirationTime",
            Self::NotYetValid => "message.notBefore",
            Self::Signature(_) | Self::WrongSigner { .. } => "signature",
            Self::UnknownNonce | Self::NonceUsed | Self::NonceExpired => "message.nonce",
            Self::Database(_) => "",
        }
    }
}

/// A message whose contents and signature check out; its nonce is still to be consumed.
#[derive(Debug)]
pub struct VerifiedMessage {
    pub address: Address,
    pub nonce: String,
}

/// What a sign-in message must say to be accepted here.
#[derive(Debug, Clone)]
pub struct SignInPolicy {
    domain: String,
    origin: url::Origin,
    chain_id: u64,
    nonce_ttl: Duration,
}

impl SignInPolicy {
    /// `public_url` is where wallets reach this service: its authority is the expected domain
    /// and the message URI must share its origin.
    pub fn new(public_url: &Url, chain_id: u64, nonce_ttl: Duration) -> Self {
        let host = public_url.host_str().unwrap_or_default();
        let domain = match public_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Self {
            domain,
            origin: public_url.origin(),
            chain_id,
            nonce_ttl,
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn nonce_ttl(&self) -> Duration {
        self.nonce_ttl
    }

    /// Checks a message and its signature at time `now`. Pure: touches no state, so a bad
    /// message writes nothing.
    pub fn verify(&self, message: &str, signature: &str, now: OffsetDateTime) -> Result<VerifiedMessage, SignInError> {
        let parsed: siwe::Message = message
            .parse()
            .map_err(|e: siwe::ParseError| SignInError::Malformed(e.to_string()))?;

        let domain = parsed.domain.as_str();
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return Err(SignInError::WrongDomain {
                expected: self.domain.clone(),
                got: domain.to_owned(),
            });
        }
        let uri = parsed.uri.as_str();
        if Url::parse(uri).map(|u| u.origin()).ok().as_ref() != Some(&self.origin) {
            return Err(SignInError::WrongUri {
                expected: self.origin.ascii_serialization(),
                got: uri.to_owned(),
            });
        }
        if parsed.chain_id != self.chain_id {
            return Err(SignInError::WrongChain {
                expected: self.chain_id,
                got: parsed.chain_id,
            });
        }
        let issued_at = *parsed.issued_at.as_ref();
        if issued_at > now + ISSUED_AT_SKEW {
            return Err(SignInError::IssuedInFuture);
        }
        if issued_at < now - self.nonce_ttl - ISSUED_AT_SKEW {
            return Err(SignInError::IssuedTooLongAgo);
        }
        if parsed.expiration_time.as_ref().is_some_and(|t| *t.as_ref() <= now) {
            return Err(SignInError::Expired);
        }
        if parsed.not_before.as_ref().is_some_and(|t| *t.as_ref() > now) {
            return Err(SignInError::NotYetValid);
        }

        let address = Address::from(parsed.address);
        let recovered = personal_sign::recover(message, signature)?;
        if recovered != address {
            return Err(SignInError::WrongSigner { recovered });
        }
        Ok(VerifiedMessage {
            address,
            nonce: parsed.nonce,
        })
    }
}

/// Why no nonce was issued.
#[derive(Debug, thiserror::Error)]
pub enum NonceError {
    /// The client's network already holds as many unused, unexpired nonces as it may.
    #[error("too many unused sign-in nonces from this network; use one or retry after one expires")]
    TooMany {
        /// Until the first of them expires.
        retry_after: Duration,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// `pg_advisory_xact_lock(class, key)` class of nonce issuing ("nonc" in ASCII). The
/// two-key form has a key space of its own, apart from the single-key leader locks.
const NONCE_LOCK_CLASS: i32 = 0x6e6f_6e63;

/// Issues a fresh nonce for a client, valid for `ttl`, unless the client's network already
/// holds `limit` outstanding ones: each nonce is a row written for anyone who asks, so what
/// one network can make the table hold is bounded.
pub async fn issue_nonce(
    conn: &mut PgConnection,
    client: &ClientNetwork,
    ttl: Duration,
    limit: u32,
) -> Result<(String, OffsetDateTime), NonceError> {
    let mut tx = conn.begin().await?;
    // Serializes one network's requests so that concurrent ones cannot all see room under
    // the cap; unrelated networks sharing the lock's 32 bits only wait for each other.
    let [a, b, c, d, ..] = *client.as_bytes();
    sqlx::query!(
        "SELECT pg_advisory_xact_lock($1, $2)",
        NONCE_LOCK_CLASS,
        i32::from_be_bytes([a, b, c, d])
    )
    .execute(&mut *tx)
    .await?;
    let outstanding = sqlx::query!(
        r#"SELECT count(*) AS "count!", min(expires_at) AS first_expiry FROM siwe_nonces
           WHERE client_hash = $1 AND used_at IS NULL AND expires_at > now()"#,
        &client.as_bytes()[..]
    )
    .fetch_one(&mut *tx)
    .await?;
    let now = OffsetDateTime::now_utc();
    if outstanding.count >= i64::from(limit) {
        let first_expiry = outstanding.first_expiry.unwrap_or(now);
        return Err(NonceError::TooMany {
            retry_after: (first_expiry - now).try_into().unwrap_or_default(),
        });
    }
    let nonce = siwe::generate_nonce();
    let expires_at = now + ttl;
    sqlx::query!(
        "INSERT INTO siwe_nonces (nonce, expires_at, client_hash) VALUES ($1, $2, $3)",
        nonce,
        expires_at,
        &client.as_bytes()[..]
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((nonce, expires_at))
}

/// Marks a nonce used. Call inside the sign-in transaction: the row lock makes two
/// concurrent sign-ins with one nonce succeed at most once.
pub async fn consume_nonce(conn: &mut PgConnection, nonce: &str) -> Result<(), SignInError> {
    let row = sqlx::query!(
        "SELECT expires_at, used_at FROM siwe_nonces WHERE nonce = $1 FOR UPDATE",
        nonce
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(SignInError::UnknownNonce)?;
    if row.used_at.is_some() {
        return Err(SignInError::NonceUsed);
    }
    if row.expires_at <= OffsetDateTime::now_utc() {
        return Err(SignInError::NonceExpired);
    }
    sqlx::query!("UPDATE siwe_nonces SET used_at = now() WHERE nonce = $1", nonce)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes nonces that can no longer be used; run periodically.
pub async fn purge_expired_nonces(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query!("DELETE FROM siwe_nonces WHERE expires_at < now() - interval '1 day'")
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;
    use time::format_description::well_known::Rfc3339;

    fn policy() -> SignInPolicy {
        SignInPolicy::new(
            &"https://api.example.com".parse().unwrap(),
            31337,
            Duration::from_secs(600),
        )
    }

    fn message(signer: &PrivateKeySigner, domain: &str, uri: &str, chain: u64, issued: OffsetDateTime) -> String {
        format!(
            "{domain} wants you to sign in with your Ethereum account:\n{}\n\nSign in to adescrow\n\nURI: {uri}\nVersion: 1\nChain ID: {chain}\nNonce: abcdefgh12345678\nIssued At: {}",
            signer.address().to_checksum(None),
            issued.format(&Rfc3339).unwrap()
        )
    }

    fn sign(signer: &PrivateKeySigner, message: &str) -> String {
        format!(
            "0x{}",
            hex::encode(signer.sign_message_sync(message.as_bytes()).unwrap().as_bytes())
        )
    }

    #[test]
    fn accepts_a_well_formed_signed_message() {
        let signer = PrivateKeySigner::random();
        let now = OffsetDateTime::now_utc();
        let msg = message(&signer, "api.example.com", "https://api.example.com/login", 31337, now);
        let verified = policy().verify(&msg, &sign(&signer, &msg), now).unwrap();
        assert_eq!(verified.address, signer.address());
        assert_eq!(verified.nonce, "abcdefgh12345678");
    }

    #[test]
    fn refuses_each_wrong_part() {
        let signer = PrivateKeySigner::random();
        let now = OffsetDateTime::now_utc();
        let cases = [
            (
                message(&signer, "evil.example.com", "https://api.example.com", 31337, now),
                "message.domain",
            ),
            (
                message(&signer, "api.example.com", "https://evil.example.com", 31337, now),
                "message.uri",
            ),
            (
                message(&signer, "api.example.com", "https://api.example.com", 1, now),
                "message.chainId",
            ),
            (
                message(
                    &signer,
                    "api.example.com",
                    "https://api.example.com",
                    31337,
                    now + Duration::from_secs(3600),
                ),
                "message.issuedAt",
            ),
            (
                message(
                    &signer,
                    "api.example.com",
                    "https://api.example.com",
                    31337,
                    now - Duration::from_secs(3600),
                ),
                "message.issuedAt",
            ),
        ];
        for (msg, field) in cases {
            let err = policy().verify(&msg, &sign(&signer, &msg), now).unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
    }

    #[test]
    fn refuses_a_signature_by_someone_else() {
        let signer = PrivateKeySigner::random();
        let now = OffsetDateTime::now_utc();
        let msg = message(&signer, "api.example.com", "https://api.example.com", 31337, now);
        let err = policy()
            .verify(&msg, &sign(&PrivateKeySigner::random(), &msg), now)
            .unwrap_err();
        assert!(matches!(err, SignInError::WrongSigner { .. }), "{err}");
    }
}
