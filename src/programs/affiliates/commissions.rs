//! Commissions: accrued from the ledger outside billing, held, released, clawed back.
//!
//! - **Accrual** ([`accrue`]) reads receipt-batch postings after its cursor; for each batch
//!   and active affiliate whose attributed advertisers' campaigns it billed within their
//!   attributions' months, it moves `floor(platform share * rate / 10000)` of that spend's
//!   platform share out of the platform's share of that posting to the affiliate, in the same
//!   token, as a held transfer. The rate in force is stored with the commission, and the
//!   campaigns it was earned on beside it. Cursor and postings commit together, and each
//!   commission is unique on (batch, affiliate), so a crash repeats nothing.
//! - **Hold and release** ([`release_due`]): a commission waits for its hold period and for
//!   an epoch covering the spend to be the chain's current root (settled, past its challenge
//!   window); then it is released, once the affiliate's due commissions in that token reach
//!   the minimum payout, into the next epoch.
//! - **Clawback** ([`claw_back`]): receipts reversed by an adjustment take back
//!   `floor(amount * reversed platform share / platform share)` in total, less what earlier
//!   adjustments took (so the affiliate keeps the rounding until the whole is reversed, and
//!   a whole reversal takes back exactly the whole). A held commission is reversed and
//!   posted again smaller; a released one is moved back, and if its payout already included
//!   it the ledger makes the platform's credit wait until the affiliate's later earnings
//!   have repaid it.

use std::collections::BTreeMap;

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::{Address, B256};
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AffiliateError, Terms};
use crate::money::Amount;
use crate::money::holds::{self, Ending, HoldError, HoldReason};
use crate::money::ledger::{self, NewHold, Party, Posting, Source};

/// Postings read per accrual transaction.
const PAGE: i64 = 200;

fn share(amount: Amount, numerator: u128, denominator: u128) -> Amount {
    if denominator == 0 {
        return Amount::ZERO;
    }
    // amount * numerator / denominator without overflow: split amount by the denominator.
    let (whole, part) = (amount.0 / denominator, amount.0 % denominator);
    Amount(whole * numerator + part * numerator / denominator)
}

/// A commission's amount: the floor of `rate_bps` basis points of the platform's share.
pub fn commission(platform_share: Amount, rate_bps: i32) -> Amount {
    share(platform_share, u128::from(rate_bps.unsigned_abs()), 10_000)
}

/// What all clawbacks of a commission take back once `reversed` of its platform share has
/// been reversed: the floor of its pro rata part.
pub fn clawed_total(amount: Amount, reversed: Amount, platform_share: Amount) -> Amount {
    share(amount, reversed.0.min(platform_share.0), platform_share.0)
}

