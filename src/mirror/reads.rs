//! Reads of the chain mirror: the indexer's status, campaign escrow state, settlement
//! history, claims by account and consent by user. Every answer names the block it reflects
//! and whether that block is final.
//!
//! Chain amounts are `uint256`, wider than [`Amount`](crate::money::Amount): they decode as
//! [`SqlU256`] and are shown as decimal strings.

use adescrow_chain::sql::{SqlAddress, SqlB256, SqlU256};
use alloy::primitives::{Address, B256};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::money::escrow::EscrowKind;

/// Why a mirror read has no answer.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The indexer has not written a checkpoint for this chain yet.
    #[error("the chain mirror is empty: the indexer has not run yet")]
    NotIndexed,
    #[error("no such campaign in the escrow")]
    UnknownCampaign,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Which block an answer reflects.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reflects {
    /// The latest block that changed this item.
    pub block: i64,
    /// Whether that block is final (at or below the finalized height).
    pub r#final: bool,
}

struct Heights {
    finalized: i64,
}

impl Heights {
    fn reflects(&self, block: i64) -> Reflects {
        Reflects {
            block,
            r#final: block <= self.finalized,
        }
    }
}

fn chain(chain_id: u64) -> i64 {
    i64::try_from(chain_id).unwrap_or(i64::MAX)
}

