//! What referees billed and earned, folded from the ledger into `referral_activity` so that
//! a referrer's snapshot costs a few index probes per active referee, however long their
//! ledger history (see the migration for the table's shape).
//!
//! [`fold`] runs in the programs role before the bonuses are recomputed. It reads every
//! posting after its cursor up to the ledger's committed watermark, in one transaction with
//! the cursor, so a move is folded exactly once and in ledger order: a posting still being
//! written has a lower id than one committed after it, and the watermark stops short of it.
//! Until a fold has run, a referee's newest moves do not count yet (at most one interval of
//! the programs role). A referral is recorded at the referee's first sign-in, before it can
//! bill or earn anything, so every move of a referee is folded after its referral exists.

use sqlx::PgPool;

use crate::money::ledger;
use crate::programs::cursors;

/// Folds the postings committed since the last fold. Returns how many moves it added.
pub async fn fold(db: &PgPool) -> Result<u64, sqlx::Error> {
    let watermark = ledger::committed_watermark_now(db).await?;
    let mut tx = db.begin().await?;
    let cursor = cursors::lock(&mut tx, "referral_activity").await?;
    if cursor >= watermark {
        return Ok(0);
    }
    // One statement for the whole range: the postings of one transaction (an adjustment's,
    // say) are all below a watermark or all above it, so none is split between two folds.
    // Running totals continue from each referee's last fold.
    let folded = sqlx::query_scalar!(
        r#"WITH moves AS (
               SELECT b.owner_id AS referee_id, p.token, 'billed'::referral_activity_kind AS kind, p.id AS seq,
                      p.posted_at AS at, -sum(e.amount) AS amount
               FROM ledger_postings p
               JOIN ledger_entries e ON e.posting_id = p.id AND e.role = 'escrow'
               JOIN campaigns c ON c.id = e.escrow_id
               JOIN brands b ON b.id = c.brand_id
               JOIN referrals r ON r.referee_id = b.owner_id
               WHERE p.id > $1 AND p.id <= $2 AND p.source = 'receipt_batch'
               GROUP BY b.owner_id, p.token, p.id
               UNION ALL
               -- Receipts an adjustment reversed no longer count as billed, from the adjustment on.
               SELECT b.owner_id, c.token, 'billed', adj.seq, a.adjusted_at, -sum(x.price)
               FROM (SELECT split_part(source_id, ':', 1)::uuid AS id, min(id) AS seq FROM ledger_postings
                     WHERE id > $1 AND id <= $2 AND source = 'adjustment'
                     GROUP BY 1) adj
               JOIN billing_adjustments a ON a.id = adj.id
               JOIN billing_reversed_receipts x ON x.adjustment_id = a.id
               JOIN campaigns c ON c.id = x.campaign_id
               JOIN brands b ON b.id = c.brand_id
               JOIN referrals r ON r.referee_id = b.owner_id
               GROUP BY b.owner_id, c.token, adj.seq, a.adjusted_at
               UNION ALL
               SELECT u.id, p.token, 'earned', p.id, p.posted_at, sum(e.amount)
               FROM ledger_postings p
               JOIN ledger_entries e ON e.posting_id = p.id AND e.role = 'hoster'
               JOIN users u ON u.address = e.payee
               JOIN referrals r ON r.referee_id = u.id
               WHERE p.id > $1 AND p.id <= $2 AND p.source IN ('receipt_batch', 'adjustment')
               GROUP BY u.id, p.token, p.id),
           running AS (
               SELECT m.referee_id, m.token, m.kind, m.seq, m.at, m.amount,
                      coalesce(t.total, 0) + sum(m.amount) OVER w AS total, coalesce(t.high, 0) AS high_before
               FROM moves m
               LEFT JOIN referral_activity_totals t USING (referee_id, token, kind)
               WHERE m.amount <> 0
               WINDOW w AS (PARTITION BY m.referee_id, m.token, m.kind ORDER BY m.seq)),
           inserted AS (
               INSERT INTO referral_activity (referee_id, token, kind, seq, at, amount, total, high)
               SELECT referee_id, token, kind, seq, at, amount, total,
                      greatest(high_before, max(total) OVER (PARTITION BY referee_id, token, kind ORDER BY seq))
               FROM running
               RETURNING referee_id, token, kind, seq, at, total, high),
           latest AS (
               SELECT DISTINCT ON (referee_id, token, kind) referee_id, token, kind, seq, total, high,
                      max(at) OVER (PARTITION BY referee_id, token, kind) AS latest_at
               FROM inserted
               ORDER BY referee_id, token, kind, seq DESC),
           totals AS (
               INSERT INTO referral_activity_totals AS t (referee_id, token, kind, seq, latest_at, total, high)
               SELECT referee_id, token, kind, seq, latest_at, total, high FROM latest
               ON CONFLICT (referee_id, token, kind) DO UPDATE
                   SET seq = EXCLUDED.seq, latest_at = greatest(t.latest_at, EXCLUDED.latest_at),
                       total = EXCLUDED.total, high = EXCLUDED.high)
           SELECT count(*) AS "moves!" FROM inserted"#,
        cursor,
        watermark
    )
    .fetch_one(&mut *tx)
    .await?;
    cursors::advance(&mut tx, "referral_activity", watermark).await?;
    tx.commit().await?;
    Ok(folded.unsigned_abs())
}