/// Accrues commissions on every receipt-batch posting after the cursor. Returns how many.
pub async fn accrue(db: &PgPool, chain_id: u64, terms: &Terms, now: OffsetDateTime) -> Result<usize, AffiliateError> {
    let mut accrued = 0;
    // Up to what is committed: a batch still being billed has a lower id than one billed
    // after it, and the cursor must not pass it.
    let watermark = ledger::committed_watermark_now(db).await?;
    loop {
        let mut conn = db.acquire().await?;
        let mut tx = conn.begin().await?;
        let cursor =
            sqlx::query_scalar!("SELECT position FROM program_cursors WHERE name = 'affiliate_accrual' FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let last = sqlx::query_scalar!(
            "SELECT max(id) FROM (SELECT id FROM ledger_postings WHERE id > $1 AND id <= $3 AND source = 'receipt_batch'
                                  ORDER BY id LIMIT $2) page",
            cursor,
            PAGE,
            watermark
        )
        .fetch_one(&mut *tx)
        .await?;
        let Some(last) = last else { break };
        // A batch's receipts were billed in its posting's transaction: `billed_at` equals
        // `posted_at`, which the BRIN index over `billed_at` finds.
        let due = sqlx::query!(
            r#"SELECT p.id AS posting_id, p.token AS "token: SqlAddress", e.batch_id AS "batch_id!", e.campaign_id,
                      sum(e.price) AS "spend!: Amount", sum(e.platform_share) AS "platform_share!: Amount",
                      t.affiliate_id, a.rate_bps, u.address AS "affiliate: SqlAddress",
                      (SELECT pe.payee FROM ledger_entries pe WHERE pe.posting_id = p.id AND pe.role = 'platform' LIMIT 1)
                          AS "platform: SqlAddress"
               FROM ledger_postings p
               JOIN billed_events e ON e.billed_at = p.posted_at AND e.batch_id = p.source_id::bigint
               JOIN campaigns c ON c.id = e.campaign_id AND c.token = p.token
               JOIN brands b ON b.id = c.brand_id
               JOIN affiliate_attributions t ON t.advertiser_id = b.owner_id
                    AND p.posted_at >= t.attributed_at AND p.posted_at < t.ends_at
               JOIN affiliates a ON a.user_id = t.affiliate_id AND a.status = 'active'
               JOIN users u ON u.id = a.user_id
               WHERE p.id > $1 AND p.id <= $2 AND p.source = 'receipt_batch'
               GROUP BY p.id, e.batch_id, e.campaign_id, t.affiliate_id, a.rate_bps, u.address
               ORDER BY p.id, t.affiliate_id, e.campaign_id"#,
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
        sqlx::query!(
            "UPDATE program_cursors SET position = $1 WHERE name = 'affiliate_accrual'",
            last
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    if accrued > 0 {
        metrics::counter!("adescrow_affiliate_commissions_total").increment(accrued as u64);
    }
    Ok(accrued)
}

/// A held transfer of `amount` from the platform to the affiliate. Returns its posting.
#[allow(clippy::too_many_arguments, reason = "one transfer's parts, each distinct")]
async fn post_commission(
    conn: &mut PgConnection,
    chain_id: u64,
    token: Address,
    platform: Address,
    affiliate: Address,
    amount: Amount,
    hold: NewHold,
    source_id: &str,
) -> Result<i64, AffiliateError> {
    let mut posting = Posting::default();
    posting.transfer((Party::Platform, platform), (Party::Affiliate, affiliate), amount);
    let postings = BTreeMap::from([(token, posting.hold(hold))]);
    let posted = ledger::post(conn, chain_id, Source::Transfer, source_id, &postings).await?;
    posted
        .first()
        .map(|posted| posted.posting_id)
        .ok_or_else(|| AffiliateError::Database(sqlx::Error::Protocol("a commission posted nothing".into())))
}

/// Releases the commissions that are due: past their hold, their spend settled and past
/// its challenge window, and the affiliate's due ones in the token at least the minimum
/// payout. Each in its own transaction; returns how many were released.
pub async fn release_due(
    db: &PgPool,
    chain_id: u64,
    terms: &Terms,
    now: OffsetDateTime,
) -> Result<usize, AffiliateError> {
    let due = sqlx::query!(
        r#"SELECT h.id, p.token AS "token: SqlAddress", e.payee AS "payee!: SqlAddress", e.amount AS "amount!: Amount"
           FROM ledger_holds h
           JOIN ledger_postings p ON p.id = h.posting_id
           JOIN ledger_entries e ON e.hold_id = h.id AND e.posting_id = h.posting_id AND e.role = 'affiliate'
           WHERE h.reason = 'commission_hold' AND h.until <= $1
             AND NOT EXISTS (SELECT 1 FROM ledger_hold_ends x WHERE x.hold_id = h.id)
             AND EXISTS (SELECT 1 FROM settlement_epochs s
                         WHERE s.chain_id = $2 AND s.last_posting >= h.settled_after AND s.activated_at IS NOT NULL)
           ORDER BY h.id"#,
        now,
        chain_id as i64
    )
    .fetch_all(db)
    .await?;
    let mut groups: BTreeMap<(Address, Address), (Amount, Vec<i64>)> = BTreeMap::new();
    for row in due {
        let group = groups.entry((row.payee.0, row.token.0)).or_default();
        group.0 = group.0.checked_add(row.amount).unwrap_or(Amount(u128::MAX));
        group.1.push(row.id);
    }
    let ending = Ending {
        by: None,
        reason: "hold period over and spend settled".to_owned(),
    };
    let mut released = 0;
    for ((_, token), (total, ids)) in groups {
        if total < terms.min_payout(token) {
            continue;
        }
        for id in ids {
            let mut conn = db.acquire().await?;
            let mut tx = conn.begin().await?;
            match holds::release(&mut tx, chain_id, id, &ending, now).await {
                Ok(_) => {
                    tx.commit().await?;
                    released += 1;
                }
                Err(HoldError::Database(error)) => return Err(error.into()),
                // Ended meanwhile by someone else, or waiting for a debt.
                Err(_) => tx.rollback().await?,
            }
        }
    }
    Ok(released)
}

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

/// Where a commission's money stands, derived from the ledger and the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = CommissionState)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting out its hold (see `heldUntil` and `note`).
    Held,
    /// Released: the next epoch pays it.
    Released,
    /// In an epoch pending its settlement or challenge window.
    InEpoch,
    /// In the chain's current root: a claim pays it.
    Claimable,
    /// Claimed on chain.
    Claimed,
    /// Taken back in whole by adjustments.
    Reversed,
}

/// One commission as its affiliate sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Commission {
    pub batch_id: i64,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// The attributed campaigns' spend in the batch it was earned on, and the platform's
    /// share of it.
    pub spend: Amount,
    pub platform_share: Amount,
    /// The rate in force when it accrued.
    pub rate_bps: i32,
    /// What it is worth now: accrued less what adjustments took back.
    pub amount: Amount,
    pub clawed_back: Amount,
    pub state: State,
    #[serde(with = "time::serde::rfc3339::option")]
    pub held_until: Option<OffsetDateTime>,
    pub note: Option<String>,
    pub epoch: Option<i64>,
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub claimed_tx: Option<B256>,
    #[serde(with = "time::serde::rfc3339")]
    pub accrued_at: OffsetDateTime,
}

