//! Reads of the chain mirror over HTTP: the indexer's status, campaign escrow state,
//! settlement history, claims by account and consent by user. Chain data is public, so
//! these need no credential.

use alloy::primitives::{Address, B256};
use axum::extract::State;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path, Query};
use crate::mirror::reads::{self, CampaignEscrow, ClaimedBalance, ConsentRecord, IndexerStatus, Settlement};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(campaign))
        .routes(routes!(settlements))
        .routes(routes!(claims))
        .routes(routes!(consent))
}

/// How far the mirror has got.
#[utoipa::path(get, path = "/chain/status", tag = "chain", responses((status = 200, body = IndexerStatus), (status = 404, body = ProblemSchema)))]
async fn status(State(state): State<AppState>) -> ApiResult<Json<IndexerStatus>> {
    Ok(Json(reads::status(&state.db, state.config.chain_id).await?))
}

/// A campaign's escrow as the chain holds it.
#[utoipa::path(
    get, path = "/escrow/campaigns/{campaign_id}", tag = "chain",
    params(("campaign_id" = crate::platform::wire::schema::Bytes32, Path, description = "The escrow campaign id")),
    responses((status = 200, body = CampaignEscrow), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn campaign(State(state): State<AppState>, Path(campaign_id): Path<B256>) -> ApiResult<Json<CampaignEscrow>> {
    let escrow = reads::campaign(&state.db, state.config.chain_id, state.config.grace_period, campaign_id).await?;
    Ok(Json(escrow))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Most items to return (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
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
    Ok(Json(reads::settlements(&state.db, state.config.chain_id, limit).await?))
}

/// What an account has claimed, per token.
#[utoipa::path(
    get, path = "/escrow/claims/{account}", tag = "chain", params(("account" = crate::platform::wire::schema::Address, Path)),
    responses((status = 200, body = [ClaimedBalance]), (status = 422, body = ProblemSchema))
)]
async fn claims(State(state): State<AppState>, Path(account): Path<Address>) -> ApiResult<Json<Vec<ClaimedBalance>>> {
    Ok(Json(reads::claims(&state.db, state.config.chain_id, account).await?))
}

/// A user's current consent per scope.
#[utoipa::path(
    get, path = "/consent/{user}", tag = "chain", params(("user" = crate::platform::wire::schema::Address, Path)),
    responses((status = 200, body = [ConsentRecord]), (status = 422, body = ProblemSchema))
)]
async fn consent(State(state): State<AppState>, Path(user): Path<Address>) -> ApiResult<Json<Vec<ConsentRecord>>> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    Ok(Json(reads::consent(&state.db, state.config.chain_id, user, now).await?))
}
