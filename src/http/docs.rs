//! The OpenAPI document (`/openapi.json`), its interactive page (`/docs`), and descriptions
//! of the problem types error responses name (`/problems/{slug}`).

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_scalar::Scalar;

use super::AppState;
use super::error::{ApiError, ApiResult, ProblemKind};
use super::extract::{Json, Path};

/// The docs page loads Scalar from its CDN, so it needs a looser policy than the API.
const DOCS_CSP: &str = "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; \
                        style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; \
                        font-src https://fonts.gstatic.com https://cdn.jsdelivr.net data:; \
                        img-src 'self' data: https:; connect-src 'self'; frame-ancestors 'none'";

pub fn router(openapi: utoipa::openapi::OpenApi) -> Router<AppState> {
    let html = Scalar::new(openapi.clone()).title("adescrow API").to_html();
    let json = openapi.to_json().expect("the OpenAPI document serializes");
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json) }),
        )
        .route(
            "/docs",
            get(move || async move { ([(header::CONTENT_SECURITY_POLICY, DOCS_CSP)], Html(html)) }),
        )
}

pub fn problems_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(problem_type))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemTypeDescription {
    #[schema(example = "/problems/invalid-field")]
    r#type: String,
    title: &'static str,
    status: u16,
}

/// Describes a problem type that error responses name in their `type`.
#[utoipa::path(
    get, path = "/problems/{slug}", tag = "health",
    params(("slug" = String, Path, description = "The last segment of a problem `type`")),
    responses((status = 200, body = ProblemTypeDescription), (status = 404, body = super::error::ProblemSchema))
)]
async fn problem_type(Path(slug): Path<String>) -> ApiResult<impl IntoResponse> {
    let kind = ProblemKind::from_slug(&slug).ok_or(ApiError::NotFound("problem type"))?;
    let (_, status, title) = kind.describe();
    Ok(Json(ProblemTypeDescription {
        r#type: kind.type_uri(),
        title,
        status: status.as_u16(),
    }))
}
