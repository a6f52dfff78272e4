//! Reseller pricing: volume tiers on the platform's fee, and the markup they leave the
//! reseller.
//!
//! A reseller's schedule, per token and effective date, maps its billed volume in the
//! calendar month so far to the platform's fee in basis points of the price. On each
//! receipt batch of its advertisers, the platform keeps that fee and the rest of its share
//! is the reseller's markup, moved to the reseller through the ledger (a transfer out of
//! the platform's share, claimable like every earning). Accrual follows the ledger by a
//! cursor up to its committed watermark, outside billing's transaction, so billing does no
//! work for it; each markup is unique per batch, reseller and token.

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ResellerError, invalid};
use crate::billing::split::WHOLE;
use crate::money::Amount;
use crate::money::ledger::{self, Party, Posting, Source};
use crate::platform::values::ValueError;
use crate::programs::cursors;

/// Postings read per accrual transaction.
const PAGE: i64 = 200;
const CURSOR: &str = "reseller_accrual";

/// One tier: from this month's volume on, the platform's fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ResellerTier)]
pub struct Tier {
    /// Billed volume in the month (base units) from which this tier applies.
    #[schema(value_type = crate::money::Amount)]
    pub min_volume: Amount,
    /// The platform's fee in basis points of the price; the reseller's markup is the
    /// platform's share above it.
    #[schema(minimum = 0, maximum = 10000)]
    pub fee_bps: u32,
}

/// The tiers in force from a date, in one token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerTierSchedule)]
pub struct Schedule {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// `YYYY-MM-DD`, UTC.
    pub effective_from: String,
    pub tiers: Vec<Tier>,
}

/// The fee of the tier `volume` has reached (`tiers` sorted by volume, the first from 0).
pub fn fee_bps(tiers: &[Tier], volume: Amount) -> u32 {
    tiers
        .iter()
        .rev()
        .find(|tier| tier.min_volume <= volume)
        .map_or(WHOLE, |tier| tier.fee_bps)
}

/// The reseller's markup on a batch: the platform's share above its fee, none below.
pub fn markup(spend: Amount, platform_share: Amount, fee_bps: u32) -> Amount {
    let fee = spend.0 / u128::from(WHOLE) * u128::from(fee_bps)
        + spend.0 % u128::from(WHOLE) * u128::from(fee_bps) / u128::from(WHOLE);
    platform_share.saturating_sub(Amount(fee))
}

/// Sets the tiers reseller `id` has in `token` from `from` on (today or later: the past is
/// not rewritten), replacing any set for that date.
pub async fn set_schedule(
    db: &PgPool,
    id: Uuid,
    token: Address,
    from: Date,
    tiers: &[Tier],
    now: OffsetDateTime,
) -> Result<Vec<Schedule>, ResellerError> {
    if from < now.to_offset(time::UtcOffset::UTC).date() {
        return Err(invalid(
            "effectiveFrom",
            ValueError::Refused("must be today or later (UTC)"),
        ));
    }
    if tiers.is_empty() || tiers.len() > 20 {
        return Err(invalid("tiers", ValueError::TooMany { max: 20 }));
    }
    if !tiers[0].min_volume.is_zero() || tiers.windows(2).any(|w| w[0].min_volume >= w[1].min_volume) {
        return Err(invalid(
            "tiers",
            ValueError::Refused("must start at volume 0 and rise strictly"),
        ));
    }
    if let Some(index) = tiers.iter().position(|tier| tier.fee_bps > WHOLE) {
        return Err(ResellerError::Invalid {
            field: "tiers",
            error: ValueError::Entry {
                index,
                error: Box::new(ValueError::OutOfRange { min: 0, max: 10_000 }),
            },
        });
    }
    let mut tx = db.begin().await?;
    sqlx::query!("SELECT id FROM resellers WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ResellerError::UnknownReseller)?;
    sqlx::query!(
        "DELETE FROM reseller_tiers WHERE reseller_id = $1 AND token = $2 AND effective_from = $3",
        id,
        token.as_slice(),
        from
    )
    .execute(&mut *tx)
    .await?;
    let volumes: Vec<Amount> = tiers.iter().map(|t| t.min_volume).collect();
    let fees: Vec<i32> = tiers.iter().map(|t| t.fee_bps as i32).collect();
    sqlx::query!(
        "INSERT INTO reseller_tiers (reseller_id, token, effective_from, min_volume, fee_bps)
         SELECT $1, $2, $3, v, f FROM UNNEST($4::numeric[], $5::int[]) AS u(v, f)",
        id,
        token.as_slice(),
        from,
        &volumes as &[Amount],
        &fees
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    schedules(db, id).await
}

/// Reseller `id`'s schedules, by token and date.
pub async fn schedules(db: &PgPool, id: Uuid) -> Result<Vec<Schedule>, ResellerError> {
    let rows = sqlx::query!(
        r#"SELECT token AS "token: SqlAddress", effective_from, min_volume AS "min_volume: Amount", fee_bps
           FROM reseller_tiers WHERE reseller_id = $1 ORDER BY token, effective_from, min_volume"#,
        id
    )
    .fetch_all(db)
    .await?;
    let mut schedules: Vec<Schedule> = Vec::new();
    for row in rows {
        let from = row.effective_from.to_string();
        let tier = Tier {
            min_volume: row.min_volume,
            fee_bps: u32::try_from(row.fee_bps).unwrap_or(WHOLE),
        };
        match schedules.last_mut() {
            Some(last) if last.token == row.token.0 && last.effective_from == from => last.tiers.push(tier),
            _ => schedules.push(Schedule {
                token: row.token.0,
                effective_from: from,
                tiers: vec![tier],
            }),
        }
    }
    Ok(schedules)
}

/// The tiers in force for a reseller in a token on a day.
async fn tiers_on(
    conn: &mut PgConnection,
    reseller: Uuid,
    token: Address,
    day: Date,
) -> Result<Vec<Tier>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT min_volume AS "min_volume: Amount", fee_bps FROM reseller_tiers
           WHERE reseller_id = $1 AND token = $2
             AND effective_from = (SELECT max(effective_from) FROM reseller_tiers
                                   WHERE reseller_id = $1 AND token = $2 AND effective_from <= $3)
           ORDER BY min_volume"#,
        reseller,
        token.as_slice(),
        day
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Tier {
            min_volume: row.min_volume,
            fee_bps: u32::try_from(row.fee_bps).unwrap_or(WHOLE),
        })
        .collect())
}

