//! Node sessions: how a hoster node authenticates its calls to the ad server.
//!
//! A node proves it holds its registered key by signing (`personal_sign`) a short message
//! naming itself, the chain and the current time, and gets a short-lived HS256 token. Checking
//! that token is a MAC and an in-memory lookup, so decision requests need no database; a
//! node retired meanwhile is refused by the serving index, which tracks the registry.
//!
//! The token key is derived from the session secret with a distinct label, so a user session
//! token can never pass as a node token, nor the other way round.

use std::time::Duration;

use alloy::primitives::Address;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::personal_sign::{self, SignatureError};

const ISSUER: &str = "adescrow-node";
/// How far a sign-in's `issuedAt` may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(60);

/// The text a node key signs to open a session.
pub fn session_message(node: Address, chain_id: u64, issued_at: &str) -> String {
    format!("adescrow node session\nnode: {node}\nchain id: {chain_id}\nissued at: {issued_at}")
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iss: String,
    iat: i64,
    exp: i64,
}

/// Signs and checks node tokens.
pub struct NodeSessions {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for NodeSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Why a node sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum NodeSignInError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("signature was made by {0}, not by the node key")]
    WrongSigner(Address),
    #[error("issuedAt must be within 60 seconds of the server's clock")]
    Stale,
    #[error("no registered node has this address")]
    UnknownNode,
    #[error("this node is retired")]
    Retired,
    #[error("the node's owner does not hold the hoster role")]
    NotHoster,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl NodeSessions {
    pub fn new(session_secret: &[u8], ttl: Duration) -> Self {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"adescrow node sessions\0")
            .chain_update(session_secret)
            .finalize()
            .into();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            ttl,
        }
    }

    /// The node a valid, unexpired token names.
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims.sub)
    }

    pub fn issue(&self, node: Uuid, now: OffsetDateTime) -> (String, OffsetDateTime) {
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: node,
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

    /// Checks a node's signed sign-in and returns its id.
    pub async fn sign_in(
        &self,
        db: &PgPool,
        node: Address,
        chain_id: u64,
        issued_at: &str,
        signature: &str,
        now: OffsetDateTime,
    ) -> Result<Uuid, NodeSignInError> {
        let signed_at = OffsetDateTime::parse(issued_at, &time::format_description::well_known::Rfc3339)
            .map_err(|_| NodeSignInError::Stale)?;
        if (signed_at - now).unsigned_abs() > MAX_SKEW {
            return Err(NodeSignInError::Stale);
        }
        let signer = personal_sign::recover(&session_message(node, chain_id, issued_at), signature)?;
        if signer != node {
            return Err(NodeSignInError::WrongSigner(signer));
        }
        let row = sqlx::query!(
            r#"SELECT n.id, n.retired_at IS NOT NULL AS "retired!",
                      EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = n.owner_id AND r.role = 'hoster') AS "hoster!"
               FROM nodes n WHERE n.address = $1"#,
            node.as_slice()
        )
        .fetch_optional(db)
        .await?
        .ok_or(NodeSignInError::UnknownNode)?;
        if row.retired {
            return Err(NodeSignInError::Retired);
        }
        if !row.hoster {
            return Err(NodeSignInError::NotHoster);
        }
        Ok(row.id)
    }
}
