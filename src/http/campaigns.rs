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

use super::access::{Advertisers, Caller, CampaignManagers};
use super::error::{ApiError, ApiResult, ProblemSchema, on_unique};
use super::extract::{Json, Path, Query};
use super::{AppState, validate};
use crate::accounts::Principal;
use crate::adserver::analytics::{self, CampaignAnalytics};
use crate::adserver::brands;
use crate::adserver::campaigns::{
    self, Campaign, CampaignFields, CampaignStatus, Change, ChangeError, DaypartWindow, Filter, FrequencyCaps,
    StatusCause, StatusChange, Targeting,
};
use crate::adserver::schedule;

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
}

/// Checks a campaign's settings as a whole and normalizes them (create and update share this).
fn checked(mut fields: CampaignFields) -> ApiResult<CampaignFields> {
    fields.name = validate::name("name", &fields.name)?.to_owned();
    if fields.token == Address::ZERO {
        return Err(ApiError::invalid("token", "must be a token contract address"));
    }
    if fields.ends_at <= fields.starts_at {
        return Err(ApiError::invalid("endsAt", "must be after startsAt"));
    }
    validate::instant("startsAt", fields.starts_at)?;
    validate::instant("endsAt", fields.ends_at)?;
    if let Some(window) = fields.daypart
        && window.daypart().is_none()
    {
        return Err(ApiError::invalid(
            "daypart",
            "hours must be 0 to 23 and differ; an end before the start runs past midnight",
        ));
    }
    let targeting = &fields.targeting;
    fields.targeting = Targeting {
        regions: validate::labels("targeting.regions", &targeting.regions)?,
        communities: validate::labels("targeting.communities", &targeting.communities)?,
        user_types: validate::labels("targeting.userTypes", &targeting.user_types)?,
        consent_scope: targeting.consent_scope,
    };
    let caps = fields.frequency_caps;
    for (field, cap) in [
        ("frequencyCaps.impressionsPerHour", caps.impressions_per_hour),
        ("frequencyCaps.clicksPerHour", caps.clicks_per_hour),
    ] {
        if !(1..=1000).contains(&cap) {
            return Err(ApiError::invalid(field, "must be 1 to 1000"));
        }
    }
    if !(0..=100).contains(&fields.priority) {
        return Err(ApiError::invalid("priority", "must be 0 to 100"));
    }
    Ok(fields)
}

/// Creates a campaign, as a DRAFT, under one of the caller's brands.
#[utoipa::path(
    post, path = "/campaigns", tag = "campaigns", security(("bearer" = ["advertiser"])), request_body = CreateCampaign,
    responses(
        (status = 201, body = Campaign), (status = 403, body = ProblemSchema),
        (status = 409, description = "The escrow campaign id is taken", body = ProblemSchema),
        (status = 422, body = ProblemSchema),
    )
)]
async fn create(
    State(state): State<AppState>,
    principal: Caller<Advertisers>,
    Json(request): Json<CreateCampaign>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    brands::find(&state.db, request.brand_id, principal.scope())
        .await?
        .ok_or_else(|| ApiError::invalid("brandId", "no such brand among yours"))?;
    let now = OffsetDateTime::now_utc();
    if request.ends_at <= now {
        return Err(ApiError::invalid("endsAt", "must be in the future"));
    }
    let fields = checked(CampaignFields {
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
    let mut tx = state.db.begin().await?;
    let id = campaigns::insert(&mut tx, request.brand_id, &fields, principal.user_id, now)
        .await
        .map_err(|e| {
            on_unique(
                e,
                "campaigns_chain_campaign_id_key",
                "chainCampaignId",
                "another campaign uses this escrow campaign id",
            )
        })?;
    tx.commit().await?;
    let campaign = campaigns::find(&state.db, id, None)
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
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
    if current.status == CampaignStatus::Completed {
        return Err(ApiError::conflict(
            "status",
            "the campaign is COMPLETED and can no longer change",
        ));
    }
    let mut fields = CampaignFields::from(&current);
    fields.name = request.name.unwrap_or(fields.name);
    fields.starts_at = request.starts_at.unwrap_or(fields.starts_at);
    fields.ends_at = request.ends_at.unwrap_or(fields.ends_at);
    fields.daypart = request.daypart.unwrap_or(fields.daypart);
    fields.targeting = request.targeting.unwrap_or(fields.targeting);
    fields.frequency_caps = request.frequency_caps.unwrap_or(fields.frequency_caps);
    fields.priority = request.priority.unwrap_or(fields.priority);
    let fields = checked(fields)?;
    campaigns::update(&state.db, id, &fields).await?;
    Ok(Json(find(&state, &principal, id).await?))
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
    let reason = match request.reason.as_deref() {
        Some(reason) => validate::text("reason", reason, 1, 500)?,
        None => "requested by the advertiser",
    };
    let change = Change {
        to: request.status,
        cause: StatusCause::User,
        actor: Some(principal.user_id),
        reason,
        at: OffsetDateTime::now_utc(),
    };
    let mut tx = state.db.begin().await?;
    match campaigns::change_status(&mut tx, id, principal.scope(), change).await {
        Ok(_) => tx.commit().await?,
        Err(ChangeError::NotFound) => return Err(ApiError::NotFound("campaign")),
        Err(ChangeError::Refused { current, error }) => {
            return Err(ApiError::conflict(
                "status",
                format!("{error} (the campaign is {current})"),
            ));
        }
        Err(ChangeError::Database(error)) => return Err(error.into()),
    }
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
    let zone = schedule::zone(&brand.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let to = match query.to.as_deref() {
        Some(to) => validate::date("to", to)?,
        None => jiff::Timestamp::now().to_zoned(zone).date(),
    };
    let from = match query.from.as_deref() {
        Some(from) => validate::date("from", from)?,
        None => to.checked_sub(jiff::Span::new().days(29)).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::invalid("from", "must not be after to"));
    }
    if to.since(from).map_or(true, |span| span.get_days() > 366) {
        return Err(ApiError::invalid("from", "the range may cover at most 367 days"));
    }
    let analytics = analytics::campaign(&state.db, state.config.chain_id, id, &brand.time_zone, from, to).await?;
    Ok(Json(analytics))
}
