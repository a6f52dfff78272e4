//! Session tokens and refresh tokens.
//!
//! A sign-in is a family of refresh tokens. A refresh token is an opaque random string
//! stored hashed; each use rotates it within its family, and a rotated token presented again
//! revokes the family (it can only have leaked), as sign-out does.
//!
//! A session (access) token is a short-lived HS256 JWT naming the user and the sign-in.
//! Roles and whether the sign-in is still live are read from the database on each request
//! (see [`Principal`](super::Principal)), so revoking a role or a sign-in takes effect at once.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

const ISSUER: &str = "adescrow";

/// Why a configured secret cannot sign sessions.
#[derive(Debug, thiserror::Error)]
#[error("the session secret must be at least 32 bytes")]
pub struct WeakSecret;

/// Signs and checks session tokens.
pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    session_ttl: Duration,
    refresh_ttl: Duration,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("session_ttl", &self.session_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    /// The sign-in (refresh family) the token belongs to.
    sid: Uuid,
    iss: String,
    iat: i64,
    exp: i64,
}

/// What a valid, unexpired session token says. Whether its sign-in is still live is for the
/// database to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionToken {
    pub user_id: Uuid,
    pub sign_in: Uuid,
}

/// A session token and a refresh token, as returned by sign-in and refresh.
#[derive(Debug)]
pub struct IssuedSession {
    pub user_id: Uuid,
    pub access_token: String,
    pub access_expires_at: OffsetDateTime,
    pub refresh_token: String,
    pub refresh_expires_at: OffsetDateTime,
}

/// Why a refresh token was refused.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("unknown, expired or revoked refresh token")]
    Invalid,
    #[error("refresh token was already used; all sessions of this sign-in were revoked")]
    Reused,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl SessionKeys {
    pub fn new(secret: &[u8], session_ttl: Duration, refresh_ttl: Duration) -> Result<Self, WeakSecret> {
        if secret.len() < 32 {
            return Err(WeakSecret);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            session_ttl,
            refresh_ttl,
        })
    }

    /// Reads a valid, unexpired session token.
    pub fn verify(&self, token: &str) -> Option<SessionToken> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| SessionToken {
                user_id: data.claims.sub,
                sign_in: data.claims.sid,
            })
    }

    fn access_token(&self, session: SessionToken, now: OffsetDateTime) -> (String, OffsetDateTime) {
        let expires_at = now + self.session_ttl;
        let claims = Claims {
            sub: session.user_id,
            sid: session.sign_in,
            iss: ISSUER.to_owned(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        };
        // Encoding fails only for a key of another algorithm's type or claims serde cannot
        // write; neither can happen with an HMAC key and these fields.
        #[allow(clippy::expect_used, reason = "HS256 signing of plain claims cannot fail")]
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        (token, expires_at)
    }

    /// Starts a new session family for a user who just signed in. Runs inside the caller's
    /// transaction so that sign-in writes all or nothing.
    pub async fn start(&self, conn: &mut PgConnection, user_id: Uuid) -> Result<IssuedSession, sqlx::Error> {
        self.issue(conn, user_id, Uuid::new_v4()).await
    }

    async fn issue(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        family_id: Uuid,
    ) -> Result<IssuedSession, sqlx::Error> {
        let now = OffsetDateTime::now_utc();
        let session = SessionToken {
            user_id,
            sign_in: family_id,
        };
        let (access_token, access_expires_at) = self.access_token(session, now);
        let refresh_token = random_token();
        let refresh_expires_at = now + self.refresh_ttl;
        sqlx::query!(
            "INSERT INTO refresh_sessions (family_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)",
            family_id,
            user_id,
            &hash(&refresh_token)[..],
            refresh_expires_at,
        )
        .execute(&mut *conn)
        .await?;
        Ok(IssuedSession {
            user_id,
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
        })
    }

    /// Exchanges a refresh token for a new session and refresh token.
    pub async fn refresh(&self, conn: &mut PgConnection, refresh_token: &str) -> Result<IssuedSession, RefreshError> {
        let row = sqlx::query!(
            r#"SELECT id, family_id, user_id, expires_at, rotated_at, revoked_at
               FROM refresh_sessions WHERE token_hash = $1 FOR UPDATE"#,
            &hash(refresh_token)[..],
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(RefreshError::Invalid)?;

        if row.rotated_at.is_some() {
            sqlx::query!(
                "UPDATE refresh_sessions SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
                row.family_id,
            )
            .execute(&mut *conn)
            .await?;
            return Err(RefreshError::Reused);
        }
        if row.revoked_at.is_some() || row.expires_at <= OffsetDateTime::now_utc() {
            return Err(RefreshError::Invalid);
        }
        sqlx::query!("UPDATE refresh_sessions SET rotated_at = now() WHERE id = $1", row.id)
            .execute(&mut *conn)
            .await?;
        Ok(self.issue(conn, row.user_id, row.family_id).await?)
    }

    /// Ends the session family a refresh token belongs to. Unknown tokens are ignored so
    /// that sign-out is idempotent.
    pub async fn revoke(&self, conn: &mut PgConnection, refresh_token: &str) -> Result<(), sqlx::Error> {
        sqlx::query!(
            r#"UPDATE refresh_sessions SET revoked_at = now()
               WHERE revoked_at IS NULL
                 AND family_id = (SELECT family_id FROM refresh_sessions WHERE token_hash = $1)"#,
            &hash(refresh_token)[..],
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys::new(&[7u8; 32], Duration::from_secs(60), Duration::from_secs(600)).unwrap()
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(SessionKeys::new(b"short", Duration::from_secs(1), Duration::from_secs(1)).is_err());
    }

    fn session() -> SessionToken {
        SessionToken {
            user_id: Uuid::new_v4(),
            sign_in: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_token_names_its_user_and_sign_in_and_only_verifies_with_its_key() {
        let session = session();
        let (token, _) = keys().access_token(session, OffsetDateTime::now_utc());
        assert_eq!(keys().verify(&token), Some(session));
        let other = SessionKeys::new(&[8u8; 32], Duration::from_secs(60), Duration::from_secs(60)).unwrap();
        assert_eq!(other.verify(&token), None);
        assert_eq!(keys().verify("not a token"), None);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let (token, _) = keys().access_token(session(), OffsetDateTime::now_utc() - Duration::from_secs(3600));
        assert_eq!(keys().verify(&token), None);
    }
}
