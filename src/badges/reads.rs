//! Reading badges: a wallet's badges (public), and a user's progress toward each next tier.

use std::collections::BTreeMap;

use alloy::primitives::Address;
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Badge, CATALOG, Tier};

/// A tier held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    pub badge: Badge,
    pub tier: Tier,
    /// The measure when it was awarded.
    pub basis: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub awarded_at: OffsetDateTime,
}

/// A tier taken back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    pub tier: Tier,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextTier {
    pub tier: Tier,
    pub threshold: i64,
    /// How much more of the measure it takes.
    pub remaining: i64,
}

/// Where a user stands on one badge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub badge: Badge,
    pub measure: &'static str,
    /// The measure as of the badge job's last run.
    pub value: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub measured_at: Option<OffsetDateTime>,
    pub held: Vec<Tier>,
    /// None once platinum is held.
    pub next: Option<NextTier>,
    pub revoked: Vec<Revoked>,
}

/// The badges `address` holds now, by badge then tier. None for a wallet with no account.
pub async fn held(db: &PgPool, address: Address) -> Result<Vec<Held>, sqlx::Error> {
    sqlx::query_as!(
        Held,
        r#"SELECT a.badge AS "badge: Badge", a.tier AS "tier: Tier", a.basis, a.awarded_at
           FROM badge_awards a JOIN users u ON u.id = a.user_id
           WHERE u.address = $1 AND a.revoked_at IS NULL
           ORDER BY a.badge, a.tier"#,
        address.as_slice()
    )
    .fetch_all(db)
    .await
}

/// A user's progress on every badge of the catalog.
pub async fn progress(db: &PgPool, user: Uuid) -> Result<Vec<Progress>, sqlx::Error> {
    let measured: BTreeMap<Badge, (i64, OffsetDateTime)> = sqlx::query!(
        r#"SELECT badge AS "badge: Badge", value, computed_at FROM badge_progress WHERE user_id = $1"#,
        user
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|row| (row.badge, (row.value, row.computed_at)))
    .collect();
    let awards = sqlx::query!(
        r#"SELECT badge AS "badge: Badge", tier AS "tier: Tier", revoked_at, revoked_reason
           FROM badge_awards WHERE user_id = $1 ORDER BY badge, tier"#,
        user
    )
    .fetch_all(db)
    .await?;
    Ok(CATALOG
        .iter()
        .map(|definition| {
            let (value, measured_at) = measured
                .get(&definition.badge)
                .map_or((0, None), |(value, at)| (*value, Some(*at)));
            let mine = awards.iter().filter(|a| a.badge == definition.badge);
            Progress {
                badge: definition.badge,
                measure: definition.measure,
                value,
                measured_at,
                held: mine
                    .clone()
                    .filter(|a| a.revoked_at.is_none())
                    .map(|a| a.tier)
                    .collect(),
                next: definition.next(value).map(|(tier, threshold)| NextTier {
                    tier,
                    threshold,
                    remaining: threshold - value,
                }),
                revoked: mine
                    .filter_map(|a| {
                        Some(Revoked {
                            tier: a.tier,
                            reason: a.revoked_reason.clone()?,
                            revoked_at: a.revoked_at?,
                        })
                    })
                    .collect(),
            }
        })
        .collect())
}
