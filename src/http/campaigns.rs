//! Campaigns over HTTP: create and change them, move them through the status machine, read
//! their history and analytics.

use alloy::primitives::{Address, B256};
use axum::extract::State;
use axum::http::StatusCode;
use rand::Rng;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Advertisers, Caller, CampaignManagers};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path, Query};
use crate::accounts::Principal;
use crate::adserver::analytics::{self, CampaignAnalytics, DateRange};
use crate::adserver::brands;
use crate::adserver::campaigns::{
    self, Audience, Campaign, CampaignFields, CampaignStatus, CampaignToken, Caps, Change, Dates, DaypartWindow,
    Filter, FrequencyCaps, HourlyCap, Priority, Reason, StatusCause, StatusChange, Targeting,
};
use crate::platform::values::{At, Date, Instant, Labels, Name};
use crate::programs::affiliates;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_campaign, update))
        .routes(routes!(change_status))
        .routes(routes!(history))
        .routes(routes!(campaign_analytics))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCampaign {
    pub brand_id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    /// The ERC-20 token the campaign pays in.
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    pub token: Address,
    /// The escrow campaign id to use; a random one is chosen when left out.
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub chain_campaign_id: Option<B256>,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub daypart: Option<DaypartWindow>,
    #[serde(default)]
    pub targeting: Targeting,
    /// Defaults to 3 impressions and 1 click per viewer per ad per hour.
    #[serde(default)]
    pub frequency_caps: FrequencyCaps,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub priority: i32,
    /// An affiliate's code (`AFF…`) that brought you: attributes you to that affiliate, once
    /// and for good. A code that does not count refuses the campaign.
    #[schema(value_type = Option<crate::platform::wire::schema::AffiliateCode>)]
    pub affiliate_code: Option<String>,
}

/// A campaign's settings as a request gives them, before parsing.
struct Settings {
    name: String,
    token: Address,
    chain_campaign_id: B256,
    starts_at: OffsetDateTime,
    ends_at: OffsetDateTime,
    daypart: Option<DaypartWindow>,
    targeting: Targeting,
    frequency_caps: FrequencyCaps,
    priority: i32,
}

/// Parses every setting, naming the field of the first refused (create and update share
/// this).
fn parse(settings: Settings) -> ApiResult<CampaignFields> {
    let name = Name::parse(&settings.name).at("name")?;
    let token = CampaignToken::parse(settings.token).at("token")?;
    let starts_at = Instant::parse(settings.starts_at).at("startsAt")?;
    let ends_at = Instant::parse(settings.ends_at).at("endsAt")?;
    let dates = Dates::new(starts_at, ends_at)?;
    let daypart = settings.daypart.map(DaypartWindow::parse).transpose().at("daypart")?;
    let targeting = &settings.targeting;
    let audience = Audience {
        regions: Labels::parse(&targeting.regions).at("targeting.regions")?,
        communities: Labels::parse(&targeting.communities).at("targeting.communities")?,
        user_types: Labels::parse(&targeting.user_types).at("targeting.userTypes")?,
        consent_scope: targeting.consent_scope,
    };
    let caps = settings.frequency_caps;
    let caps = Caps {
        impressions_per_hour: HourlyCap::parse(caps.impressions_per_hour).at("frequencyCaps.impressionsPerHour")?,
        clicks_per_hour: HourlyCap::parse(caps.clicks_per_hour).at("frequencyCaps.clicksPerHour")?,
    };
    Ok(CampaignFields {
        name,
        token,
        chain_campaign_id: settings.chain_campaign_id,
        dates,
        daypart,
        audience,
        caps,
        priority: Priority::parse(settings.priority).at("priority")?,
    })
}

/// Creates a campaign, as a DRAFT, under one of the caller's brands.
#[utoipa::path(
    post, path = "/campaigns", tag = "campaigns", security(("bearer" = ["advertiser"])), request_body = CreateCampaign,
    responses(
        (status = 201, body = Campaign), (status = 403, body = ProblemSchema),
        (status = 409, description = "The escrow campaign id is taken, or the caller is attributed already", body = ProblemSchema),
        (status = 422, body = ProblemSchema),
    )
)]
async fn create(
    State(state): State<AppState>,
    principal: Caller<Advertisers>,
    Json(request): Json<CreateCampaign>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    let fields = parse(Settings {
        name: request.name,
        token: request.token,
        chain_campaign_id: request
            .chain_campaign_id
            .unwrap_or_else(|| B256::from(rand::rng().random::<[u8; 32]>())),
        starts_at: request.starts_at,
        ends_at: request.ends_at,
        daypart: request.daypart,
        targeting: request.targeting,
        frequency_caps: request.frequency_caps,
        priority: request.priority,
    })?;
    let now = OffsetDateTime::now_utc();
    let attribute = async |conn: &mut sqlx::PgConnection| -> ApiResult<()> {
        if let Some(code) = &request.affiliate_code {
            let terms = &state.growth.affiliates;
            affiliates::attribute(conn, terms, principal.user_id, code, affiliates::Channel::Campaign, now)
                .await
                .map_err(|error| super::affiliates::problem(error, "affiliateCode"))?;
        }
        Ok(())
    };
    let campaign = campaigns::create_with(
        &state.db,
        principal.scope(),
        request.brand_id,
        &fields,
        principal.user_id,
        now,
        attribute,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(campaign)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CampaignQuery {
    /// Only this brand's campaigns.
    pub brand_id: Option<Uuid>,
}

/// The caller's campaigns (every campaign for admins).
#[utoipa::path(
    get, path = "/campaigns", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(CampaignQuery),
    responses((status = 200, body = [Campaign]), (status = 401, body = ProblemSchema))
)]
async fn list(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Query(query): Query<CampaignQuery>,
) -> ApiResult<Json<Vec<Campaign>>> {
    let filter = Filter {
        brand_id: query.brand_id,
        scope: principal.scope(),
        ..Filter::default()
    };
    Ok(Json(campaigns::select(&state.db, filter).await?))
}

