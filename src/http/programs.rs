//! Program budgets and holds over HTTP, admins only: budgets funded from the treasury
//! wallet (referral bonuses, promo credits and prizes are their debits), and holds a person
//! releases or reverses (a review clears, a spend is seen final, a refund is granted).

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Admins, Caller};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::adserver::campaigns::CampaignToken;
use crate::money::holds::{self, Ending, HoldOutcome};
use crate::money::treasury::{self, Budget, NewBudget, TreasuryError};
use crate::money::{Amount, PositiveAmount};
use crate::platform::values::{At, Instant, Name, Text};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get))
        .routes(routes!(fund))
        .routes(routes!(end_hold))
}

/// Every program budget, newest first.
#[utoipa::path(
    get, path = "/program-budgets", tag = "programs", security(("bearer" = ["admin"])),
    responses((status = 200, body = [Budget]), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, _: Caller<Admins>) -> ApiResult<Json<Vec<Budget>>> {
    Ok(Json(treasury::list(&state.db, state.config.chain_id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBudget {
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    pub token: Address,
    /// When the budget ends; the rest goes back to the treasury after the grace period.
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// The first funding, sent from the treasury wallet.
    #[schema(value_type = PositiveAmount)]
    pub amount: Amount,
}

/// Opens a program budget with its first funding, sent from the treasury wallet.
#[utoipa::path(
    post, path = "/program-budgets", tag = "programs", security(("bearer" = ["admin"])), request_body = CreateBudget,
    responses(
        (status = 201, body = Budget), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
        (status = 422, body = ProblemSchema), (status = 503, body = ProblemSchema),
    )
)]
async fn create(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Json(request): Json<CreateBudget>,
) -> ApiResult<(StatusCode, Json<Budget>)> {
    let new = NewBudget {
        name: Name::parse(&request.name).at("name")?,
        token: CampaignToken::parse(request.token).at("token")?.get(),
        ends_at: Instant::parse(request.ends_at).at("endsAt")?.get(),
        amount: request.amount,
    };
    let treasury = state.config.treasury_address.ok_or(TreasuryError::NotConfigured)?;
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let id = treasury::create(&mut tx, treasury, &new, admin.user_id, OffsetDateTime::now_utc()).await?;
    tx.commit().await?;
    tracing::info!(admin = %admin.user_id, budget = %id, "program budget opened");
    Ok((StatusCode::CREATED, Json(read(&state, id).await?)))
}

async fn read(state: &AppState, id: Uuid) -> ApiResult<Budget> {
    treasury::get(&state.db, state.config.chain_id, id)
        .await?
        .ok_or(ApiError::NotFound("program budget"))
}

/// A program budget: on chain (with its block and finality), in the ledger, and its fundings.
#[utoipa::path(
    get, path = "/program-budgets/{id}", tag = "programs", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Budget), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn get(State(state): State<AppState>, _: Caller<Admins>, Path(id): Path<Uuid>) -> ApiResult<Json<Budget>> {
    Ok(Json(read(&state, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FundBudget {
    #[schema(value_type = PositiveAmount)]
    pub amount: Amount,
}

/// Tops a program budget up from the treasury wallet. The answer shows the funding on its
/// way; the budget's `funded` grows once the chain has it.
#[utoipa::path(
    post, path = "/program-budgets/{id}/fundings", tag = "programs", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = FundBudget,
    responses(
        (status = 202, body = Budget), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn fund(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<FundBudget>,
) -> ApiResult<(StatusCode, Json<Budget>)> {
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let funding = treasury::fund(&mut tx, id, request.amount, admin.user_id, OffsetDateTime::now_utc()).await?;
    tx.commit().await?;
    tracing::info!(admin = %admin.user_id, budget = %id, %funding, "program budget top-up asked for");
    Ok((StatusCode::ACCEPTED, Json(read(&state, id).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndHold {
    /// `released` (the entries become due) or `reversed` (the posting is undone).
    pub outcome: HoldOutcome,
    /// Why, for the record.
    #[schema(value_type = crate::platform::wire::schema::Reason)]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldEnded {
    pub hold_id: i64,
    pub outcome: HoldOutcome,
    /// The ledger posting that ended it.
    pub posting_id: i64,
}

/// Releases or reverses a hold, once. A hold with a time is not released before it; a
/// recovery is not released while its payer still owes.
#[utoipa::path(
    post, path = "/holds/{id}/end", tag = "programs", security(("bearer" = ["admin"])),
    params(("id" = i64, Path)), request_body = EndHold,
    responses(
        (status = 200, body = HoldEnded), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn end_hold(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Path(id): Path<i64>,
    Json(request): Json<EndHold>,
) -> ApiResult<Json<HoldEnded>> {
    let reason = Text::<1, 500>::parse(&request.reason).at("reason")?;
    let ending = Ending {
        by: Some(admin.user_id),
        reason: reason.as_str().to_owned(),
    };
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let posting_id = match request.outcome {
        HoldOutcome::Released => {
            holds::release(&mut tx, state.config.chain_id, id, &ending, OffsetDateTime::now_utc()).await?
        }
        HoldOutcome::Reversed => holds::reverse(&mut tx, id, &ending).await?,
    };
    tx.commit().await?;
    tracing::info!(admin = %admin.user_id, hold = id, outcome = ?request.outcome, "hold ended");
    Ok(Json(HoldEnded {
        hold_id: id,
        outcome: request.outcome,
        posting_id,
    }))
}
