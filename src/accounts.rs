//! Users and their roles. A user is a wallet address; roles say what they may do.

use alloy::primitives::Address;
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Role;

/// Whose resources a request may see: one owner's, or everyone's when `None` (admins).
pub type OwnerScope = Option<Uuid>;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    /// EIP-55 checksummed wallet address.
    #[schema(value_type = crate::wire::schema::Address, example = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8")]
    #[serde(serialize_with = "crate::wire::checksummed::serialize")]
    pub address: Address,
    pub roles: Vec<Role>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Returns the user with this address, creating it (as a viewer) on first sign-in.
pub async fn upsert_by_address(conn: &mut PgConnection, address: Address) -> Result<Uuid, sqlx::Error> {
    // `ON CONFLICT DO UPDATE` (a no-op update) returns the id in both cases in one round trip.
    let id = sqlx::query_scalar!(
        "INSERT INTO users (address) VALUES ($1)
         ON CONFLICT ON CONSTRAINT users_address_key DO UPDATE SET address = EXCLUDED.address
         RETURNING id",
        address.as_slice()
    )
    .fetch_one(&mut *conn)
    .await?;
    grant_role(conn, id, Role::Viewer).await?;
    Ok(id)
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
        r#"SELECT u.id, u.address, u.created_at,
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
        address: Address::from_slice(&row.address),
        roles: row.roles,
        created_at: row.created_at,
    }))
}
