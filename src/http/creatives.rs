//! Ad sets and ads over HTTP. Each belongs to one of the caller's campaigns; naming another
//! advertiser's campaign or ad set is refused as an unknown id, so ids do not leak.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Caller, CampaignManagers};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path, Query};
use crate::accounts::Principal;
use crate::adserver::creatives::{self, Ad, AdFields, AdSet, BodyText, Creative, CreativeFields, Filter, Title};
use crate::adserver::pricing::PriceList;
use crate::platform::values::{At, Name, WebUrl};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_ad_set, list_ad_sets))
        .routes(routes!(get_ad_set, update_ad_set))
        .routes(routes!(create_ad, list_ads))
        .routes(routes!(get_ad, update_ad))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreativeQuery {
    pub campaign_id: Option<Uuid>,
    pub ad_set_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAdSet {
    pub campaign_id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Creates an ad set in one of the caller's campaigns.
#[utoipa::path(
    post, path = "/ad-sets", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), request_body = CreateAdSet,
    responses((status = 201, body = AdSet), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn create_ad_set(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Json(request): Json<CreateAdSet>,
) -> ApiResult<(StatusCode, Json<AdSet>)> {
    let name = Name::parse(&request.name).at("name")?;
    let ad_set =
        creatives::create_ad_set(&state.db, principal.scope(), request.campaign_id, &name, request.active).await?;
    Ok((StatusCode::CREATED, Json(ad_set)))
}

async fn find_ad_set(state: &AppState, principal: &Principal, id: Uuid) -> ApiResult<AdSet> {
    creatives::find_ad_set(&state.db, id, principal.scope())
        .await?
        .ok_or(ApiError::NotFound("ad set"))
}

/// The caller's ad sets, optionally of one campaign.
#[utoipa::path(
    get, path = "/ad-sets", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(CreativeQuery),
    responses((status = 200, body = [AdSet]))
)]
async fn list_ad_sets(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Query(query): Query<CreativeQuery>,
) -> ApiResult<Json<Vec<AdSet>>> {
    let filter = Filter {
        campaign_id: query.campaign_id,
        scope: principal.scope(),
        ..Filter::default()
    };
    Ok(Json(creatives::select_ad_sets(&state.db, filter).await?))
}

/// One ad set.
#[utoipa::path(
    get, path = "/ad-sets/{id}", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = AdSet), (status = 404, body = ProblemSchema))
)]
async fn get_ad_set(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AdSet>> {
    Ok(Json(find_ad_set(&state, &principal, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAdSet {
    #[schema(value_type = Option<crate::platform::wire::schema::Name>)]
    pub name: Option<String>,
    pub active: Option<bool>,
}

/// Renames an ad set or turns it on or off.
#[utoipa::path(
    patch, path = "/ad-sets/{id}", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    request_body = UpdateAdSet,
    responses((status = 200, body = AdSet), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn update_ad_set(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateAdSet>,
) -> ApiResult<Json<AdSet>> {
    let current = find_ad_set(&state, &principal, id).await?;
    let name = Name::parse(request.name.as_deref().unwrap_or(&current.name)).at("name")?;
    let active = request.active.unwrap_or(current.active);
    Ok(Json(
        creatives::update_ad_set(&state.db, id, principal.scope(), &name, active).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAd {
    pub ad_set_id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
    pub creative: Creative,
    /// The ad's own prices; events left out use the token's default.
    #[serde(default)]
    pub prices: PriceList,
}

/// Parses an ad's settings, naming the field of the first refused (create and update
/// share this).
fn parse(name: &str, active: bool, creative: Creative, prices: PriceList) -> ApiResult<AdFields> {
    let name = Name::parse(name).at("name")?;
    let title = Title::parse(&creative.title).at("creative.title")?;
    let text = BodyText::parse(&creative.text).at("creative.text")?;
    let click_url = WebUrl::parse(creative.click_url).at("creative.clickUrl")?;
    let media_url = creative
        .media_url
        .map(WebUrl::parse)
        .transpose()
        .at("creative.mediaUrl")?;
    let creative = CreativeFields::new(creative.kind, title, text, click_url, media_url)?;
    let prices = prices.to_unit_prices().map_err(|invalid| invalid.within("prices"))?;
    Ok(AdFields {
        name,
        active,
        creative,
        prices,
    })
}

/// Creates an ad in one of the caller's ad sets.
#[utoipa::path(
    post, path = "/ads", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), request_body = CreateAd,
    responses((status = 201, body = Ad), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn create_ad(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Json(request): Json<CreateAd>,
) -> ApiResult<(StatusCode, Json<Ad>)> {
    let fields = parse(&request.name, request.active, request.creative, request.prices)?;
    let ad = creatives::create_ad(&state.db, principal.scope(), request.ad_set_id, &fields).await?;
    Ok((StatusCode::CREATED, Json(ad)))
}

async fn find_ad(state: &AppState, principal: &Principal, id: Uuid) -> ApiResult<Ad> {
    creatives::find_ad(&state.db, id, principal.scope())
        .await?
        .ok_or(ApiError::NotFound("ad"))
}

/// The caller's ads, optionally of one campaign or ad set.
#[utoipa::path(
    get, path = "/ads", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(CreativeQuery),
    responses((status = 200, body = [Ad]))
)]
async fn list_ads(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Query(query): Query<CreativeQuery>,
) -> ApiResult<Json<Vec<Ad>>> {
    let filter = Filter {
        campaign_id: query.campaign_id,
        ad_set_id: query.ad_set_id,
        scope: principal.scope(),
        ..Filter::default()
    };
    Ok(Json(creatives::select_ads(&state.db, filter).await?))
}

/// One ad.
#[utoipa::path(
    get, path = "/ads/{id}", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Ad), (status = 404, body = ProblemSchema))
)]
async fn get_ad(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Ad>> {
    Ok(Json(find_ad(&state, &principal, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAd {
    #[schema(value_type = Option<crate::platform::wire::schema::Name>)]
    pub name: Option<String>,
    pub active: Option<bool>,
    pub creative: Option<Creative>,
    /// Replaces all of the ad's own prices.
    pub prices: Option<PriceList>,
}

/// Changes an ad; members left out keep their value.
#[utoipa::path(
    patch, path = "/ads/{id}", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    request_body = UpdateAd,
    responses((status = 200, body = Ad), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn update_ad(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateAd>,
) -> ApiResult<Json<Ad>> {
    let current = find_ad(&state, &principal, id).await?;
    let fields = parse(
        request.name.as_deref().unwrap_or(&current.name),
        request.active.unwrap_or(current.active),
        request.creative.unwrap_or(current.creative),
        request.prices.unwrap_or(current.prices),
    )?;
    Ok(Json(
        creatives::update_ad(&state.db, id, principal.scope(), &fields).await?,
    ))
}
