//! Placements and default prices over HTTP: anyone signed in reads them; admins change them.

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Admins, Caller, CatalogReaders};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::adserver::placements::{self, Description, MaxAds, Placement, PlacementFields, Slug};
use crate::adserver::pricing::{self, PriceList, TokenPrices};
use crate::platform::values::{At, Name};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update))
        .routes(routes!(list_prices))
        .routes(routes!(set_prices))
}

/// Every placement.
#[utoipa::path(
    get, path = "/placements", tag = "campaigns", security(("bearer" = ["advertiser", "hoster", "admin"])),
    responses((status = 200, body = [Placement]), (status = 401, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, _: Caller<CatalogReaders>) -> ApiResult<Json<Vec<Placement>>> {
    Ok(Json(placements::list(&state.db).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePlacement {
    /// Lowercase words joined by hyphens, as hosters name it.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 64, example = "footer-strip")]
    pub slug: String,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = crate::platform::wire::schema::Description)]
    pub description: String,
    /// 1 to 10.
    #[schema(minimum = 1, maximum = 10)]
    pub max_ads: i32,
}

fn parse(name: &str, description: &str, max_ads: i32) -> ApiResult<PlacementFields> {
    let max_ads = MaxAds::parse(max_ads).at("maxAds")?;
    Ok(PlacementFields {
        name: Name::parse(name).at("name")?,
        description: Description::parse(description).at("description")?,
        max_ads,
    })
}

/// Adds a placement. Admins only.
#[utoipa::path(
    post, path = "/placements", tag = "campaigns", security(("bearer" = ["admin"])), request_body = CreatePlacement,
    responses(
        (status = 201, body = Placement), (status = 403, body = ProblemSchema),
        (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema),
    )
)]
async fn create(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Json(request): Json<CreatePlacement>,
) -> ApiResult<(StatusCode, Json<Placement>)> {
    let slug = Slug::parse(&request.slug).at("slug")?;
    let fields = parse(&request.name, &request.description, request.max_ads)?;
    let placement = placements::insert(&state.db, &slug, &fields).await?;
    Ok((StatusCode::CREATED, Json(placement)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePlacement {
    #[schema(value_type = Option<crate::platform::wire::schema::Name>)]
    pub name: Option<String>,
    #[schema(value_type = Option<crate::platform::wire::schema::Description>)]
    pub description: Option<String>,
    #[schema(minimum = 1, maximum = 10)]
    pub max_ads: Option<i32>,
}

/// Changes a placement. Admins only.
#[utoipa::path(
    patch, path = "/placements/{id}", tag = "campaigns", security(("bearer" = ["admin"])), params(("id" = Uuid, Path)),
    request_body = UpdatePlacement,
    responses((status = 200, body = Placement), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn update(
    State(state): State<AppState>,
    _: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<UpdatePlacement>,
) -> ApiResult<Json<Placement>> {
    let current = placements::find(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("placement"))?;
    let fields = parse(
        request.name.as_deref().unwrap_or(&current.name),
        request.description.as_deref().unwrap_or(&current.description),
        request.max_ads.unwrap_or(current.max_ads),
    )?;
    Ok(Json(placements::update(&state.db, id, &fields).await?))
}

/// Default prices of every token. An ad's own price overrides its token's default.
#[utoipa::path(
    get, path = "/pricing", tag = "campaigns", security(("bearer" = ["advertiser", "hoster", "admin"])),
    responses((status = 200, body = [TokenPrices]), (status = 401, body = ProblemSchema))
)]
async fn list_prices(State(state): State<AppState>, _: Caller<CatalogReaders>) -> ApiResult<Json<Vec<TokenPrices>>> {
    let defaults = pricing::list_defaults(&state.db).await?;
    Ok(Json(
        defaults
            .into_iter()
            .map(|(token, prices)| TokenPrices {
                token,
                prices: prices.to_list(),
            })
            .collect(),
    ))
}

/// Sets a token's default prices; events left out have no default. Admins only.
#[utoipa::path(
    put, path = "/pricing/{token}", tag = "campaigns", security(("bearer" = ["admin"])),
    params(("token" = crate::platform::wire::schema::TokenAddress, Path, description = "Token contract address")), request_body = PriceList,
    responses((status = 200, body = TokenPrices), (status = 403, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn set_prices(
    State(state): State<AppState>,
    principal: Caller<Admins>,
    Path(token): Path<Address>,
    Json(prices): Json<PriceList>,
) -> ApiResult<Json<TokenPrices>> {
    let unit = prices.to_unit_prices()?;
    pricing::replace_defaults(&state.db, token, &unit, principal.user_id).await?;
    Ok(Json(TokenPrices {
        token,
        prices: unit.to_list(),
    }))
}
