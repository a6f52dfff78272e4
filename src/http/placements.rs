//! Placements and default prices over HTTP: anyone signed in reads them; admins change them.

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::access::{Admins, Caller, CatalogReaders};
use super::error::{ApiError, ApiResult, ProblemSchema, on_unique};
use super::extract::{Json, Path};
use super::{AppState, validate};
use crate::adserver::placements::{self, Placement, PlacementFields};
use crate::adserver::pricing::{self, PriceList, TokenPrices};

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

fn checked<'a>(name: &'a str, description: &'a str, max_ads: i32) -> ApiResult<PlacementFields<'a>> {
    if !(1..=10).contains(&max_ads) {
        return Err(ApiError::invalid("maxAds", "must be 1 to 10"));
    }
    Ok(PlacementFields {
        name: validate::name("name", name)?,
        description: validate::text("description", description, 0, 500)?,
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
    let slug = request.slug.trim();
    let well_formed = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .split('-')
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if !well_formed {
        return Err(ApiError::invalid(
            "slug",
            "must be lowercase letters and digits in words joined by hyphens, at most 64 characters",
        ));
    }
    let fields = checked(&request.name, &request.description, request.max_ads)?;
    let placement = placements::insert(&state.db, slug, &fields)
        .await
        .map_err(|e| on_unique(e, "placements_slug_key", "slug", "a placement with this slug exists"))?;
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
    let current = placements::list(&state.db)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or(ApiError::NotFound("placement"))?;
    let fields = checked(
        request.name.as_deref().unwrap_or(&current.name),
        request.description.as_deref().unwrap_or(&current.description),
        request.max_ads.unwrap_or(current.max_ads),
    )?;
    let placement = placements::update(&state.db, id, &fields).await?;
    placement.map(Json).ok_or(ApiError::NotFound("placement"))
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
    let unit = prices
        .to_unit_prices()
        .map_err(|error| ApiError::invalid(error.field, error.message))?;
    let mut tx = state.db.begin().await?;
    pricing::replace_defaults(&mut tx, token, &unit, principal.user_id).await?;
    tx.commit().await?;
    Ok(Json(TokenPrices {
        token,
        prices: unit.to_list(),
    }))
}
