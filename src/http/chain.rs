//! Reads of the chain mirror: the indexer's status, campaign escrow state, settlement
//! history, claims by account and consent by user. Every answer names the block it reflects
//! and whether that block is final. Chain data is public, so these need no credential.

use alloy::primitives::{Address, B256};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path, Query};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(campaign))
        .routes(routes!(settlements))
        .routes(routes!(claims))
        .routes(routes!(consent))
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

async fn heights(state: &AppState) -> ApiResult<Heights> {
    let row = sqlx::query_scalar!(
        "SELECT finalized_block FROM chain_checkpoints WHERE chain_id = $1",
        state.config.chain_id as i64
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::NotFound("chain mirror (the indexer has not run yet)"))?;
    Ok(Heights { finalized: row })
}

impl Heights {
    fn reflects(&self, block: i64) -> Reflects {
        Reflects {
            block,
            r#final: block <= self.finalized,
        }
    }
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
#[utoipa::path(get, path = "/chain/status", tag = "chain", responses((status = 200, body = IndexerStatus), (status = 404, body = ProblemSchema)))]
async fn status(State(state): State<AppState>) -> ApiResult<Json<IndexerStatus>> {
    let row = sqlx::query!(
        "SELECT head_block, indexed_block, finalized_block, updated_at FROM chain_checkpoints WHERE chain_id = $1",
        state.config.chain_id as i64
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::NotFound("chain mirror (the indexer has not run yet)"))?;
    Ok(Json(IndexerStatus {
        chain_id: state.config.chain_id,
        head_block: row.head_block,
        indexed_block: row.indexed_block,
        finalized_block: row.finalized_block,
        lag_blocks: (row.head_block - row.indexed_block).max(0),
        updated_at: row.updated_at,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignEscrow {
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub campaign_id: B256,
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

/// A campaign's escrow as the chain holds it.
#[utoipa::path(
    get, path = "/escrow/campaigns/{campaign_id}", tag = "chain",
    params(("campaign_id" = crate::platform::wire::schema::Bytes32, Path, description = "The escrow campaign id")),
    responses((status = 200, body = CampaignEscrow), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn campaign(State(state): State<AppState>, Path(campaign_id): Path<B256>) -> ApiResult<Json<CampaignEscrow>> {
    let heights = heights(&state).await?;
    let row = sqlx::query!(
        r#"SELECT advertiser AS "advertiser!", token AS "token!", end_time AS "end_time!", closed_early AS "closed_early!",
                  funded::text AS "funded!", debited::text AS "debited!", withdrawn::text AS "withdrawn!",
                  remaining::text AS "remaining!", block_number AS "block_number!"
           FROM campaigns_view WHERE chain_id = $1 AND campaign_id = $2"#,
        state.config.chain_id as i64,
        campaign_id.as_slice()
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::NotFound("campaign"))?;
    Ok(Json(CampaignEscrow {
        campaign_id,
        advertiser: Address::from_slice(&row.advertiser),
        token: Address::from_slice(&row.token),
        end: row.end_time,
        closed_early: row.closed_early,
        withdrawable_at: state.config.grace_period.map(|grace| row.end_time + grace as i64),
        funded: row.funded,
        debited: row.debited,
        withdrawn: row.withdrawn,
        remaining: row.remaining,
        reflects: heights.reflects(row.block_number),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Most items to return (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
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
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SettlementTotal {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    token: String,
    /// Token base units, as a decimal string.
    #[schema(pattern = "^[0-9]{1,78}$")]
    amount: String,
}

/// Settlement history, newest first.
#[utoipa::path(
    get, path = "/escrow/settlements", tag = "chain", params(Page),
    responses((status = 200, body = [Settlement]), (status = 422, body = ProblemSchema))
)]
async fn settlements(State(state): State<AppState>, Query(page): Query<Page>) -> ApiResult<Json<Vec<Settlement>>> {
    let limit = page.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 500"));
    }
    let heights = heights(&state).await?;
    let rows = sqlx::query!(
        r#"SELECT epoch AS "epoch!", root AS "root!", claimable_at AS "claimable_at!", status AS "status!",
                  totals::jsonb AS "totals!", tx_hash AS "tx_hash!", block_number AS "block_number!"
           FROM settlements_view WHERE chain_id = $1 ORDER BY block_number DESC LIMIT $2"#,
        state.config.chain_id as i64,
        limit
    )
    .fetch_all(&state.db)
    .await?;
    let totals = |mut value: serde_json::Value| {
        // Tokens come out of Postgres as bytea hex (`\x…`); show them checksummed, like
        // every other address.
        if let Some(items) = value.as_array_mut() {
            for item in items {
                let token = item["token"].as_str().and_then(|t| t.strip_prefix("\\x"));
                if let Some(token) = token.and_then(|t| t.parse::<Address>().ok()) {
                    item["token"] = serde_json::Value::String(token.to_checksum(None));
                }
            }
        }
        value
    };
    Ok(Json(
        rows.into_iter()
            .map(|r| Settlement {
                epoch: r.epoch,
                root: B256::from_slice(&r.root),
                claimable_at: r.claimable_at,
                status: r.status,
                totals: totals(r.totals),
                tx_hash: B256::from_slice(&r.tx_hash),
                reflects: heights.reflects(r.block_number),
            })
            .collect(),
    ))
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
#[utoipa::path(
    get, path = "/escrow/claims/{account}", tag = "chain", params(("account" = crate::platform::wire::schema::Address, Path)),
    responses((status = 200, body = [ClaimedBalance]), (status = 422, body = ProblemSchema))
)]
async fn claims(State(state): State<AppState>, Path(account): Path<Address>) -> ApiResult<Json<Vec<ClaimedBalance>>> {
    let heights = heights(&state).await?;
    let rows = sqlx::query!(
        r#"SELECT token AS "token!", cumulative_amount::text AS "claimed!", block_number AS "block_number!"
           FROM claims_view WHERE chain_id = $1 AND account = $2 ORDER BY token"#,
        state.config.chain_id as i64,
        account.as_slice()
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| ClaimedBalance {
                token: Address::from_slice(&r.token),
                claimed: r.claimed,
                reflects: heights.reflects(r.block_number),
            })
            .collect(),
    ))
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

/// A user's current consent per scope.
#[utoipa::path(
    get, path = "/consent/{user}", tag = "chain", params(("user" = crate::platform::wire::schema::Address, Path)),
    responses((status = 200, body = [ConsentRecord]), (status = 422, body = ProblemSchema))
)]
async fn consent(State(state): State<AppState>, Path(user): Path<Address>) -> ApiResult<Json<Vec<ConsentRecord>>> {
    let heights = heights(&state).await?;
    let rows = sqlx::query!(
        r#"SELECT scope AS "scope!", expiry, block_number AS "block_number!"
           FROM consent_view WHERE chain_id = $1 AND user_address = $2 ORDER BY scope"#,
        state.config.chain_id as i64,
        user.as_slice()
    )
    .fetch_all(&state.db)
    .await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    Ok(Json(
        rows.into_iter()
            .map(|r| ConsentRecord {
                scope: B256::from_slice(&r.scope),
                expiry: r.expiry,
                active: r.expiry.is_some_and(|e| e > now),
                reflects: heights.reflects(r.block_number),
            })
            .collect(),
    ))
}

/// Whether the indexer has stalled: far behind the head and not moving.
pub async fn indexer_stalled(state: &AppState, head: u64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT indexed_block, updated_at < now() - interval '1 minute' AS \"idle!\" FROM chain_checkpoints WHERE chain_id = $1",
        state.config.chain_id as i64
    )
    .fetch_optional(&state.db)
    .await?;
    Ok(row.is_some_and(|r| r.idle && head.saturating_sub(r.indexed_block as u64) > state.config.indexer_max_lag))
}
