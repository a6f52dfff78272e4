//! Promotions over HTTP: admins create and steer them; anyone with a link sees the offer
//! (a visit in the funnel); advertisers redeem a code on one of their campaigns and follow
//! what it gave.

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Admins, Advertisers, Caller};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::money::Amount;
use crate::money::escrow::EscrowError;
use crate::money::ledger::LedgerError;
use crate::platform::values::{At, Instant, Name};
use crate::programs::promos::{
    self, Action, Limits, NewPromotion, Offer, PromoCode, PromoError, Promotion, PublicPromotion, Redemption,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get))
        .routes(routes!(act))
        .routes(routes!(show))
        .routes(routes!(redeem))
        .routes(routes!(mine))
}

impl From<PromoError> for ApiError {
    fn from(error: PromoError) -> Self {
        let message = error.to_string();
        match error {
            PromoError::Invalid { field, error } => Self::invalid(field, error.to_string()),
            PromoError::UnknownPromotion => Self::NotFound("promotion"),
            PromoError::UnknownBudget => Self::NotFound("program budget"),
            PromoError::UnknownCampaign => Self::NotFound("campaign"),
            PromoError::CodeTaken(_) => Self::conflict("code", message),
            PromoError::Workflow { .. } => Self::conflict("action", message),
            PromoError::NotRedeemable { .. }
            | PromoError::Exhausted
            | PromoError::AlreadyRedeemed(_)
            | PromoError::NotFirstTime => Self::conflict("code", message),
            PromoError::WrongToken(_) => Self::invalid("campaignId", message),
            PromoError::BelowMinimum { .. } | PromoError::CampaignNotOpen => Self::conflict("campaignId", message),
            PromoError::Budget(EscrowError::Database(error))
            | PromoError::Ledger(LedgerError::Database(error))
            | PromoError::Database(error) => error.into(),
            PromoError::Budget(_) | PromoError::Ledger(_) => Self::conflict("code", message),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePromotion {
    /// 4 to 32 letters, digits and inner hyphens, matched in any case; a `PROMO…` code is
    /// generated when left out.
    #[schema(pattern = "^\\s*[A-Za-z0-9][A-Za-z0-9-]{2,30}[A-Za-z0-9]\\s*$")]
    pub code: Option<String>,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    pub offer: Offer,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// Redemptions in all; no cap when left out.
    #[schema(minimum = 1, maximum = 2147483647)]
    pub max_redemptions: Option<u32>,
    /// Redemptions per advertiser; 1 when left out.
    #[schema(minimum = 1, maximum = 100)]
    pub per_user: Option<u32>,
    /// Only advertisers none of whose campaigns was ever billed.
    #[serde(default)]
    pub first_time_only: bool,
    /// The token redeemed campaigns pay in (an ad credit's is its budget's; required with
    /// `minBudget`).
    #[schema(value_type = Option<crate::platform::wire::schema::TokenAddress>)]
    pub token: Option<Address>,
    /// What the advertiser must itself have funded the campaign with, in `token`.
    #[schema(value_type = Option<crate::money::PositiveAmount>)]
    pub min_budget: Option<Amount>,
    /// Published at once (scheduled or active by its dates); a draft otherwise.
    #[serde(default)]
    pub publish: bool,
}

/// Creates a promotion.
#[utoipa::path(
    post, path = "/admin/promotions", tag = "promotions", security(("bearer" = ["admin"])),
    request_body = CreatePromotion,
    responses((status = 201, body = Promotion), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
              (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn create(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Json(request): Json<CreatePromotion>,
) -> ApiResult<(StatusCode, Json<Promotion>)> {
    let new = NewPromotion {
        code: request.code.as_deref().map(PromoCode::parse).transpose().at("code")?,
        name: Name::parse(&request.name).at("name")?,
        offer: request.offer,
        limits: Limits {
            max_redemptions: request.max_redemptions,
            per_user: request.per_user.unwrap_or(1),
            first_time_only: request.first_time_only,
            token: request.token,
            min_budget: request.min_budget,
        },
        starts_at: Instant::parse(request.starts_at).at("startsAt")?.get(),
        ends_at: Instant::parse(request.ends_at).at("endsAt")?.get(),
        publish: request.publish,
    };
    let promotion = promos::create(&state.db, new, admin.user_id, OffsetDateTime::now_utc()).await?;
    Ok((StatusCode::CREATED, Json(promotion)))
}

/// Every promotion, newest first, with its status and funnel.
#[utoipa::path(
    get, path = "/admin/promotions", tag = "promotions", security(("bearer" = ["admin"])),
    responses((status = 200, body = [Promotion]), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, _: Caller<Admins>) -> ApiResult<Json<Vec<Promotion>>> {
    Ok(Json(promos::list(&state.db, OffsetDateTime::now_utc()).await?))
}

/// One promotion with its funnel: link visits, redemptions, redeemed campaigns funded,
/// their spend since, and the fees waived.
#[utoipa::path(
    get, path = "/admin/promotions/{id}", tag = "promotions", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Promotion), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn get(State(state): State<AppState>, _: Caller<Admins>, Path(id): Path<Uuid>) -> ApiResult<Json<Promotion>> {
    Ok(Json(promos::get(&state.db, id, OffsetDateTime::now_utc()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromotionAction {
    pub action: Action,
}

/// Publishes a draft, pauses or resumes one, or ends it now. A move its status forbids is
/// 409 naming the status.
#[utoipa::path(
    post, path = "/admin/promotions/{id}/actions", tag = "promotions", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = PromotionAction,
    responses((status = 200, body = Promotion), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema),
              (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn act(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<PromotionAction>,
) -> ApiResult<Json<Promotion>> {
    Ok(Json(
        promos::change(&state.db, id, request.action, OffsetDateTime::now_utc()).await?,
    ))
}

/// A promotion's offer, for whoever follows its link (public; counted as a visit). Drafts
/// are not found.
#[utoipa::path(
    get, path = "/promotions/{code}", tag = "promotions",
    params(("code" = String, Path, description = "The promotion's code, in any case")),
    responses((status = 200, body = PublicPromotion), (status = 404, body = ProblemSchema))
)]
async fn show(State(state): State<AppState>, Path(code): Path<String>) -> ApiResult<Json<PublicPromotion>> {
    Ok(Json(promos::visit(&state.db, &code, OffsetDateTime::now_utc()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedeemPromotion {
    /// One of your campaigns: the one an ad credit funds (open on chain), and the one a
    /// minimum budget is counted on. Discounts and trials apply to all your campaigns.
    pub campaign_id: Uuid,
}

/// Redeems a promotion's code on one of your campaigns. An expired, exhausted, paused or
/// not yet active code, a second redemption past the promotion's limit, or a first-time
/// offer for an advertiser already billed is 409 naming `code`; nothing is written.
#[utoipa::path(
    post, path = "/promotions/{code}/redemptions", tag = "promotions", security(("bearer" = ["advertiser"])),
    params(("code" = String, Path, description = "The promotion's code, in any case")),
    request_body = RedeemPromotion,
    responses((status = 201, body = Redemption), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
              (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn redeem(
    State(state): State<AppState>,
    caller: Caller<Advertisers>,
    Path(code): Path<String>,
    Json(request): Json<RedeemPromotion>,
) -> ApiResult<(StatusCode, Json<Redemption>)> {
    let redeemed = promos::redeem(
        &state.db,
        state.config.chain_id,
        caller.user_id,
        &code,
        request.campaign_id,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(redeemed)))
}

/// Your redemptions and what each gave: a credit's funding on chain, a discount's end, a
/// trial's impressions used, and the fees waived.
#[utoipa::path(
    get, path = "/me/promotions", tag = "promotions", security(("bearer" = ["advertiser"])),
    responses((status = 200, body = [Redemption]), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn mine(State(state): State<AppState>, caller: Caller<Advertisers>) -> ApiResult<Json<Vec<Redemption>>> {
    Ok(Json(
        promos::mine(&state.db, state.config.chain_id, caller.user_id).await?,
    ))
}
