//! Clawback: what adjustments reversed, taken back pro rata from held or released
//! commissions.

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{clawed_total, post_commission};
use crate::money::Amount;
use crate::money::holds::{self, Ending, HoldReason};
use crate::money::ledger::{self, NewHold, Party, Posting, Source};
use crate::programs::affiliates::AffiliateError;

/// Takes back the commissions of receipts reversed by adjustments not applied to them yet.
/// Returns how many clawbacks were made.
pub async fn claw_back(db: &PgPool, chain_id: u64, now: OffsetDateTime) -> Result<usize, AffiliateError> {
    let pending = sqlx::query!(
        r#"SELECT x.adjustment_id, x.batch_id, m.affiliate_id, sum(x.platform_share) AS "reversed!: Amount"
           FROM billing_reversed_receipts x
           JOIN billing_adjustments a ON a.id = x.adjustment_id
           JOIN affiliate_commission_campaigns m ON m.batch_id = x.batch_id AND m.campaign_id = x.campaign_id
           WHERE NOT EXISTS (SELECT 1 FROM affiliate_clawbacks k
                             WHERE k.adjustment_id = x.adjustment_id AND k.batch_id = x.batch_id
                               AND k.affiliate_id = m.affiliate_id)
           GROUP BY x.adjustment_id, x.batch_id, m.affiliate_id, a.adjusted_at
           ORDER BY a.adjusted_at, x.adjustment_id"#
    )
    .fetch_all(db)
    .await?;
    let mut made = 0;
    for row in pending {
        let mut conn = db.acquire().await?;
        let mut tx = conn.begin().await?;
        if claw_back_one(
            &mut tx,
            chain_id,
            row.adjustment_id,
            row.batch_id,
            row.affiliate_id,
            row.reversed,
            now,
        )
        .await?
        {
            tx.commit().await?;
            made += 1;
        }
    }
    Ok(made)
}