/// One accrued markup, as the reseller's dashboard shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResellerMarkup)]
pub struct Markup {
    pub batch_id: i64,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub spend: Amount,
    pub platform_share: Amount,
    /// The month's volume before this batch, which chose the tier.
    pub volume_before: Amount,
    pub fee_bps: u32,
    pub amount: Amount,
    #[serde(with = "time::serde::rfc3339")]
    pub accrued_at: OffsetDateTime,
}

/// Reseller `id`'s latest markups.
pub async fn markups(db: &PgPool, id: Uuid, limit: i64) -> Result<Vec<Markup>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT batch_id, token AS "token: SqlAddress", spend AS "spend: Amount", platform_share AS "platform_share: Amount",
                  volume_before AS "volume_before: Amount", fee_bps, amount AS "amount: Amount", accrued_at
           FROM reseller_markups WHERE reseller_id = $1 ORDER BY accrued_at DESC, batch_id DESC LIMIT $2"#,
        id,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Markup {
            batch_id: row.batch_id,
            token: row.token.0,
            spend: row.spend,
            platform_share: row.platform_share,
            volume_before: row.volume_before,
            fee_bps: u32::try_from(row.fee_bps).unwrap_or_default(),
            amount: row.amount,
            accrued_at: row.accrued_at,
        })
        .collect())
}

