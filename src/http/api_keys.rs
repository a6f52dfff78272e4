//! API keys for machine clients: created by their owner for one of their roles, shown once,
//! listed without the secret, revoked at will.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::access::{Caller, WalletSession};
use super::error::{ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use super::{AppState, validate};
use crate::accounts::Role;
use crate::accounts::api_key::{self, ApiKey, CreatedApiKey};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// A label to tell keys apart, 1 to 100 characters.
    #[schema(value_type = crate::platform::wire::schema::Name, example = "hoster node eu-1")]
    pub name: String,
    /// The one role the key acts with; the owner must hold it.
    pub role: Role,
}

/// Creates an API key for one of the caller's roles. The secret is in this response only.
#[utoipa::path(
    post, path = "/api-keys", tag = "accounts", security(("session" = [])), request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn create(
    State(state): State<AppState>,
    principal: Caller<WalletSession>,
    Json(request): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let name = validate::name("name", &request.name)?;
    let created = api_key::create(&state.db, &principal, request.role, name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The caller's API keys, newest first, without secrets.
#[utoipa::path(
    get, path = "/api-keys", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = [ApiKey]), (status = 401, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, principal: Caller<WalletSession>) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(api_key::list(&state.db, principal.user_id).await?))
}

/// Revokes one of the caller's API keys; it stops working at once. Idempotent.
#[utoipa::path(
    delete, path = "/api-keys/{id}", tag = "accounts", security(("session" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = ProblemSchema))
)]
async fn revoke(
    State(state): State<AppState>,
    principal: Caller<WalletSession>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    api_key::revoke(&state.db, principal.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
