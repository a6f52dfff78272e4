//! Clawback: a reseller's markup on receipts that an adjustment reversed, taken back pro
//! rata, as affiliates' commissions are. A markup's clawbacks together take back
//! `floor(markup × reversed platform share / platform share)`, so a whole reversal takes
//! back the whole markup; each (adjustment, batch, reseller) is applied once. The transfer
//! moves back to the platform; if the reseller's payouts already included it, the ledger
//! holds the platform's credit until the reseller's later earnings repay it.

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use sqlx::{Connection, PgPool};
use time::OffsetDateTime;

use super::ResellerError;
use crate::money::Amount;
use crate::money::ledger::{self, Party, Posting, Source};
use crate::programs::affiliates::commissions::clawed_total;

/// Takes back the markups of receipts reversed by adjustments not applied to them yet.
/// Returns how many clawbacks were recorded.
pub async fn claw_back(db: &PgPool, chain_id: u64, now: OffsetDateTime) -> Result<usize, ResellerError> {
    let pending = sqlx::query!(
        r#"SELECT x.adjustment_id, x.batch_id, k.reseller_id, sum(x.platform_share) AS "reversed!: Amount"
           FROM billing_reversed_receipts x
           JOIN billing_adjustments a ON a.id = x.adjustment_id
           JOIN campaigns c ON c.id = x.campaign_id
           JOIN brands b ON b.id = c.brand_id
           JOIN reseller_members m ON m.user_id = b.owner_id
           JOIN reseller_markups k ON k.batch_id = x.batch_id AND k.reseller_id = m.reseller_id AND k.token = c.token
           WHERE NOT EXISTS (SELECT 1 FROM reseller_clawbacks r
                             WHERE r.adjustment_id = x.adjustment_id AND r.batch_id = x.batch_id
                               AND r.reseller_id = k.reseller_id)
           GROUP BY x.adjustment_id, x.batch_id, k.reseller_id, a.adjusted_at
           ORDER BY a.adjusted_at, x.adjustment_id"#
    )
    .fetch_all(db)
    .await?;
    let mut made = 0;
    for row in pending {
        let mut conn = db.acquire().await?;
        let mut tx = conn.begin().await?;
        // One markup's clawbacks take turns on its row.
        let markup = sqlx::query!(
            r#"SELECT k.token AS "token: SqlAddress", k.amount AS "amount: Amount", k.platform_share AS "platform_share: Amount",
                      u.address AS "reseller: SqlAddress",
                      (SELECT e.payee FROM ledger_entries e WHERE e.posting_id = k.posting_id AND e.role = 'platform' LIMIT 1)
                          AS "platform: SqlAddress",
                      EXISTS (SELECT 1 FROM reseller_clawbacks r WHERE r.adjustment_id = $3 AND r.batch_id = $1
                              AND r.reseller_id = $2) AS "done!",
                      (SELECT coalesce(sum(r.reversed), 0) FROM reseller_clawbacks r WHERE r.batch_id = $1 AND r.reseller_id = $2)
                          AS "reversed_before!: Amount",
                      (SELECT coalesce(sum(r.amount), 0) FROM reseller_clawbacks r WHERE r.batch_id = $1 AND r.reseller_id = $2)
                          AS "clawed_before!: Amount"
               FROM reseller_markups k JOIN resellers s ON s.id = k.reseller_id JOIN users u ON u.id = s.owner_id
               WHERE k.batch_id = $1 AND k.reseller_id = $2
               FOR UPDATE OF k"#,
            row.batch_id,
            row.reseller_id,
            row.adjustment_id
        )
        .fetch_one(&mut *tx)
        .await?;
        if markup.done {
            continue;
        }
        let reversed = markup
            .reversed_before
            .checked_add(row.reversed)
            .unwrap_or(Amount(u128::MAX));
        let total = clawed_total(markup.amount, reversed, markup.platform_share);
        let delta = total.saturating_sub(markup.clawed_before);
        let posting_id = match markup.platform.filter(|_| !delta.is_zero()) {
            Some(platform) => {
                let mut posting = Posting::default();
                posting.transfer(
                    (Party::Reseller, markup.reseller.0),
                    (Party::Platform, platform.0),
                    delta,
                );
                let source_id = format!("markup:{}:{}:{}", row.batch_id, row.reseller_id, row.adjustment_id);
                let postings = BTreeMap::from([(markup.token.0, posting)]);
                let posted = ledger::post(&mut tx, chain_id, Source::Clawback, &source_id, &postings).await?;
                posted.first().map(|p| p.posting_id)
            }
            None => None,
        };
        sqlx::query!(
            "INSERT INTO reseller_clawbacks (adjustment_id, batch_id, reseller_id, reversed, amount, posting_id, clawed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            row.adjustment_id,
            row.batch_id,
            row.reseller_id,
            row.reversed as Amount,
            delta as Amount,
            posting_id,
            now
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        made += 1;
    }
    Ok(made)
}