/// `affiliate`'s latest commissions (up to 500), newest first, each with its state.
pub async fn of_affiliate(db: &PgPool, chain_id: u64, affiliate: Uuid) -> Result<Vec<Commission>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT c.batch_id, c.token AS "token: SqlAddress", c.spend AS "spend: Amount",
                  c.platform_share AS "platform_share: Amount", c.rate_bps, c.amount AS "amount: Amount", c.accrued_at,
                  k.clawed_total AS "clawed?: Amount", (k.batch_id IS NOT NULL) AS "clawed_any!", k.live_posting AS "live_posting?",
                  h.id AS "hold_id?", h.until AS "until?", h.note AS "note?", x.outcome AS "outcome?: holds::HoldOutcome",
                  ep.epoch AS "epoch?", ep.activated AS "activated?", cl.tx_hash AS "claimed_tx?: SqlB256"
           FROM affiliate_commissions c
           JOIN users u ON u.id = c.affiliate_id
           LEFT JOIN LATERAL (
               SELECT k.batch_id, k.clawed_total, k.live_posting FROM affiliate_clawbacks k
               WHERE k.batch_id = c.batch_id AND k.affiliate_id = c.affiliate_id
               ORDER BY k.clawed_total DESC, k.clawed_at DESC LIMIT 1) k ON true
           LEFT JOIN ledger_holds h
               ON h.posting_id = CASE WHEN k.batch_id IS NULL THEN c.posting_id ELSE k.live_posting END
           LEFT JOIN ledger_hold_ends x ON x.hold_id = h.id
           LEFT JOIN LATERAL (
               SELECT s.epoch, s.activated_at IS NOT NULL AS activated FROM settlement_epochs s
               WHERE s.chain_id = $2 AND x.outcome = 'released' AND s.last_posting >= x.posting_id
               ORDER BY s.epoch LIMIT 1) ep ON true
           LEFT JOIN payout_leaves l ON l.chain_id = $2 AND l.epoch = ep.epoch AND l.account = u.address AND l.token = c.token
           LEFT JOIN LATERAL (
               SELECT m.tx_hash FROM mirror_claims m
               WHERE m.chain_id = $2 AND m.account = u.address AND m.token = c.token AND m.cumulative_amount >= l.cumulative
               ORDER BY m.block_number, m.log_index LIMIT 1) cl ON ep.activated
           WHERE c.affiliate_id = $1
           ORDER BY c.accrued_at DESC, c.batch_id DESC
           LIMIT 500"#,
        affiliate,
        chain_id as i64
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let clawed = row.clawed.unwrap_or(Amount::ZERO);
            let live = !row.clawed_any || row.live_posting.is_some();
            let state = match (
                live,
                row.hold_id,
                row.outcome,
                row.epoch,
                row.activated,
                row.claimed_tx.is_some(),
            ) {
                (false, ..) => State::Reversed,
                (_, Some(_), None, ..) => State::Held,
                (_, _, Some(holds::HoldOutcome::Reversed), ..) => State::Reversed,
                (_, _, _, None, ..) => State::Released,
                (_, _, _, Some(_), Some(false) | None, _) => State::InEpoch,
                (_, _, _, Some(_), Some(true), false) => State::Claimable,
                (_, _, _, Some(_), Some(true), true) => State::Claimed,
            };
            Commission {
                batch_id: row.batch_id,
                token: row.token.0,
                spend: row.spend,
                platform_share: row.platform_share,
                rate_bps: row.rate_bps,
                amount: row.amount.saturating_sub(clawed),
                clawed_back: clawed,
                state,
                held_until: row.until.filter(|_| state == State::Held),
                note: row.note.filter(|_| state == State::Held),
                epoch: row.epoch,
                claimed_tx: row.claimed_tx.map(|tx| tx.0),
                accrued_at: row.accrued_at,
            }
        })
        .collect())
}

