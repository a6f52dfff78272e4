//! Accrual: commissions moved out of the platform's share of each receipt batch, as held
//! transfers, following the ledger by a cursor up to its committed watermark.

use adescrow_chain::sql::SqlAddress;
use sqlx::{Connection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{commission, post_commission};
use crate::money::Amount;
use crate::money::holds::HoldReason;
use crate::money::ledger::{self, NewHold};
use crate::programs::affiliates::{AffiliateError, Terms};
use crate::programs::cursors;

/// Postings read per accrual transaction.
const PAGE: i64 = 200;
const CURSOR: &str = "affiliate_accrual";

/// Accrues commissions on every receipt-batch posting after the cursor. Returns how many.
pub async fn accrue(db: &PgPool, chain_id: u64, terms: &Terms, now: OffsetDateTime) -> Result<usize, AffiliateError> {
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
        // A batch's receipts were billed in its posting's transaction: `billed_at` equals
        // `posted_at`, which the BRIN index over `billed_at` finds.
        let due = sqlx::query!(
            r#"WITH billed AS (
                   SELECT p.id AS posting_id, p.token, p.posted_at, e.batch_id, e.campaign_id, t.affiliate_id,
                          sum(e.price) AS spend, sum(e.platform_share) AS platform_share
                   FROM ledger_postings p
                   JOIN billed_events e ON e.billed_at = p.posted_at AND e.batch_id = p.source_id::bigint
                   JOIN campaigns c ON c.id = e.campaign_id AND c.token = p.token
                   JOIN brands b ON b.id = c.brand_id
                   JOIN affiliate_attributions t ON t.advertiser_id = b.owner_id
                        AND p.posted_at >= t.attributed_at AND p.posted_at < t.ends_at
                   WHERE p.id > $1 AND p.id <= $2 AND p.source = 'receipt_batch'
                   GROUP BY p.id, e.batch_id, e.campaign_id, t.affiliate_id)
               SELECT d.posting_id AS "posting_id!", d.token AS "token!: SqlAddress", d.batch_id AS "batch_id!",
                      d.campaign_id AS "campaign_id!", d.spend AS "spend!: Amount",
                      d.platform_share AS "platform_share!: Amount", d.affiliate_id AS "affiliate_id!", a.rate_bps,
                      u.address AS "affiliate: SqlAddress",
                      (SELECT pe.payee FROM ledger_entries pe WHERE pe.posting_id = d.posting_id AND pe.role = 'platform' LIMIT 1)
                          AS "platform: SqlAddress"
               FROM billed d
               -- The affiliate's status and rate when the batch was billed, not when this runs.
               CROSS JOIN LATERAL (SELECT h.to_status, h.rate_bps FROM affiliate_changes h
                                   WHERE h.user_id = d.affiliate_id AND h.changed_at <= d.posted_at
                                   ORDER BY h.id DESC LIMIT 1) a
               JOIN users u ON u.id = d.affiliate_id
               WHERE a.to_status = 'active'
               ORDER BY d.posting_id, d.affiliate_id, d.campaign_id"#,
            cursor,
            last
        )
        .fetch_all(&mut *tx)
        .await?;
        // One commission per batch and affiliate, over its campaigns in the batch.
        for group in due.chunk_by(|a, b| (a.posting_id, a.affiliate_id) == (b.posting_id, b.affiliate_id)) {
            let first = &group[0];
            let sum = |amount: fn(&_) -> Amount| {
                group.iter().map(amount).fold(Amount::ZERO, |total, a| {
                    total.checked_add(a).unwrap_or(Amount(u128::MAX))
                })
            };
            let (spend, platform_share) = (sum(|row| row.spend), sum(|row| row.platform_share));
            let amount = commission(platform_share, first.rate_bps);
            let Some(platform) = first.platform.as_ref().filter(|_| !amount.is_zero()) else {
                continue;
            };
            let until = now + terms.hold;
            let hold = NewHold {
                reason: HoldReason::CommissionHold,
                until: Some(until),
                debtor: None,
                settled_after: Some(first.posting_id),
                note: format!(
                    "held until {} and until the spend is settled on chain and past its challenge window",
                    until.date()
                ),
            };
            let (batch, affiliate, token) = (first.batch_id, first.affiliate_id, first.token.0);
            let source_id = format!("commission:{batch}:{affiliate}");
            let posting_id = post_commission(
                &mut tx,
                chain_id,
                token,
                platform.0,
                first.affiliate.0,
                amount,
                hold,
                &source_id,
            )
            .await?;
            sqlx::query!(
                "INSERT INTO affiliate_commissions (batch_id, affiliate_id, token, source_posting, spend, platform_share,
                                                    rate_bps, amount, posting_id, accrued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                batch,
                affiliate,
                token.as_slice(),
                first.posting_id,
                spend as Amount,
                platform_share as Amount,
                first.rate_bps,
                amount as Amount,
                posting_id,
                now
            )
            .execute(&mut *tx)
            .await?;
            let campaigns: Vec<Uuid> = group.iter().map(|row| row.campaign_id).collect();
            let spends: Vec<Amount> = group.iter().map(|row| row.spend).collect();
            let shares: Vec<Amount> = group.iter().map(|row| row.platform_share).collect();
            sqlx::query!(
                "INSERT INTO affiliate_commission_campaigns (batch_id, affiliate_id, campaign_id, spend, platform_share)
                 SELECT $1, $2, c, s, p FROM UNNEST($3::uuid[], $4::numeric[], $5::numeric[]) AS u(c, s, p)",
                batch,
                affiliate,
                &campaigns,
                &spends as &[Amount],
                &shares as &[Amount]
            )
            .execute(&mut *tx)
            .await?;
            accrued += 1;
        }
        cursors::advance(&mut tx, CURSOR, last).await?;
        tx.commit().await?;
    }
    if accrued > 0 {
        metrics::counter!("adescrow_affiliate_commissions_total").increment(accrued as u64);
    }
    Ok(accrued)
}
