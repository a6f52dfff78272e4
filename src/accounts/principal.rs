//! The authenticated caller of a request, resolved from its bearer credential.

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use sqlx::PgPool;
use uuid::Uuid;

use super::session::{SessionKeys, SessionToken};
use super::{Role, api_key};
use crate::accounts::OwnerScope;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A session token from wallet sign-in: acts with every role the user holds.
    Session,
    /// An API key: acts with the one role it was created for.
    ApiKey { id: Uuid },
}

/// An authenticated user and the roles this request may use.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub address: Address,
    pub roles: Vec<Role>,
    pub credential: Credential,
}

/// Who a request's credential names: a user (by session token or API key) or a hoster node
/// (by node session token).
#[derive(Debug, Clone)]
pub enum Authenticated {
    User(Principal),
    Node(Uuid),
}

/// Why a credential did not authenticate anyone. The message is what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing Authorization: Bearer credential")]
    Missing,
    #[error("Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("session token is invalid or expired")]
    InvalidSession,
    #[error("this sign-in has ended (signed out or revoked); sign in again")]
    SignInEnded,
    #[error("API key is unknown or revoked")]
    InvalidApiKey,
    #[error("node session token is invalid or expired")]
    InvalidNodeSession,
    #[error("this node is retired, unknown, or its owner is no longer a hoster")]
    InactiveNode,
}

/// Why a credential could not be checked or did not authenticate anyone.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// Admins see every owner's resources; everyone else sees their own. Others' resources
    /// answer 404, not 403, so that ids do not leak.
    pub fn scope(&self) -> OwnerScope {
        (!self.is_admin()).then_some(self.user_id)
    }

    /// Resolves a bearer credential: an `adk_` API key or a session token. One database
    /// round trip either way.
    pub async fn authenticate(db: &PgPool, sessions: &SessionKeys, bearer: &str) -> Result<Self, AuthError> {
        if bearer.starts_with(api_key::PREFIX) {
            Self::from_api_key(db, bearer).await
        } else {
            let token = sessions.verify(bearer).ok_or(Refusal::InvalidSession)?;
            Self::from_session(db, token).await
        }
    }

    /// The user and roles behind a session token, provided its sign-in is still live: a
    /// signed-out or revoked sign-in, or a disabled account, stops its tokens at once, not
    /// when they expire.
    async fn from_session(db: &PgPool, token: SessionToken) -> Result<Self, AuthError> {
        let row = sqlx::query!(
            r#"SELECT u.address AS "address: SqlAddress",
                      array_remove(array_agg(r.role ORDER BY r.role), NULL) AS "roles!: Vec<Role>"
               FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
               WHERE u.id = $1 AND u.disabled_at IS NULL
                 AND EXISTS (SELECT 1 FROM refresh_sessions s
                             WHERE s.family_id = $2 AND s.user_id = u.id
                               AND s.rotated_at IS NULL AND s.revoked_at IS NULL AND s.expires_at > now())
               GROUP BY u.id"#,
            token.user_id,
            token.sign_in,
        )
        .fetch_optional(db)
        .await?
        .ok_or(Refusal::SignInEnded)?;
        Ok(Self {
            user_id: token.user_id,
            address: row.address.0,
            roles: row.roles,
            credential: Credential::Session,
        })
    }

    async fn from_api_key(db: &PgPool, secret: &str) -> Result<Self, AuthError> {
        // The key acts with its role only while its owner still holds that role. Use is
        // recorded at most once a minute, so a busy node does not write on every call, and
        // in the same statement, so that checking a key stays one round trip.
        let row = sqlx::query!(
            r#"WITH key AS (
                   SELECT k.id, k.user_id, u.address, k.role,
                          EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = k.user_id AND r.role = k.role) AS role_held
                   FROM api_keys k JOIN users u ON u.id = k.user_id
                   WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.disabled_at IS NULL
               ), used AS (
                   UPDATE api_keys SET last_used_at = now()
                   FROM key
                   WHERE api_keys.id = key.id
                     AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < now() - interval '1 minute')
               )
               SELECT id AS "id!", user_id AS "user_id!", address AS "address!: SqlAddress", role AS "role!: Role",
                      role_held AS "role_held!"
               FROM key"#,
            &api_key::hash(secret)[..]
        )
        .fetch_optional(db)
        .await?
        .ok_or(Refusal::InvalidApiKey)?;
        Ok(Self {
            user_id: row.user_id,
            address: row.address.0,
            roles: if row.role_held { vec![row.role] } else { Vec::new() },
            credential: Credential::ApiKey { id: row.id },
        })
    }
}

/// A request needed a role its credential does not carry.
#[derive(Debug, thiserror::Error)]
#[error("this needs the {0} role")]
pub struct MissingRole(pub Role);

impl Principal {
    pub fn require(&self, role: Role) -> Result<(), MissingRole> {
        if self.has(role) { Ok(()) } else { Err(MissingRole(role)) }
    }
}
