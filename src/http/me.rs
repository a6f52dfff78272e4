//! The signed-in user: who am I, and taking on a role.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::access::{Caller, SignedIn, Viewers, WalletSession};
use super::error::{ApiResult, ProblemSchema};
use super::extract::Json;
use crate::accounts::Role;
use crate::accounts::viewers;
use crate::accounts::{self, User};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(take_role))
        .routes(routes!(viewer_id))
}

/// The authenticated user and their roles.
#[utoipa::path(
    get, path = "/me", tag = "accounts", security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = User), (status = 401, body = ProblemSchema))
)]
async fn me(State(state): State<AppState>, principal: Caller<SignedIn>) -> ApiResult<Json<User>> {
    Ok(Json(accounts::user(&state.db, principal.user_id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TakeRoleRequest {
    /// `advertiser`, `hoster` or `viewer`; `admin` is granted by operators only.
    pub role: Role,
}

/// Takes on a self-service role (advertiser, hoster or viewer). Idempotent.
#[utoipa::path(
    post, path = "/me/roles", tag = "accounts", security(("session" = [])), request_body = TakeRoleRequest,
    responses((status = 200, body = User), (status = 401, body = ProblemSchema), (status = 403, body = ProblemSchema))
)]
async fn take_role(
    State(state): State<AppState>,
    principal: Caller<WalletSession>,
    Json(request): Json<TakeRoleRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        accounts::take_role(&state.db, principal.user_id, request.role).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewerId {
    /// Give this to the sites you browse; ads needing consent then see yours.
    #[schema(example = "vw_3q2-7wEjRkqXb0xZ9mJ1aA")]
    pub viewer_id: String,
}

/// The caller's pseudonymous viewer id, created on first request. Hosters pass it with
/// decisions so that the viewer's on-chain consent counts, without learning the wallet.
#[utoipa::path(
    post, path = "/me/viewer-id", tag = "accounts", security(("bearer" = ["viewer"])),
    responses((status = 200, body = ViewerId), (status = 401, body = ProblemSchema))
)]
async fn viewer_id(State(state): State<AppState>, principal: Caller<Viewers>) -> ApiResult<Json<ViewerId>> {
    let mut conn = state.db.acquire().await?;
    let viewer_id = viewers::ensure(&mut conn, principal.user_id).await?;
    Ok(Json(ViewerId { viewer_id }))
}