async fn heights(db: &PgPool, chain_id: u64) -> Result<Heights, MirrorError> {
    let finalized = sqlx::query_scalar!(
        "SELECT finalized_block FROM chain_checkpoints WHERE chain_id = $1",
        chain(chain_id)
    )
    .fetch_optional(db)
    .await?
    .ok_or(MirrorError::NotIndexed)?;
    Ok(Heights { finalized })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexerStatus {
    pub chain_id: u64,
    pub head_block: i64,
    pub indexed_block: i64,
    pub finalized_block: i64,
    pub lag_blocks: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// How far the mirror has got.
pub async fn status(db: &PgPool, chain_id: u64) -> Result<IndexerStatus, MirrorError> {
    let row = sqlx::query!(
        "SELECT head_block, indexed_block, finalized_block, updated_at FROM chain_checkpoints WHERE chain_id = $1",
        chain(chain_id)
    )
    .fetch_optional(db)
    .await?
    .ok_or(MirrorError::NotIndexed)?;
    Ok(IndexerStatus {
        chain_id,
        head_block: row.head_block,
        indexed_block: row.indexed_block,
        finalized_block: row.finalized_block,
        lag_blocks: (row.head_block - row.indexed_block).max(0),
        updated_at: row.updated_at,
    })
}

/// Whether the indexer has stalled: more than `max_lag` blocks behind `head` and not
/// moving for a minute.
pub async fn indexer_stalled(db: &PgPool, chain_id: u64, head: u64, max_lag: u64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT indexed_block, updated_at < now() - interval '1 minute' AS "idle!"
           FROM chain_checkpoints WHERE chain_id = $1"#,
        chain(chain_id)
    )
    .fetch_optional(db)
    .await?;
    Ok(row.is_some_and(|r| r.idle && head.saturating_sub(r.indexed_block as u64) > max_lag))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignEscrow {
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub campaign_id: B256,
    /// What this service uses the escrow for (an advertiser's campaign, a marketplace order,
    /// a program budget); none for an escrow opened outside it.
    pub kind: Option<EscrowKind>,
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub advertiser: Address,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// Unix seconds.
    pub end: i64,
    pub closed_early: bool,
    /// Unix seconds from which the advertiser can withdraw what is left: the end plus the
    /// escrow's grace period, during which the last impressions are settled. Absent when
    /// the API was started without the deployment file.
    pub withdrawable_at: Option<i64>,
    /// Token base units, as decimal strings.
    pub funded: String,
    pub debited: String,
    pub withdrawn: String,
    pub remaining: String,
    #[serde(flatten)]
    pub reflects: Reflects,
}

/// A campaign's escrow as the chain holds it. `grace_period` (seconds) is the escrow's,
/// when known.
pub async fn campaign(
    db: &PgPool,
    chain_id: u64,
    grace_period: Option<u64>,
    campaign_id: B256,
) -> Result<CampaignEscrow, MirrorError> {
    let heights = heights(db, chain_id).await?;
    let row = sqlx::query!(
        r#"SELECT advertiser AS "advertiser!: SqlAddress", token AS "token!: SqlAddress", end_time AS "end_time!",
                  closed_early AS "closed_early!", funded AS "funded!: SqlU256", debited AS "debited!: SqlU256",
                  withdrawn AS "withdrawn!: SqlU256", remaining AS "remaining!: SqlU256", block_number AS "block_number!",
                  (SELECT kind FROM escrow_accounts a WHERE a.chain_escrow_id = v.campaign_id) AS "kind?: EscrowKind"
           FROM campaigns_view v WHERE chain_id = $1 AND campaign_id = $2"#,
        chain(chain_id),
        SqlB256(campaign_id) as SqlB256
    )
    .fetch_optional(db)
    .await?
    .ok_or(MirrorError::UnknownCampaign)?;
    Ok(CampaignEscrow {
        campaign_id,
        kind: row.kind,
        advertiser: row.advertiser.0,
        token: row.token.0,
        end: row.end_time,
        closed_early: row.closed_early,
        withdrawable_at: grace_period.map(|grace| row.end_time + grace as i64),
        funded: row.funded.0.to_string(),
        debited: row.debited.0.to_string(),
        withdrawn: row.withdrawn.0.to_string(),
        remaining: row.remaining.0.to_string(),
        reflects: heights.reflects(row.block_number),
    })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settlement {
    pub epoch: i64,
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub root: B256,
    /// Unix seconds from which claims may use the root.
    pub claimable_at: i64,
    /// `pending`, `final` or `revoked`.
    pub status: String,
    /// What the epoch settled, per token, in the order the transaction listed them.
    #[schema(value_type = Vec<SettlementTotal>)]
    pub totals: serde_json::Value,
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub tx_hash: B256,
    #[serde(flatten)]
    pub reflects: Reflects,
}

/// One token's total in a settlement (the schema of the JSON the view builds).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SettlementTotal {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    token: String,
    /// Token base units, as a decimal string.
    #[schema(pattern = "^[0-9]{1,78}$")]
    amount: String,
}

/// The settlements view's totals with their tokens checksummed, like every other address:
/// Postgres writes bytea into JSON as hex (`\x…`).
fn checksummed_totals(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(items) = value.as_array_mut() {
        for item in items {
            let token = item["token"].as_str().and_then(|t| t.strip_prefix("\\x"));
            if let Some(token) = token.and_then(|t| t.parse::<Address>().ok()) {
                item["token"] = serde_json::Value::String(token.to_checksum(None));
            }
        }
    }
    value
}

/// Settlement history, newest first, at most `limit` of them.
pub async fn settlements(db: &PgPool, chain_id: u64, limit: i64) -> Result<Vec<Settlement>, MirrorError> {
    let heights = heights(db, chain_id).await?;
    let rows = sqlx::query!(
        r#"SELECT epoch AS "epoch!", root AS "root!: SqlB256", claimable_at AS "claimable_at!", status AS "status!",
                  totals::jsonb AS "totals!", tx_hash AS "tx_hash!: SqlB256", block_number AS "block_number!"
           FROM settlements_view WHERE chain_id = $1 ORDER BY block_number DESC LIMIT $2"#,
        chain(chain_id),
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Settlement {
            epoch: r.epoch,
            root: r.root.0,
            claimable_at: r.claimable_at,
            status: r.status,
            totals: checksummed_totals(r.totals),
            tx_hash: r.tx_hash.0,
            reflects: heights.reflects(r.block_number),
        })
        .collect())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedBalance {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// Everything claimed so far, in token base units.
    pub claimed: String,
    #[serde(flatten)]
    pub reflects: Reflects,
}

/// What an account has claimed, per token.
pub async fn claims(db: &PgPool, chain_id: u64, account: Address) -> Result<Vec<ClaimedBalance>, MirrorError> {
    let heights = heights(db, chain_id).await?;
    let rows = sqlx::query!(
        r#"SELECT token AS "token!: SqlAddress", cumulative_amount AS "claimed!: SqlU256", block_number AS "block_number!"
           FROM claims_view WHERE chain_id = $1 AND account = $2 ORDER BY token"#,
        chain(chain_id),
        SqlAddress(account) as SqlAddress
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ClaimedBalance {
            token: r.token.0,
            claimed: r.claimed.0.to_string(),
            reflects: heights.reflects(r.block_number),
        })
        .collect())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRecord {
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub scope: B256,
    /// Unix seconds; absent when revoked.
    pub expiry: Option<i64>,
    /// Whether consent holds now.
    pub active: bool,
    #[serde(flatten)]
    pub reflects: Reflects,
}

/// A user's current consent per scope, as of `now` (unix seconds).
pub async fn consent(db: &PgPool, chain_id: u64, user: Address, now: i64) -> Result<Vec<ConsentRecord>, MirrorError> {
    let heights = heights(db, chain_id).await?;
    let rows = sqlx::query!(
        r#"SELECT scope AS "scope!: SqlB256", expiry, block_number AS "block_number!"
           FROM consent_view WHERE chain_id = $1 AND user_address = $2 ORDER BY scope"#,
        chain(chain_id),
        SqlAddress(user) as SqlAddress
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ConsentRecord {
            scope: r.scope.0,
            expiry: r.expiry,
            active: r.expiry.is_some_and(|e| e > now),
            reflects: heights.reflects(r.block_number),
        })
        .collect())
}
