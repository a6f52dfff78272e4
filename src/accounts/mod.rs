//! Who uses the service and how they prove it: users (a wallet address each) and their
//! roles, wallet sign-in (SIWE), session tokens, API keys, hoster and witness nodes, and
//! pseudonymous viewer ids.

pub mod api_key;
pub mod client_network;
pub mod node_session;
pub mod nodes;
pub mod personal_sign;
pub mod principal;
pub mod session;
pub mod siwe;
pub mod viewers;

pub use principal::{Authenticated, Credential, Principal};

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use session::{IssuedSession, RefreshError, SessionKeys};
use siwe::{SignInError, SignInPolicy};

/// What a user may do. A user may hold several roles; an API key acts with exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "user_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Funds campaigns and manages brands, campaigns and ads.
    Advertiser,
    /// Runs nodes that show ads and report witnessed receipts.
    Hoster,
    /// Sees ads; grants consent and earns rewards.
    Viewer,
    /// Operates the platform; sees everything.
    Admin,
    /// Lists digital items in the marketplace and is paid for their sales.
    Seller,
    /// Buys items in the marketplace from their wallet.
    Buyer,
    /// Brings advertisers and earns commissions; granted when an admin approves them.
    Affiliate,
}

impl Role {
    /// Roles a user may take on by themselves. Admin is granted only by configuration or by
    /// another admin; affiliate by an admin's approval.
    pub fn is_self_service(self) -> bool {
        !matches!(self, Role::Admin | Role::Affiliate)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Advertiser => "advertiser",
            Role::Hoster => "hoster",
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Seller => "seller",
            Role::Buyer => "buyer",
            Role::Affiliate => "affiliate",
        })
    }
}

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Only an admin grants this role.
    #[error("the {0} role is granted by an admin")]
    NotSelfService(Role),
    #[error("user not found")]
    UnknownUser,
    #[error("this account is disabled")]
    Disabled,
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whose resources a request may see: one owner's, or everyone's when `None` (admins).
pub type OwnerScope = Option<Uuid>;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    /// EIP-55 checksummed wallet address.
    #[schema(value_type = crate::platform::wire::schema::Address, example = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8")]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub address: Address,
    pub roles: Vec<Role>,
    /// Disabled by an admin: cannot sign in or act.
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Returns the user with this address, creating it (as a viewer) on first sign-in.
pub async fn upsert_by_address(conn: &mut PgConnection, address: Address) -> Result<Uuid, sqlx::Error> {
    Ok(upsert(conn, address).await?.id)
}

/// A user as sign-in finds or creates it.
struct Upserted {
    id: Uuid,
    created: bool,
    disabled: bool,
}

async fn upsert(conn: &mut PgConnection, address: Address) -> Result<Upserted, sqlx::Error> {
    // `ON CONFLICT DO UPDATE` (a no-op update) returns the row in both cases in one round
    // trip; `xmax` is zero only in a row this statement inserted.
    let row = sqlx::query!(
        r#"INSERT INTO users (address) VALUES ($1)
           ON CONFLICT ON CONSTRAINT users_address_key DO UPDATE SET address = EXCLUDED.address
           RETURNING id, (xmax = 0) AS "created!", (disabled_at IS NOT NULL) AS "disabled!""#,
        address.as_slice()
    )
    .fetch_one(&mut *conn)
    .await?;
    grant_role(conn, row.id, Role::Viewer).await?;
    Ok(Upserted {
        id: row.id,
        created: row.created,
        disabled: row.disabled,
    })
}

/// Disables an account (it can no longer sign in, and its tokens and keys stop at once) or
/// enables it again.
pub async fn set_disabled(
    db: &PgPool,
    user_id: Uuid,
    disabled: bool,
    now: OffsetDateTime,
) -> Result<User, AccountError> {
    let found = sqlx::query_scalar!(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, $3) END WHERE id = $1 RETURNING id",
        user_id,
        disabled,
        now
    )
    .fetch_optional(db)
    .await?;
    found.ok_or(AccountError::UnknownUser)?;
    user(db, user_id).await
}

/// Grants a role; granting a role already held changes nothing.
pub async fn grant_role(conn: &mut PgConnection, user_id: Uuid, role: Role) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        user_id,
        role as Role
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes a role; returns whether the user held it.
pub async fn revoke_role(conn: &mut PgConnection, user_id: Uuid, role: Role) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        "DELETE FROM user_roles WHERE user_id = $1 AND role = $2",
        user_id,
        role as Role
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

