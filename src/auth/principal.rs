//! The authenticated caller of a request, resolved from its bearer credential.

use alloy::primitives::Address;
use sqlx::PgPool;
use uuid::Uuid;

use super::session::SessionKeys;
use super::{Role, api_key};
use crate::accounts::{self, OwnerScope};

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

/// Why a credential did not authenticate anyone.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer credential")]
    Missing,
    #[error("session token is invalid or expired")]
    InvalidSession,
    #[error("API key is unknown or revoked")]
    InvalidApiKey,
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

    /// Resolves a bearer credential: an `adk_` API key or a session token.
    pub async fn authenticate(db: &PgPool, sessions: &SessionKeys, bearer: &str) -> Result<Self, AuthError> {
        if bearer.starts_with(api_key::PREFIX) {
            Self::from_api_key(db, bearer).await
        } else {
            let user_id = sessions.verify(bearer).ok_or(AuthError::InvalidSession)?;
            Self::from_session(db, user_id).await
        }
    }

    async fn from_session(db: &PgPool, user_id: Uuid) -> Result<Self, AuthError> {
        let user = accounts::find(db, user_id).await?.ok_or(AuthError::InvalidSession)?;
        Ok(Self {
            user_id,
            address: user.address,
            roles: user.roles,
            credential: Credential::Session,
        })
    }

    async fn from_api_key(db: &PgPool, secret: &str) -> Result<Self, AuthError> {
        // The key acts with its role only while its owner still holds that role.
        let row = sqlx::query!(
            r#"SELECT k.id, k.user_id, u.address, k.role AS "role: Role",
                      EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = k.user_id AND r.role = k.role) AS "role_held!"
               FROM api_keys k JOIN users u ON u.id = k.user_id
               WHERE k.key_hash = $1 AND k.revoked_at IS NULL"#,
            &api_key::hash(secret)[..]
        )
        .fetch_optional(db)
        .await?
        .ok_or(AuthError::InvalidApiKey)?;
        // Recording use at most once a minute keeps a busy node from writing on every call.
        sqlx::query!(
            "UPDATE api_keys SET last_used_at = now()
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            row.id
        )
        .execute(db)
        .await?;
        Ok(Self {
            user_id: row.user_id,
            address: Address::from_slice(&row.address),
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