/// An advertiser an affiliate brought, and its attributed spend per token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attributed {
    /// The advertiser's wallet, shortened (`0x1234…abcd`).
    pub advertiser: String,
    pub channel: super::Channel,
    #[serde(with = "time::serde::rfc3339")]
    pub attributed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub spend: Vec<TokenSpend>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpend {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// Billed while attributed, on which commissions accrued.
    pub spend: Amount,
    /// The platform's share of it, which commissions are a part of.
    pub platform_share: Amount,
}

/// The advertisers `affiliate` brought, newest first, with the spend commissions were
/// earned on.
pub async fn attributed(db: &PgPool, affiliate: Uuid) -> Result<Vec<Attributed>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT t.advertiser_id, u.address AS "address: SqlAddress", t.channel AS "channel: super::Channel",
                  t.attributed_at, t.ends_at, s.token AS "token?: SqlAddress", s.spend AS "spend?: Amount",
                  s.platform_share AS "platform_share?: Amount"
           FROM affiliate_attributions t JOIN users u ON u.id = t.advertiser_id
           LEFT JOIN LATERAL (
               SELECT g.token, sum(m.spend) AS spend, sum(m.platform_share) AS platform_share
               FROM affiliate_commission_campaigns m JOIN campaigns g ON g.id = m.campaign_id JOIN brands b ON b.id = g.brand_id
               WHERE m.affiliate_id = t.affiliate_id AND b.owner_id = t.advertiser_id
               GROUP BY g.token) s ON true
           WHERE t.affiliate_id = $1
           ORDER BY t.attributed_at DESC, t.advertiser_id"#,
        affiliate
    )
    .fetch_all(db)
    .await?;
    let mut out: Vec<(Uuid, Attributed)> = Vec::new();
    for row in rows {
        if out.last().is_none_or(|(id, _)| *id != row.advertiser_id) {
            out.push((
                row.advertiser_id,
                Attributed {
                    advertiser: crate::programs::short_address(row.address.0),
                    channel: row.channel,
                    attributed_at: row.attributed_at,
                    ends_at: row.ends_at,
                    spend: Vec::new(),
                },
            ));
        }
        if let (Some(token), Some(spend), Some(platform_share), Some((_, last))) =
            (row.token, row.spend, row.platform_share, out.last_mut())
        {
            last.spend.push(TokenSpend {
                token: token.0,
                spend,
                platform_share,
            });
        }
    }
    Ok(out.into_iter().map(|(_, a)| a).collect())
}

/// Commissions summed by calendar month (UTC), token and state.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthTotal {
    /// `YYYY-MM`.
    pub month: String,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub state: State,
    pub amount: Amount,
    pub count: i64,
}

pub fn by_month(commissions: &[Commission]) -> Vec<MonthTotal> {
    let mut totals: BTreeMap<(String, Address, String), MonthTotal> = BTreeMap::new();
    for c in commissions {
        let month = format!("{:04}-{:02}", c.accrued_at.year(), u8::from(c.accrued_at.month()));
        let key = (month.clone(), c.token, format!("{:?}", c.state));
        let total = totals.entry(key).or_insert(MonthTotal {
            month,
            token: c.token,
            state: c.state,
            amount: Amount::ZERO,
            count: 0,
        });
        total.amount = total.amount.checked_add(c.amount).unwrap_or(Amount(u128::MAX));
        total.count += 1;
    }
    totals.into_values().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commission_is_the_floor_of_its_rate() {
        assert_eq!(commission(Amount(999), 2000), Amount(199));
        assert_eq!(commission(Amount(u128::MAX), 5000), Amount(u128::MAX / 2));
        assert_eq!(commission(Amount(4), 2000), Amount(0));
    }

    #[test]
    fn clawbacks_add_up_to_the_whole_only_when_all_is_reversed() {
        let (amount, share) = (Amount(199), Amount(999));
        let first = clawed_total(amount, Amount(333), share);
        let second = clawed_total(amount, Amount(666), share);
        let all = clawed_total(amount, Amount(999), share);
        assert_eq!((first, second, all), (Amount(66), Amount(132), Amount(199)));
        assert_eq!(
            clawed_total(amount, Amount(5000), share),
            amount,
            "never more than the whole"
        );
    }
}
