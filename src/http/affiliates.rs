//! The affiliate program over HTTP: applying, codes and the dashboard for affiliates; the
//! workflow and rates for admins. Billing adjustments, which claw commissions back, are
//! here too: they are an admin's correction of billed spend.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Admins, Affiliates, Caller, SignedIn};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::billing::adjustments::{self, Adjustment, AdjustmentError};
use crate::money::ledger::LedgerError;
use crate::platform::values::{At, Text};
use crate::programs::affiliates::commissions::{self, Attributed, Commission, MonthTotal};
use crate::programs::affiliates::{self, Affiliate, AffiliateError, Status};
use crate::settlement::payouts::{self, Payouts};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(apply, me))
        .routes(routes!(create_code))
        .routes(routes!(dashboard))
        .routes(routes!(list))
        .routes(routes!(change_status))
        .routes(routes!(set_rate))
        .routes(routes!(adjust))
}

type Reason = Text<1, 500>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffiliateApplication {
    /// Who you are and how you will bring advertisers.
    #[schema(value_type = crate::platform::wire::schema::Reason)]
    pub reason: String,
}

/// Applies to be an affiliate; an admin approves or refuses.
#[utoipa::path(
    post, path = "/affiliates/me", tag = "affiliates", request_body = AffiliateApplication,
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses(
        (status = 201, body = Affiliate), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn apply(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Json(request): Json<AffiliateApplication>,
) -> ApiResult<(StatusCode, Json<Affiliate>)> {
    let reason = Reason::parse(&request.reason).at("reason")?;
    let affiliate = affiliates::apply(&state.db, &state.growth.affiliates, caller.user_id, reason.as_str())
        .await
        .map_err(|error| problem(error, "reason"))?;
    Ok((StatusCode::CREATED, Json(affiliate)))
}

/// One's affiliate standing: status, rate, codes and every change.
#[utoipa::path(
    get, path = "/affiliates/me", tag = "affiliates",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = Affiliate), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn me(State(state): State<AppState>, caller: Caller<SignedIn>) -> ApiResult<Json<Affiliate>> {
    let affiliate = affiliates::find(&state.db, caller.user_id).await?;
    Ok(Json(affiliate.ok_or(ApiError::NotFound("affiliate"))?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewAffiliateCode {
    /// Give it to advertisers: at their first sign-in, or with a campaign.
    pub code: String,
}

/// A new affiliate code (active affiliates only).
#[utoipa::path(
    post, path = "/affiliates/me/codes", tag = "affiliates", security(("bearer" = ["affiliate"])),
    responses((status = 201, body = NewAffiliateCode), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema), (status = 409, body = ProblemSchema))
)]
async fn create_code(
    State(state): State<AppState>,
    caller: Caller<Affiliates>,
) -> ApiResult<(StatusCode, Json<NewAffiliateCode>)> {
    let code = affiliates::create_code(&state.db, caller.user_id)
        .await
        .map_err(|error| problem(error, "status"))?;
    Ok((StatusCode::CREATED, Json(NewAffiliateCode { code })))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AffiliateDashboard {
    pub affiliate: Affiliate,
    /// The advertisers one brought and what their commissions were earned on.
    pub advertisers: Vec<Attributed>,
    /// Commissions by calendar month (UTC), token and state.
    pub by_month: Vec<MonthTotal>,
    /// The latest commissions, each with its state.
    pub commissions: Vec<Commission>,
    /// Earnings per token as the claim sees them: held, released, pending, claimable, claimed.
    pub payouts: Payouts,
}

/// An affiliate's dashboard.
#[utoipa::path(
    get, path = "/affiliates/me/dashboard", tag = "affiliates", security(("bearer" = ["affiliate"])),
    responses((status = 200, body = AffiliateDashboard), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema), (status = 503, body = ProblemSchema))
)]
async fn dashboard(State(state): State<AppState>, caller: Caller<Affiliates>) -> ApiResult<Json<AffiliateDashboard>> {
    let escrow = state
        .config
        .escrow_address
        .ok_or(ApiError::Unavailable("the escrow address is not configured".into()))?;
    let chain_id = state.config.chain_id;
    let affiliate = affiliates::get(&state.db, caller.user_id)
        .await
        .map_err(|error| problem(error, "status"))?;
    let (advertisers, commissions, payouts) = tokio::try_join!(
        commissions::attributed(&state.db, caller.user_id),
        commissions::of_affiliate(&state.db, chain_id, caller.user_id),
        payouts::payouts(&state.db, chain_id, escrow, caller.address),
    )?;
    Ok(Json(AffiliateDashboard {
        affiliate,
        advertisers,
        by_month: commissions::by_month(&commissions),
        commissions,
        payouts,
    }))
}

