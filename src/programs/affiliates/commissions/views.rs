//! What an affiliate sees: each commission with its payout state, attributed advertisers
//! with their spend, and totals by month.

use std::collections::BTreeMap;

use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::primitives::{Address, B256};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Amount;
use crate::money::holds;
use crate::programs::affiliates::Channel;

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
           LEFT JOIN payout_indexes pi ON pi.chain_id = $2 AND pi.account = u.address AND pi.token = c.token
           LEFT JOIN LATERAL (
               SELECT m.tx_hash FROM mirror_claims m
               WHERE m.chain_id = $2 AND m.leaf_index = pi.leaf_index AND m.cumulative_amount >= l.cumulative
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
    pub channel: Channel,
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
        r#"SELECT t.advertiser_id, u.address AS "address: SqlAddress", t.channel AS "channel: Channel",
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
