//! Adjustments: an admin reverses billed receipts found fraudulent later. Each receipt's
//! split goes back, payee by payee, to the advertiser whose campaign paid it, claimable like
//! any earning: the campaign's escrow stays debited (settlement only ever debits), so every
//! leaf stays backed. A payee whose payouts already included its share owes it, and the
//! ledger makes the advertiser's credit from that payee wait until the payee's later
//! earnings have repaid it. A receipt is reversed once; the programs read what an adjustment
//! reversed (a commission is clawed back pro rata, a referral may stop qualifying).

use std::collections::BTreeMap;

use adescrow_chain::sql::SqlAddress;
use alloy::primitives::Address;
use serde::Serialize;
use sqlx::{Connection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Amount;
use crate::money::ledger::{self, LedgerError, Party, Payee, Posting, Source};

/// Why an adjustment was refused. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum AdjustmentError {
    #[error("no billed receipt batch {0}")]
    UnknownBatch(i64),
    #[error("no billed receipt at positions {0:?} of this batch")]
    UnknownReceipts(Vec<i32>),
    #[error("receipts at positions {0:?} were reversed already")]
    AlreadyReversed(Vec<i32>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// An adjustment as it was made.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Adjustment {
    pub id: Uuid,
    pub batch_id: i64,
    pub positions: Vec<i32>,
    /// The price of the reversed receipts, per token, refunded to their advertisers.
    pub reversed: Vec<Reversed>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReversedAmount)]
#[serde(rename_all = "camelCase")]
pub struct Reversed {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    pub amount: Amount,
}

/// Reverses the billed receipts at `positions` of batch `batch` (1 to 1,000 distinct ones).
pub async fn reverse(
    db: &PgPool,
    chain_id: u64,
    batch: i64,
    positions: &[i32],
    reason: &str,
    admin: Uuid,
    now: OffsetDateTime,
) -> Result<Adjustment, AdjustmentError> {
    let mut conn = db.acquire().await?;
    let mut tx = conn.begin().await?;
    // Adjustments of one batch take turns, so a receipt is never reversed twice.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('adjustment:' || $1::text, 0))",
        batch.to_string()
    )
    .execute(&mut *tx)
    .await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM receipt_batches WHERE id = $1) AS "exists!""#,
        batch
    )
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(AdjustmentError::UnknownBatch(batch));
    }
    // A batch's receipts were billed in its posting's transaction: `billed_at` equals
    // `posted_at`, which the BRIN index over `billed_at` finds.
    let receipts = sqlx::query!(
        r#"SELECT e.position AS "position!", e.campaign_id, c.token AS "token: SqlAddress", e.price AS "price: Amount",
                  e.hoster_share AS "hoster: Amount", e.platform_share AS "platform: Amount",
                  e.witness_share AS "witness: Amount", e.viewer_share AS "viewer: Amount",
                  e.viewer_payee AS "viewer_payee: SqlAddress", u.address AS "advertiser: SqlAddress",
                  EXISTS (SELECT 1 FROM billing_reversed_receipts x WHERE x.batch_id = e.batch_id AND x.position = e.position)
                      AS "reversed!"
           FROM ledger_postings p
           JOIN billed_events e ON e.billed_at = p.posted_at AND e.batch_id = $1 AND e.position = ANY($2)
           JOIN campaigns c ON c.id = e.campaign_id JOIN brands b ON b.id = c.brand_id JOIN users u ON u.id = b.owner_id
           WHERE p.source = 'receipt_batch' AND p.source_id = $1::text
           ORDER BY e.position"#,
        batch,
        positions
    )
    .fetch_all(&mut *tx)
    .await?;
    let missing: Vec<i32> = positions
        .iter()
        .copied()
        .filter(|p| !receipts.iter().any(|r| r.position == *p))
        .collect();
    if !missing.is_empty() {
        return Err(AdjustmentError::UnknownReceipts(missing));
    }
    let again: Vec<i32> = receipts.iter().filter(|r| r.reversed).map(|r| r.position).collect();
    if !again.is_empty() {
        return Err(AdjustmentError::AlreadyReversed(again));
    }
    // Who was paid each share: the batch's postings name the hoster, witness and platform.
    let payees = sqlx::query!(
        r#"SELECT p.token AS "token: SqlAddress", e.role AS "role: Party", e.payee AS "payee!: SqlAddress"
           FROM ledger_postings p JOIN ledger_entries e ON e.posting_id = p.id
           WHERE p.source = 'receipt_batch' AND p.source_id = $1 AND e.role IN ('hoster', 'witness', 'platform')
           GROUP BY p.token, e.role, e.payee"#,
        batch.to_string()
    )
    .fetch_all(&mut *tx)
    .await?;
    let payee_of = |token: Address, party: Party| {
        payees
            .iter()
            .find(|p| p.token.0 == token && p.role == party)
            .map(|p| p.payee.0)
    };

    let id = sqlx::query_scalar!(
        "INSERT INTO billing_adjustments (batch_id, reason, adjusted_by, adjusted_at) VALUES ($1, $2, $3, $4) RETURNING id",
        batch,
        reason,
        admin,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    // Per paying payee, per token: what goes back to each advertiser.
    let mut back: BTreeMap<Payee, BTreeMap<Address, Posting>> = BTreeMap::new();
    let mut reversed: BTreeMap<Address, Amount> = BTreeMap::new();
    for receipt in &receipts {
        let token = receipt.token.0;
        let advertiser = (Party::Advertiser, receipt.advertiser.0);
        let shares = [
            (Party::Hoster, payee_of(token, Party::Hoster), receipt.hoster),
            (Party::Platform, payee_of(token, Party::Platform), receipt.platform),
            (Party::Witness, payee_of(token, Party::Witness), receipt.witness),
            (Party::Viewer, receipt.viewer_payee.map(|p| p.0), receipt.viewer),
        ];
        for (party, payee, amount) in shares {
            if let Some(payee) = payee.filter(|_| !amount.is_zero()) {
                back.entry((party, payee))
                    .or_default()
                    .entry(token)
                    .or_default()
                    .transfer((party, payee), advertiser, amount);
            }
        }
        let total = reversed.entry(token).or_default();
        *total = total.checked_add(receipt.price).unwrap_or(Amount(u128::MAX));
        sqlx::query!(
            "INSERT INTO billing_reversed_receipts (batch_id, position, adjustment_id, campaign_id, price, platform_share)
             VALUES ($1, $2, $3, $4, $5, $6)",
            batch,
            receipt.position,
            id,
            receipt.campaign_id,
            receipt.price as Amount,
            receipt.platform as Amount
        )
        .execute(&mut *tx)
        .await?;
    }
    // One posting per paying payee, so that each one's debt holds only its own credits.
    for ((party, payee), postings) in &back {
        let source_id = format!("{id}:{party:?}:{payee}");
        ledger::post(&mut tx, chain_id, Source::Adjustment, &source_id, postings).await?;
    }
    tx.commit().await?;
    tracing::info!(adjustment = %id, batch, receipts = receipts.len(), "billed receipts reversed");
    Ok(Adjustment {
        id,
        batch_id: batch,
        positions: receipts.iter().map(|r| r.position).collect(),
        reversed: reversed
            .into_iter()
            .map(|(token, amount)| Reversed { token, amount })
            .collect(),
    })
}
