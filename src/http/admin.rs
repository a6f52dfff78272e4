//! Operator actions on users: look one up, grant or revoke a role.

use axum::extract::State;
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