/// Accrues the markups of every receipt-batch posting after the cursor. Returns how many
/// markups it posted.
pub async fn accrue(db: &PgPool, chain_id: u64, now: OffsetDateTime) -> Result<usize, ResellerError> {
    let mut accrued = 0;
    // Up to what is committed: a batch still being billed has a lower id than one billed
    // after it, and the cursor must not pass it.
    let watermark = ledger::committed_watermark_now(db).await?;
    loop {
        let mut conn = db.acquire().await?;
        let mut tx = conn.begin().await?;
        let cursor = cursors::lock(&mut tx, CURSOR).await?;
        let last = cursors::receipt_page_end(&mut tx, cursor, watermark, PAGE).await?;
        let Some(last) = last else { break };
        // The spend of resellers' advertisers, per batch, reseller and token, while the
        // reseller was in business. A batch's receipts carry its posting's time.
        let due = sqlx::query!(
            r#"SELECT p.id AS "posting_id!", p.token AS "token!: SqlAddress", p.posted_at AS "posted_at!",
                      e.batch_id AS "batch_id!", m.reseller_id AS "reseller_id!", u.address AS "reseller: SqlAddress",
                      sum(e.price) AS "spend!: Amount", sum(e.platform_share) AS "platform_share!: Amount",
                      (SELECT pe.payee FROM ledger_entries pe WHERE pe.posting_id = p.id AND pe.role = 'platform' LIMIT 1)
                          AS "platform: SqlAddress"
               FROM ledger_postings p
               JOIN billed_events e ON e.billed_at = p.posted_at AND e.batch_id = p.source_id::bigint
               JOIN campaigns c ON c.id = e.campaign_id AND c.token = p.token
               JOIN brands b ON b.id = c.brand_id
               JOIN reseller_members m ON m.user_id = b.owner_id AND m.joined_at <= p.posted_at
               JOIN resellers r ON r.id = m.reseller_id
               JOIN users u ON u.id = r.owner_id
               WHERE p.id > $1 AND p.id <= $2 AND p.source = 'receipt_batch'
                 AND EXISTS (SELECT 1 FROM reseller_contracts k WHERE k.reseller_id = m.reseller_id AND k.status = 'active'
                             AND k.starts_at <= p.posted_at AND k.ends_at > p.posted_at)
               GROUP BY p.id, p.token, p.posted_at, e.batch_id, m.reseller_id, u.address
               ORDER BY p.id, m.reseller_id"#,
            cursor,
            last
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in due {
            let token = row.token.0;
            let day = row.posted_at.to_offset(time::UtcOffset::UTC).date();
            let month = day.replace_day(1).unwrap_or(day);
            let volume_before = sqlx::query_scalar!(
                r#"SELECT volume AS "volume: Amount" FROM reseller_volumes
                   WHERE reseller_id = $1 AND token = $2 AND month = $3"#,
                row.reseller_id,
                token.as_slice(),
                month
            )
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or_default();
            sqlx::query!(
                "INSERT INTO reseller_volumes (reseller_id, token, month, volume) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (reseller_id, token, month) DO UPDATE SET volume = reseller_volumes.volume + EXCLUDED.volume",
                row.reseller_id,
                token.as_slice(),
                month,
                row.spend as Amount
            )
            .execute(&mut *tx)
            .await?;
            let tiers = tiers_on(&mut tx, row.reseller_id, token, day).await?;
            // No schedule: the platform keeps its whole share.
            let fee = if tiers.is_empty() {
                WHOLE
            } else {
                fee_bps(&tiers, volume_before)
            };
            let amount = markup(row.spend, row.platform_share, fee);
            let Some(platform) = row.platform.filter(|_| !amount.is_zero()) else {
                continue;
            };
            let mut posting = Posting::default();
            posting.transfer((Party::Platform, platform.0), (Party::Reseller, row.reseller.0), amount);
            let source_id = format!("markup:{}:{}", row.batch_id, row.reseller_id);
            let posted = ledger::post(
                &mut tx,
                chain_id,
                Source::Transfer,
                &source_id,
                &BTreeMap::from([(token, posting)]),
            )
            .await?;
            let Some(posted) = posted.first() else { continue };
            sqlx::query!(
                "INSERT INTO reseller_markups (batch_id, reseller_id, token, source_posting, spend, platform_share,
                                               volume_before, fee_bps, amount, posting_id, accrued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                row.batch_id,
                row.reseller_id,
                token.as_slice(),
                row.posting_id,
                row.spend as Amount,
                row.platform_share as Amount,
                volume_before as Amount,
                fee as i32,
                amount as Amount,
                posted.posting_id,
                now
            )
            .execute(&mut *tx)
            .await?;
            accrued += 1;
        }
        cursors::advance(&mut tx, CURSOR, last).await?;
        tx.commit().await?;
    }
    if accrued > 0 {
        metrics::counter!("adescrow_reseller_markups_total").increment(accrued as u64);
    }
    Ok(accrued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tier_reached_sets_the_fee_and_the_rest_of_the_share_is_markup() {
        let tiers = [
            Tier {
                min_volume: Amount(0),
                fee_bps: 800,
            },
            Tier {
                min_volume: Amount(1_000_000),
                fee_bps: 600,
            },
            Tier {
                min_volume: Amount(10_000_000),
                fee_bps: 400,
            },
        ];
        assert_eq!(fee_bps(&tiers, Amount(0)), 800);
        assert_eq!(fee_bps(&tiers, Amount(999_999)), 800);
        assert_eq!(fee_bps(&tiers, Amount(1_000_000)), 600);
        assert_eq!(fee_bps(&tiers, Amount(u128::MAX)), 400);
        // 10% platform share of 10,000 spend is 1,000; at 6% the platform keeps 600.
        assert_eq!(markup(Amount(10_000), Amount(1_000), 600), Amount(400));
        assert_eq!(
            markup(Amount(10_000), Amount(1_000), 1_200),
            Amount(0),
            "never below nothing"
        );
        assert_eq!(
            markup(Amount(9_999), Amount(1_000), 600),
            Amount(401),
            "the fee rounds down"
        );
    }
}
