//! Referral rewards over HTTP: one's code, link, referrals and snapshot; the rules and
//! every referrer's standing for admins.

use std::time::Duration;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Admins, Caller, SignedIn};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path, Query};
use crate::accounts;
use crate::adserver::campaigns::CampaignToken;
use crate::money::PositiveAmount;
use crate::money::ledger::LedgerError;
use crate::platform::values::{At, Bounded};
use crate::programs::growth::SignUpError;
use crate::programs::referrals::assess::Referral;
use crate::programs::referrals::bonuses::{self, Snapshot};
use crate::programs::referrals::rules::{self, NewRules, Rules, TokenRule};
use crate::programs::referrals::{MyCode, ReferralError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_code, set_limit))
        .routes(routes!(my_referrals))
        .routes(routes!(my_snapshot))
        .routes(routes!(recompute))
        .routes(routes!(get_rules, set_rules))
        .routes(routes!(referrer_snapshot))
        .routes(routes!(referrer_referrals))
}

/// One's referral code (made on first ask) and a fresh link to share.
#[utoipa::path(
    get, path = "/referrals/me", tag = "referrals", security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = MyCode), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn my_code(State(state): State<AppState>, caller: Caller<SignedIn>) -> ApiResult<Json<MyCode>> {
    let mut conn = state.db.acquire().await?;
    let code = state
        .growth
        .referrals
        .my_code(&mut conn, caller.user_id, OffsetDateTime::now_utc())
        .await?;
    Ok(Json(code))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferralLimit {
    /// How many sign-ups the code may bring; `null` for no limit.
    #[schema(minimum = 1, maximum = 1000000)]
    pub use_limit: Option<i32>,
}

/// Sets how many sign-ups one's code may bring.
#[utoipa::path(
    patch, path = "/referrals/me", tag = "referrals", security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    request_body = ReferralLimit,
    responses(
        (status = 200, body = MyCode), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn set_limit(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Json(request): Json<ReferralLimit>,
) -> ApiResult<Json<MyCode>> {
    let limit = match request.use_limit {
        Some(limit) => Some(Bounded::<1, 1_000_000>::parse(limit).at("useLimit")?.get() as i32),
        None => None,
    };
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let code = state
        .growth
        .referrals
        .set_limit(&mut tx, caller.user_id, limit, OffsetDateTime::now_utc())
        .await?;
    tx.commit().await?;
    Ok(Json(code))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferralPageQuery {
    /// Referrals to skip, oldest first.
    #[param(minimum = 0, maximum = 10000000)]
    pub offset: Option<i64>,
    /// At most this many (1 to 500, 100 by default).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReferralPage {
    pub rule_version: i32,
    pub total: i64,
    pub referrals: Vec<Referral>,
}

async fn page_of(state: &AppState, referrer: Uuid, page: &ReferralPageQuery) -> ApiResult<ReferralPage> {
    let offset = Bounded::<0, 10_000_000>::parse(page.offset.unwrap_or(0))
        .at("offset")?
        .get() as usize;
    let limit = Bounded::<1, 500>::parse(page.limit.unwrap_or(100)).at("limit")?.get() as usize;
    let mut conn = state.db.acquire().await?;
    let (rules, referrals) = bonuses::referrals(&mut conn, referrer, OffsetDateTime::now_utc()).await?;
    Ok(ReferralPage {
        rule_version: rules.version,
        total: referrals.len() as i64,
        referrals: referrals.into_iter().skip(offset).take(limit).collect(),
    })
}

/// One's referrals, oldest first, each with its status and the reason it does not qualify.
#[utoipa::path(
    get, path = "/referrals/me/referrals", tag = "referrals", params(ReferralPageQuery),
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = ReferralPage), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn my_referrals(
    State(state): State<AppState>,
    caller: Caller<SignedIn>,
    Query(page): Query<ReferralPageQuery>,
) -> ApiResult<Json<ReferralPage>> {
    Ok(Json(page_of(&state, caller.user_id, &page).await?))
}

/// One's snapshot now: referrals by status and reason, bonuses and badge.
#[utoipa::path(
    get, path = "/referrals/me/snapshot", tag = "referrals",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = Snapshot), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn my_snapshot(State(state): State<AppState>, caller: Caller<SignedIn>) -> ApiResult<Json<Snapshot>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        bonuses::snapshot(&mut conn, caller.user_id, OffsetDateTime::now_utc()).await?,
    ))
}

