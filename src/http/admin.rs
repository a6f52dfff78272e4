//! Operator actions on users: look one up, grant or revoke a role, disable or enable.

use axum::extract::State;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::access::{Admins, Caller};
use super::error::{ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::accounts::Role;
use crate::accounts::{self, User};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_user))
        .routes(routes!(grant_role, revoke_role))
        .routes(routes!(set_disabled))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserDisabled {
    /// `true` disables the account (no sign-in; its tokens and keys stop at once; its
    /// referral code and its referrals stop counting); `false` enables it again.
    pub disabled: bool,
}

/// Disables or enables a user. Idempotent.
#[utoipa::path(
    put, path = "/admin/users/{id}/disabled", tag = "admin", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)), request_body = UserDisabled,
    responses((status = 200, body = User), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn set_disabled(
    State(state): State<AppState>,
    admin: Caller<Admins>,
    Path(id): Path<Uuid>,
    Json(request): Json<UserDisabled>,
) -> ApiResult<Json<User>> {
    let user = accounts::set_disabled(&state.db, id, request.disabled, OffsetDateTime::now_utc()).await?;
    tracing::info!(admin = %admin.user_id, user = %id, disabled = request.disabled, "user disabled state set");
    Ok(Json(user))
}

/// A user by id.
#[utoipa::path(
    get, path = "/admin/users/{id}", tag = "admin", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn get_user(State(state): State<AppState>, _: Caller<Admins>, Path(id): Path<Uuid>) -> ApiResult<Json<User>> {
    Ok(Json(accounts::user(&state.db, id).await?))
}

/// Grants a role to a user. Idempotent.
#[utoipa::path(
    put, path = "/admin/users/{id}/roles/{role}", tag = "admin", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path), ("role" = Role, Path)),
    responses((status = 200, body = User), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn grant_role(
    State(state): State<AppState>,
    principal: Caller<Admins>,
    Path((id, role)): Path<(Uuid, Role)>,
) -> ApiResult<Json<User>> {
    let user = accounts::grant_to_user(&state.db, id, role).await?;
    tracing::info!(admin = %principal.user_id, user = %id, %role, "role granted");
    Ok(Json(user))
}

/// Revokes a role from a user. API keys for that role stop working at once. Idempotent.
#[utoipa::path(
    delete, path = "/admin/users/{id}/roles/{role}", tag = "admin", security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path), ("role" = Role, Path)),
    responses((status = 200, body = User), (status = 403, body = ProblemSchema), (status = 404, body = ProblemSchema))
)]
async fn revoke_role(
    State(state): State<AppState>,
    principal: Caller<Admins>,
    Path((id, role)): Path<(Uuid, Role)>,
) -> ApiResult<Json<User>> {
    let user = accounts::revoke_from_user(&state.db, id, role).await?;
    tracing::info!(admin = %principal.user_id, user = %id, %role, "role revoked");
    Ok(Json(user))
}