async fn find(state: &AppState, principal: &Principal, id: Uuid) -> ApiResult<Campaign> {
    campaigns::find(&state.db, id, principal.scope())
        .await?
        .ok_or(ApiError::NotFound("campaign"))
}

/// One campaign.
#[utoipa::path(
    get, path = "/campaigns/{id}", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Campaign), (status = 404, body = ProblemSchema))
)]
async fn get_campaign(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Campaign>> {
    Ok(Json(find(&state, &principal, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCampaign {
    #[schema(value_type = Option<crate::platform::wire::schema::Name>)]
    pub name: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub starts_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// `null` removes the daypart.
    #[schema(value_type = Option<DaypartWindow>)]
    #[serde(default, deserialize_with = "crate::platform::wire::double_option")]
    pub daypart: Option<Option<DaypartWindow>>,
    pub targeting: Option<Targeting>,
    pub frequency_caps: Option<FrequencyCaps>,
    #[schema(minimum = 0, maximum = 100)]
    pub priority: Option<i32>,
}

/// Changes a campaign's settings; members left out keep their value. The token and escrow
/// campaign id are fixed at creation. A completed campaign no longer changes.
#[utoipa::path(
    patch, path = "/campaigns/{id}", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    request_body = UpdateCampaign,
    responses(
        (status = 200, body = Campaign), (status = 404, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn update(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateCampaign>,
) -> ApiResult<Json<Campaign>> {
    let current = find(&state, &principal, id).await?;
    let fields = parse(Settings {
        name: request.name.unwrap_or(current.name),
        token: current.token,
        chain_campaign_id: current.chain_campaign_id,
        starts_at: request.starts_at.unwrap_or(current.starts_at),
        ends_at: request.ends_at.unwrap_or(current.ends_at),
        daypart: request.daypart.unwrap_or(current.daypart),
        targeting: request.targeting.unwrap_or(current.targeting),
        frequency_caps: request.frequency_caps.unwrap_or(current.frequency_caps),
        priority: request.priority.unwrap_or(current.priority),
    })?;
    Ok(Json(
        campaigns::update(&state.db, id, principal.scope(), &fields).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeStatus {
    /// `SCHEDULED` (from DRAFT), `PAUSED`, `RUNNING` (from PAUSED) or `COMPLETED`.
    pub status: CampaignStatus,
    /// Recorded in the campaign's history.
    #[schema(value_type = Option<crate::platform::wire::schema::Reason>)]
    pub reason: Option<String>,
}

/// Moves a campaign through its status machine. A change the machine does not allow from
/// the current status is a 409 that names it.
#[utoipa::path(
    post, path = "/campaigns/{id}/status", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    request_body = ChangeStatus,
    responses(
        (status = 200, body = Campaign), (status = 404, body = ProblemSchema),
        (status = 409, description = "Not allowed from the current status", body = ProblemSchema),
    )
)]
async fn change_status(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
    Json(request): Json<ChangeStatus>,
) -> ApiResult<Json<Campaign>> {
    let reason = request.reason.as_deref().map(Reason::parse).transpose().at("reason")?;
    let change = Change {
        to: request.status,
        cause: StatusCause::User,
        actor: Some(principal.user_id),
        reason: reason.as_ref().map_or("requested by the advertiser", Reason::as_str),
        at: OffsetDateTime::now_utc(),
    };
    campaigns::request_status(&state.db, id, principal.scope(), change).await?;
    Ok(Json(find(&state, &principal, id).await?))
}

/// Every status change of a campaign: who, when and why.
#[utoipa::path(
    get, path = "/campaigns/{id}/history", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [StatusChange]), (status = 404, body = ProblemSchema))
)]
async fn history(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<StatusChange>>> {
    find(&state, &principal, id).await?;
    Ok(Json(campaigns::history(&state.db, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// First local date (YYYY-MM-DD) in the brand's zone; defaults to 29 days before `to`.
    pub from: Option<String>,
    /// Last local date; defaults to today in the brand's zone.
    pub to: Option<String>,
}

/// A campaign's served and billed numbers, spend and budget, by ad, node and local day.
#[utoipa::path(
    get, path = "/campaigns/{id}/analytics", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])),
    params(("id" = Uuid, Path), AnalyticsQuery),
    responses((status = 200, body = CampaignAnalytics), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn campaign_analytics(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
    Query(query): Query<AnalyticsQuery>,
) -> ApiResult<Json<CampaignAnalytics>> {
    let campaign = find(&state, &principal, id).await?;
    let brand = brands::find(&state.db, campaign.brand_id, None)
        .await?
        .ok_or(ApiError::NotFound("brand"))?;
    let to = query.to.as_deref().map(Date::parse).transpose().at("to")?;
    let from = query.from.as_deref().map(Date::parse).transpose().at("from")?;
    let range = DateRange::in_zone(from, to, &brand.time_zone, jiff::Timestamp::now())?;
    let analytics = analytics::campaign(&state.db, state.config.chain_id, id, &brand.time_zone, range).await?;
    Ok(Json(analytics))
}