/// Recomputes one's bonuses now (the scheduled job does the same) and answers the snapshot.
#[utoipa::path(
    post, path = "/referrals/me/recompute", tag = "referrals",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = Snapshot), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema), (status = 409, body = ProblemSchema))
)]
async fn recompute(State(state): State<AppState>, caller: Caller<SignedIn>) -> ApiResult<Json<Snapshot>> {
    let platform = state.growth.affiliates.platform;
    let (_, snapshot) = bonuses::recompute(
        &state.db,
        state.config.chain_id,
        platform,
        caller.user_id,
        OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(Json(snapshot))
}

/// The referral rules in force.
#[utoipa::path(
    get, path = "/admin/referrals/rules", tag = "referrals", security(("bearer" = ["admin"])),
    responses((status = 200, body = Rules), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn get_rules(State(state): State<AppState>, _: Caller<Admins>) -> ApiResult<Json<Rules>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(rules::current(&mut conn).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReferralTokenRule {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    pub token: alloy::primitives::Address,
    #[schema(value_type = PositiveAmount)]
    pub min_billed: crate::money::Amount,
    #[schema(value_type = PositiveAmount)]
    pub min_earned: crate::money::Amount,
    #[schema(value_type = PositiveAmount)]
    pub bonus: crate::money::Amount,
    /// A program budget in this token.
    pub budget_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReferralRules {
    /// A bonus for every this many qualified referrals (1 to 1000).
    #[schema(minimum = 1, maximum = 1000)]
    pub milestone: i64,
    /// Seconds (0 to 365 days).
    #[schema(minimum = 0, maximum = 31536000)]
    pub cooldown_secs: i64,
    /// Seconds (0 to 365 days).
    #[schema(minimum = 0, maximum = 31536000)]
    pub network_window_secs: i64,
    pub require_network: bool,
    /// At most 20 tokens, each once.
    #[schema(max_items = 20)]
    pub tokens: Vec<NewReferralTokenRule>,
}

/// Puts new referral rules in force, as the next version.
#[utoipa::path(
    put, path = "/admin/referrals/rules", tag = "referrals", security(("bearer" = ["admin"])), request_body = NewReferralRules,
    responses(
        (status = 200, body = Rules), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema),
        (status = 422, body = ProblemSchema),
    )
)]
async fn set_rules(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Json(request): Json<NewReferralRules>,
) -> ApiResult<Json<Rules>> {
    const YEAR: i64 = 365 * 86_400;
    if request.tokens.len() > 20 {
        return Err(ApiError::invalid("tokens", "must have at most 20 entries"));
    }
    let mut tokens = Vec::with_capacity(request.tokens.len());
    for (index, rule) in request.tokens.iter().enumerate() {
        let field = |name: &str| format!("tokens[{index}].{name}");
        for (name, amount) in [
            ("minBilled", rule.min_billed),
            ("minEarned", rule.min_earned),
            ("bonus", rule.bonus),
        ] {
            if amount.is_zero() {
                return Err(ApiError::invalid(field(name), "must be more than zero"));
            }
        }
        tokens.push(TokenRule {
            token: CampaignToken::parse(rule.token).at(field("token"))?.get(),
            min_billed: rule.min_billed,
            min_earned: rule.min_earned,
            bonus: rule.bonus,
            budget_id: rule.budget_id,
        });
    }
    let new = NewRules {
        milestone: Bounded::<1, 1000>::parse(request.milestone).at("milestone")?.get() as i32,
        cooldown: Duration::from_secs(
            Bounded::<0, YEAR>::parse(request.cooldown_secs)
                .at("cooldownSecs")?
                .get() as u64,
        ),
        network_window: Duration::from_secs(
            Bounded::<0, YEAR>::parse(request.network_window_secs)
                .at("networkWindowSecs")?
                .get() as u64,
        ),
        require_network: request.require_network,
        tokens,
    };
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let rules = rules::create(&mut tx, &new, admin.user_id).await?;
    tx.commit().await?;
    tracing::info!(admin = %admin.user_id, version = rules.version, "referral rules changed");
    Ok(Json(rules))
}

/// A referrer's snapshot now.
#[utoipa::path(
    get, path = "/admin/referrals/{id}/snapshot", tag = "referrals", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Snapshot), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn referrer_snapshot(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(user): Path<Uuid>,
) -> ApiResult<Json<Snapshot>> {
    accounts::user(&state.db, user).await?;
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        bonuses::snapshot(&mut conn, user, OffsetDateTime::now_utc()).await?,
    ))
}

/// A referrer's referrals, oldest first, with their status and reason.
#[utoipa::path(
    get, path = "/admin/referrals/{id}/referrals", tag = "referrals", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path), ReferralPageQuery),
    responses((status = 200, body = ReferralPage), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn referrer_referrals(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(user): Path<Uuid>,
    Query(page): Query<ReferralPageQuery>,
) -> ApiResult<Json<ReferralPage>> {
    accounts::user(&state.db, user).await?;
    Ok(Json(page_of(&state, user, &page).await?))
}

impl From<ReferralError> for ApiError {
    fn from(error: ReferralError) -> Self {
        let message = error.to_string();
        match error {
            ReferralError::UnknownCode | ReferralError::BadLink | ReferralError::LinkExpired(_) => {
                Self::invalid("referral", message)
            }
            ReferralError::OwnerDisabled | ReferralError::SelfReferral => Self::invalid("referral", message),
            ReferralError::Exhausted | ReferralError::NotFirstSignIn => Self::conflict("referral", message),
            ReferralError::LimitBelowUses { .. } => Self::conflict("useLimit", message),
            ReferralError::Rules(_) => Self::invalid("tokens", message),
            ReferralError::Ledger(LedgerError::Database(error)) | ReferralError::Database(error) => error.into(),
            ReferralError::Ledger(error) => Self::conflict("referral", error.to_string()),
            ReferralError::Hold(error) => error.into(),
        }
    }
}

impl From<SignUpError> for ApiError {
    fn from(error: SignUpError) -> Self {
        match error {
            SignUpError::Account(error) => error.into(),
            SignUpError::Referral(error) => error.into(),
            SignUpError::Affiliate(error) => super::affiliates::problem(error, "referral"),
            SignUpError::Database(error) => error.into(),
        }
    }
}
