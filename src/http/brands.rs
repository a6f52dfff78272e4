//! Brands over HTTP: advertisers manage their own; admins see all.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Advertisers, Caller, CampaignManagers};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::adserver::brands::{self, Brand, BrandFields, Budgets};
use crate::money::Amount;
use crate::platform::values::{At, Name, TimeZone};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_brand, update))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBrand {
    #[schema(value_type = crate::platform::wire::schema::Name, example = "Acme Coffee")]
    pub name: String,
    #[schema(value_type = crate::money::PositiveAmount)]
    pub daily_budget: Amount,
    /// At least the daily budget.
    #[schema(value_type = crate::money::PositiveAmount)]
    pub monthly_budget: Amount,
    #[schema(value_type = crate::platform::wire::schema::TimeZone, example = "Europe/Berlin")]
    pub time_zone: String,
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

/// Parses a brand's settings, naming the field of the first refused (create and update
/// share this).
fn parse(
    name: &str,
    daily_budget: Amount,
    monthly_budget: Amount,
    time_zone: &str,
    active: bool,
) -> ApiResult<BrandFields> {
    Ok(BrandFields {
        name: Name::parse(name).at("name")?,
        budgets: Budgets::new(daily_budget, monthly_budget)?,
        time_zone: TimeZone::parse(time_zone).at("timeZone")?,
        active,
    })
}

/// Creates a brand owned by the caller. Needs the advertiser role.
#[utoipa::path(
    post, path = "/brands", tag = "campaigns", security(("bearer" = ["advertiser"])), request_body = CreateBrand,
    responses((status = 201, body = Brand), (status = 403, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn create(
    State(state): State<AppState>,
    principal: Caller<Advertisers>,
    Json(request): Json<CreateBrand>,
) -> ApiResult<(StatusCode, Json<Brand>)> {
    let fields = parse(
        &request.name,
        request.daily_budget,
        request.monthly_budget,
        &request.time_zone,
        request.active,
    )?;
    let brand = brands::insert(&state.db, principal.user_id, &fields).await?;
    Ok((StatusCode::CREATED, Json(brand)))
}

/// The caller's brands (every brand for admins).
#[utoipa::path(
    get, path = "/brands", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])),
    responses((status = 200, body = [Brand]), (status = 401, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, principal: Caller<CampaignManagers>) -> ApiResult<Json<Vec<Brand>>> {
    Ok(Json(brands::list(&state.db, principal.scope()).await?))
}

/// One brand.
#[utoipa::path(
    get, path = "/brands/{id}", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Brand), (status = 404, body = ProblemSchema))
)]
async fn get_brand(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Brand>> {
    let brand = brands::find(&state.db, id, principal.scope()).await?;
    brand.map(Json).ok_or(ApiError::NotFound("brand"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateBrand {
    #[schema(value_type = Option<crate::platform::wire::schema::Name>)]
    pub name: Option<String>,
    #[schema(value_type = Option<crate::money::PositiveAmount>)]
    pub daily_budget: Option<Amount>,
    #[schema(value_type = Option<crate::money::PositiveAmount>)]
    pub monthly_budget: Option<Amount>,
    #[schema(value_type = Option<crate::platform::wire::schema::TimeZone>)]
    pub time_zone: Option<String>,
    pub active: Option<bool>,
}

/// Changes a brand's settings; members left out keep their value.
#[utoipa::path(
    patch, path = "/brands/{id}", tag = "campaigns", security(("bearer" = ["advertiser", "admin"])), params(("id" = Uuid, Path)),
    request_body = UpdateBrand,
    responses((status = 200, body = Brand), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn update(
    State(state): State<AppState>,
    principal: Caller<CampaignManagers>,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdateBrand>,
) -> ApiResult<Json<Brand>> {
    let current = brands::find(&state.db, id, principal.scope())
        .await?
        .ok_or(ApiError::NotFound("brand"))?;
    let fields = parse(
        request.name.as_deref().unwrap_or(&current.name),
        request.daily_budget.unwrap_or(current.daily_budget),
        request.monthly_budget.unwrap_or(current.monthly_budget),
        request.time_zone.as_deref().unwrap_or(&current.time_zone),
        request.active.unwrap_or(current.active),
    )?;
    Ok(Json(brands::update(&state.db, id, principal.scope(), &fields).await?))
}