/// Every affiliate, pending applications first.
#[utoipa::path(
    get, path = "/admin/affiliates", tag = "affiliates", security(("bearer" = ["admin"])),
    responses((status = 200, body = [Affiliate]), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, _: Caller<Admins>) -> ApiResult<Json<Vec<Affiliate>>> {
    Ok(Json(affiliates::list(&state.db).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffiliateStatusChange {
    /// `active` approves (or reinstates), `suspended`, `terminated`.
    pub status: Status,
    #[schema(value_type = crate::platform::wire::schema::Reason)]
    pub reason: String,
}

/// Moves an affiliate along its workflow: pending -> active; active <-> suspended; any of
/// them -> terminated (final). A move the workflow forbids is 409 naming the current status.
#[utoipa::path(
    post, path = "/admin/affiliates/{id}/status", tag = "affiliates", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = AffiliateStatusChange,
    responses(
        (status = 200, body = Affiliate), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn change_status(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Path(user): Path<Uuid>,
    Json(request): Json<AffiliateStatusChange>,
) -> ApiResult<Json<Affiliate>> {
    let reason = Reason::parse(&request.reason).at("reason")?;
    let affiliate = affiliates::change_status(&state.db, user, request.status, admin.user_id, reason.as_str())
        .await
        .map_err(|error| problem(error, "status"))?;
    Ok(Json(affiliate))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffiliateRateChange {
    /// Basis points of the platform's share, from 1 to the configured maximum.
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_bps: u32,
    #[schema(value_type = crate::platform::wire::schema::Reason)]
    pub reason: String,
}

/// Sets an affiliate's rate; commissions already accrued keep theirs.
#[utoipa::path(
    put, path = "/admin/affiliates/{id}/rate", tag = "affiliates", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = AffiliateRateChange,
    responses(
        (status = 200, body = Affiliate), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn set_rate(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Path(user): Path<Uuid>,
    Json(request): Json<AffiliateRateChange>,
) -> ApiResult<Json<Affiliate>> {
    let reason = Reason::parse(&request.reason).at("reason")?;
    let affiliate = affiliates::set_rate(
        &state.db,
        &state.growth.affiliates,
        user,
        request.rate_bps,
        admin.user_id,
        reason.as_str(),
    )
    .await
    .map_err(|error| problem(error, "rateBps"))?;
    Ok(Json(affiliate))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAdjustment {
    pub batch_id: i64,
    /// Positions of billed receipts in the batch, 1 to 1000 distinct ones.
    #[schema(min_items = 1, max_items = 1000)]
    pub positions: Vec<u32>,
    #[schema(value_type = crate::platform::wire::schema::Reason)]
    pub reason: String,
}

/// Reverses billed receipts found fraudulent later: their price goes back to their
/// advertisers (claimable), and commissions on them are clawed back pro rata.
#[utoipa::path(
    post, path = "/admin/adjustments", tag = "affiliates", security(("bearer" = ["admin"])), request_body = NewAdjustment,
    responses(
        (status = 201, body = Adjustment), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn adjust(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Json(request): Json<NewAdjustment>,
) -> ApiResult<(StatusCode, Json<Adjustment>)> {
    let reason = Reason::parse(&request.reason).at("reason")?;
    let mut positions: Vec<i32> = request
        .positions
        .iter()
        .map(|p| i32::try_from(*p))
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::invalid("positions", "no batch has receipts at such positions"))?;
    positions.sort_unstable();
    positions.dedup();
    if positions.is_empty() || positions.len() != request.positions.len() || positions.len() > 1000 {
        return Err(ApiError::invalid("positions", "must be 1 to 1000 distinct positions"));
    }
    let adjustment = adjustments::reverse(
        &state.db,
        state.config.chain_id,
        request.batch_id,
        &positions,
        reason.as_str(),
        admin.user_id,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(adjustment)))
}

/// An affiliate refusal as a problem; `field` names what a code came in (sign-in's
/// `referral`, a campaign's `affiliateCode`) or what the caller asked to change.
pub fn problem(error: AffiliateError, field: &str) -> ApiError {
    let message = error.to_string();
    match error {
        AffiliateError::NotAnAffiliate => ApiError::NotFound("affiliate"),
        AffiliateError::AlreadyApplied(_) | AffiliateError::Workflow { .. } | AffiliateError::NotActive(_) => {
            ApiError::conflict("status", message)
        }
        AffiliateError::RateOutOfBounds { .. } => ApiError::invalid("rateBps", message),
        AffiliateError::UnknownCode | AffiliateError::CodeInactive | AffiliateError::SelfReferral => {
            ApiError::invalid(field, message)
        }
        AffiliateError::AlreadyAttributed | AffiliateError::NotFirstSignIn => ApiError::conflict(field, message),
        AffiliateError::Account(error) => error.into(),
        AffiliateError::Ledger(LedgerError::Database(error)) | AffiliateError::Database(error) => error.into(),
        AffiliateError::Ledger(error) => ApiError::conflict(field, error.to_string()),
        AffiliateError::Hold(error) => error.into(),
    }
}

impl From<AdjustmentError> for ApiError {
    fn from(error: AdjustmentError) -> Self {
        let message = error.to_string();
        match error {
            AdjustmentError::UnknownBatch(_) => Self::NotFound("receipt batch"),
            AdjustmentError::UnknownReceipts(_) => Self::invalid("positions", message),
            AdjustmentError::AlreadyReversed(_) => Self::conflict("positions", message),
            AdjustmentError::Ledger(LedgerError::Database(error)) | AdjustmentError::Database(error) => error.into(),
            AdjustmentError::Ledger(error) => Self::conflict("positions", error.to_string()),
        }
    }
}