async fn claw_back_one(
    conn: &mut PgConnection,
    chain_id: u64,
    adjustment: Uuid,
    batch: i64,
    affiliate_id: Uuid,
    reversed_now: Amount,
    now: OffsetDateTime,
) -> Result<bool, AffiliateError> {
    // One commission's clawbacks take turns.
    let commission = sqlx::query!(
        r#"SELECT c.token AS "token: SqlAddress", c.amount AS "amount: Amount", c.platform_share AS "platform_share: Amount",
                  c.posting_id, u.address AS "affiliate: SqlAddress"
           FROM affiliate_commissions c JOIN users u ON u.id = c.affiliate_id
           WHERE c.batch_id = $1 AND c.affiliate_id = $2"#,
        batch,
        affiliate_id
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('commission:' || $1::text || ':' || $2::text, 0))",
        batch.to_string(),
        affiliate_id.to_string()
    )
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM affiliate_clawbacks WHERE adjustment_id = $1 AND batch_id = $2 AND affiliate_id = $3)
                  AS "done!",
                  (SELECT coalesce(sum(x.platform_share), 0) FROM affiliate_clawbacks k
                   JOIN billing_reversed_receipts x ON x.adjustment_id = k.adjustment_id AND x.batch_id = k.batch_id
                   JOIN affiliate_commission_campaigns m ON m.batch_id = x.batch_id AND m.campaign_id = x.campaign_id
                   WHERE k.batch_id = $2 AND k.affiliate_id = $3 AND m.affiliate_id = $3) AS "reversed_before!: Amount",
                  (SELECT k.clawed_total FROM affiliate_clawbacks k WHERE k.batch_id = $2 AND k.affiliate_id = $3
                   ORDER BY k.clawed_total DESC, k.clawed_at DESC LIMIT 1) AS "clawed_before: Amount",
                  (SELECT k.live_posting FROM affiliate_clawbacks k WHERE k.batch_id = $2 AND k.affiliate_id = $3
                   ORDER BY k.clawed_total DESC, k.clawed_at DESC LIMIT 1) AS "live_after_last",
                  EXISTS (SELECT 1 FROM affiliate_clawbacks k WHERE k.batch_id = $2 AND k.affiliate_id = $3) AS "clawed_any!""#,
        adjustment,
        batch,
        affiliate_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if done.done {
        return Ok(false);
    }
    let live = if done.clawed_any {
        done.live_after_last
    } else {
        Some(commission.posting_id)
    };
    let clawed_before = done.clawed_before.unwrap_or(Amount::ZERO);
    let reversed = done
        .reversed_before
        .checked_add(reversed_now)
        .unwrap_or(Amount(u128::MAX));
    let total = clawed_total(commission.amount, reversed, commission.platform_share);
    let delta = total.saturating_sub(clawed_before);
    let token = commission.token.0;
    let affiliate = commission.affiliate.0;

    let open_hold = match live {
        Some(posting) => sqlx::query!(
            r#"SELECT h.id, h.reason AS "reason: HoldReason", h.until, h.settled_after, h.note,
                      (SELECT e.payee FROM ledger_entries e WHERE e.posting_id = h.posting_id AND e.role = 'platform' LIMIT 1)
                          AS "platform: SqlAddress"
               FROM ledger_holds h
               WHERE h.posting_id = $1 AND NOT EXISTS (SELECT 1 FROM ledger_hold_ends x WHERE x.hold_id = h.id)"#,
            posting
        )
        .fetch_optional(&mut *conn)
        .await?,
        None => None,
    };
    let reason = format!("adjustment {adjustment} reversed receipts of this commission's spend");
    let (posting_id, live_after) = match (open_hold, delta.is_zero()) {
        (_, true) => (None, live),
        (Some(hold), false) => {
            // Still held: undo it, and hold what is left on the same terms.
            let reversal = holds::reverse(conn, hold.id, &Ending { by: None, reason }).await?;
            let left = commission.amount.saturating_sub(total);
            let replacement = match hold.platform {
                Some(platform) if !left.is_zero() => {
                    let again = NewHold {
                        reason: HoldReason::CommissionHold,
                        until: hold.until,
                        debtor: None,
                        settled_after: hold.settled_after,
                        note: hold.note,
                    };
                    let source_id = format!("commission:{batch}:{affiliate_id}:after:{adjustment}");
                    Some(post_commission(conn, chain_id, token, platform.0, affiliate, left, again, &source_id).await?)
                }
                _ => None,
            };
            (Some(reversal), replacement)
        }
        (None, false) => {
            // Released (or paid): move it back; the ledger holds the platform's credit while
            // the affiliate owes what its payouts included.
            let platform = sqlx::query_scalar!(
                r#"SELECT e.payee AS "payee!: SqlAddress" FROM ledger_entries e
                   WHERE e.posting_id = $1 AND e.role = 'platform' LIMIT 1"#,
                commission.posting_id
            )
            .fetch_one(&mut *conn)
            .await?;
            let mut posting = Posting::default();
            posting.transfer((Party::Affiliate, affiliate), (Party::Platform, platform.0), delta);
            let source_id = format!("commission:{batch}:{affiliate_id}:{adjustment}");
            let postings = BTreeMap::from([(token, posting)]);
            let posted = ledger::post(conn, chain_id, Source::Clawback, &source_id, &postings).await?;
            (posted.first().map(|p| p.posting_id), live)
        }
    };
    sqlx::query!(
        "INSERT INTO affiliate_clawbacks (adjustment_id, batch_id, affiliate_id, amount, clawed_total, posting_id, live_posting, clawed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        adjustment,
        batch,
        affiliate_id,
        delta as Amount,
        total as Amount,
        posting_id,
        live_after,
        now
    )
    .execute(&mut *conn)
    .await?;
    tracing::info!(%adjustment, batch, affiliate = %affiliate_id, clawed = %delta, "commission clawed back");
    Ok(true)
}