pub async fn find(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT u.id, u.address AS "address: SqlAddress", u.created_at, (u.disabled_at IS NOT NULL) AS "disabled!",
                  array_remove(array_agg(r.role ORDER BY r.role), NULL) AS "roles!: Vec<Role>"
           FROM users u LEFT JOIN user_roles r ON r.user_id = u.id
           WHERE u.id = $1
           GROUP BY u.id"#,
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| User {
        id: row.id,
        address: row.address.0,
        roles: row.roles,
        disabled: row.disabled,
        created_at: row.created_at,
    }))
}

/// The user with this id.
pub async fn user(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<User, AccountError> {
    find(db, user_id).await?.ok_or(AccountError::UnknownUser)
}

/// A user taking on a role by themselves: any role but admin. Taking a role already held
/// changes nothing.
pub async fn take_role(db: &PgPool, user_id: Uuid, role: Role) -> Result<User, AccountError> {
    if !role.is_self_service() {
        return Err(AccountError::NotSelfService(role));
    }
    let mut conn = db.acquire().await?;
    grant_role(&mut conn, user_id, role).await?;
    user(&mut *conn, user_id).await
}

/// An admin granting a role to an existing user.
pub async fn grant_to_user(db: &PgPool, user_id: Uuid, role: Role) -> Result<User, AccountError> {
    let mut tx = db.begin().await?;
    user(&mut *tx, user_id).await?;
    grant_role(&mut tx, user_id, role).await?;
    let user = user(&mut *tx, user_id).await?;
    tx.commit().await?;
    Ok(user)
}

/// An admin revoking a role; the user's API keys for it stop working at once.
pub async fn revoke_from_user(db: &PgPool, user_id: Uuid, role: Role) -> Result<User, AccountError> {
    let mut tx = db.begin().await?;
    revoke_role(&mut tx, user_id, role).await?;
    let user = user(&mut *tx, user_id).await?;
    tx.commit().await?;
    Ok(user)
}

/// What a wallet sign-in needs: the policy it is checked against, the keys its session is
/// issued under, and the addresses that are admins by configuration.
#[derive(Debug, Clone, Copy)]
pub struct SignInTerms<'a> {
    pub policy: &'a SignInPolicy,
    pub sessions: &'a SessionKeys,
    pub admins: &'a [Address],
}

/// A sign-in done in the caller's transaction.
#[derive(Debug)]
pub struct SignedIn {
    pub issued: IssuedSession,
    pub user: User,
    /// The wallet's first sign-in: the user was created by it.
    pub first: bool,
}

/// Signs a wallet in with a signed EIP-4361 message, in the caller's transaction, creating
/// the user (as a viewer) on first sign-in; a configured admin address is granted the admin
/// role. Nonce, user, session and whatever a first sign-in brings (a referral, an
/// attribution) commit together: a refusal leaves no trace.
pub async fn sign_in(
    conn: &mut PgConnection,
    terms: SignInTerms<'_>,
    message: &str,
    signature: &str,
    now: OffsetDateTime,
) -> Result<SignedIn, AccountError> {
    let verified = terms.policy.verify(message, signature, now)?;
    siwe::consume_nonce(conn, &verified.nonce).await?;
    let upserted = upsert(conn, verified.address).await?;
    if upserted.disabled {
        return Err(AccountError::Disabled);
    }
    if terms.admins.contains(&verified.address) {
        grant_role(conn, upserted.id, Role::Admin).await?;
    }
    let issued = terms.sessions.start(conn, upserted.id).await?;
    let user = user(&mut *conn, upserted.id).await?;
    Ok(SignedIn {
        issued,
        user,
        first: upserted.created,
    })
}

/// Exchanges a refresh token for a new session. A reused token ends its whole sign-in, and
/// that revocation is committed although the exchange is refused.
pub async fn refresh(
    db: &PgPool,
    sessions: &SessionKeys,
    refresh_token: &str,
) -> Result<(IssuedSession, User), AccountError> {
    let mut tx = db.begin().await?;
    let issued = match sessions.refresh(&mut tx, refresh_token).await {
        Ok(issued) => issued,
        Err(RefreshError::Reused) => {
            tx.commit().await?;
            return Err(RefreshError::Reused.into());
        }
        Err(error) => return Err(error.into()),
    };
    let user = user(&mut *tx, issued.user_id).await?;
    tx.commit().await?;
    Ok((issued, user))
}
