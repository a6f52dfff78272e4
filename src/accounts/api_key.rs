//! API keys for machine clients (hoster and witness nodes, back-office jobs).
//!
//! A key is `adk_` followed by 32 random bytes in base64url. Only its SHA-256 is stored:
//! with 256 bits of entropy there is nothing for a slow password hash to protect, and every
//! authenticated request would pay for one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Role;
use super::principal::{MissingRole, Principal};

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

/// An API key as its owner sees it: never the secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    pub role: Role,
    /// The key's first characters, to recognize it.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A key just created, with its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret. Shown this once: store it now.
    pub secret: String,
}

/// Why an API key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// A key acts with one role its owner holds.
    #[error(transparent)]
    MissingRole(#[from] MissingRole),
    #[error("API key not found")]
    UnknownKey,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Creates a key for `owner` acting with `role`, which the owner must hold.
pub async fn create(
    db: impl PgExecutor<'_>,
    owner: &Principal,
    role: Role,
    name: &str,
) -> Result<CreatedApiKey, ApiKeyError> {
    owner.require(role)?;
    let new_key = generate();
    let row = sqlx::query!(
        r#"INSERT INTO api_keys (user_id, role, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)
           RETURNING id, created_at"#,
        owner.user_id,
        role as Role,
        name,
        new_key.display_prefix,
        &new_key.hash[..],
    )
    .fetch_one(db)
    .await?;
    Ok(CreatedApiKey {
        key: ApiKey {
            id: row.id,
            name: name.to_owned(),
            role,
            prefix: new_key.display_prefix,
            created_at: row.created_at,
            last_used_at: None,
            revoked_at: None,
        },
        secret: new_key.secret,
    })
}

/// A user's keys, newest first.
pub async fn list(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as!(
        ApiKey,
        r#"SELECT id, name, role AS "role: Role", prefix, created_at, last_used_at, revoked_at
           FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC"#,
        user_id
    )
    .fetch_all(db)
    .await
}

/// Revokes one of a user's keys; it stops working at once. Revoking a revoked key changes
/// nothing; another user's key is unknown.
pub async fn revoke(db: impl PgExecutor<'_>, user_id: Uuid, id: Uuid) -> Result<(), ApiKeyError> {
    sqlx::query_scalar!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND user_id = $2 RETURNING id",
        id,
        user_id
    )
    .fetch_optional(db)
    .await?
    .map(|_| ())
    .ok_or(ApiKeyError::UnknownKey)
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
