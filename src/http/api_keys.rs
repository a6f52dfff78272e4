//! API keys for machine clients: created by their owner for one of their roles, shown once,
//! listed without the secret, revoked at will.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::access::{Caller, WalletSession};
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use super::{AppState, validate};
use crate::accounts::{Role, api_key};

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

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: Uuid,
    #[schema(value_type = crate::platform::wire::schema::Name)]
    pub name: String,
    pub role: Role,
    /// The key's first characters, to recognize it.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret. Shown this once: store it now.
    pub secret: String,
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
    principal.require(request.role)?;
    let new_key = api_key::generate();
    let row = sqlx::query!(
        r#"INSERT INTO api_keys (user_id, role, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)
           RETURNING id, created_at"#,
        principal.user_id,
        request.role as Role,
        name,
        new_key.display_prefix,
        &new_key.hash[..],
    )
    .fetch_one(&state.db)
    .await?;
    let key = ApiKey {
        id: row.id,
        name: name.to_owned(),
        role: request.role,
        prefix: new_key.display_prefix,
        created_at: row.created_at,
        last_used_at: None,
        revoked_at: None,
    };
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key,
            secret: new_key.secret,
        }),
    ))
}

/// The caller's API keys, newest first, without secrets.
#[utoipa::path(
    get, path = "/api-keys", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = [ApiKey]), (status = 401, body = ProblemSchema))
)]
async fn list(State(state): State<AppState>, principal: Caller<WalletSession>) -> ApiResult<Json<Vec<ApiKey>>> {
    let keys = sqlx::query_as!(
        ApiKey,
        r#"SELECT id, name, role AS "role: Role", prefix, created_at, last_used_at, revoked_at
           FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC"#,
        principal.user_id
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(keys))
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
    let found = sqlx::query_scalar!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND user_id = $2 RETURNING id",
        id,
        principal.user_id
    )
    .fetch_optional(&state.db)
    .await?;
    found
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or(ApiError::NotFound("API key"))
}
