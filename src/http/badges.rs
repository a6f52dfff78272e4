//! Badges over HTTP: the catalog and any wallet's badges (public, like the leaderboards),
//! and the signed-in caller's progress toward each next tier.

use alloy::primitives::Address;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::access::{Caller, SignedIn};
use super::error::{ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::badges::reads::{self, Held, Progress};
use crate::badges::{CATALOG, Definition, RULE_VERSION, Tier};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(catalog))
        .routes(routes!(of_wallet))
        .routes(routes!(mine))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BadgeCatalog {
    /// The catalog's version; each award records the version it was judged under.
    pub rule_version: i32,
    pub tiers: Vec<Tier>,
    pub badges: Vec<Definition>,
}

/// The catalog: each badge, what it counts, and the thresholds of bronze, silver, gold and
/// platinum.
#[utoipa::path(get, path = "/badges", tag = "badges", responses((status = 200, body = BadgeCatalog)))]
async fn catalog() -> Json<BadgeCatalog> {
    Json(BadgeCatalog {
        rule_version: RULE_VERSION,
        tiers: Tier::ALL.to_vec(),
        badges: CATALOG.to_vec(),
    })
}

/// The badges a wallet holds now (none for a wallet without an account).
#[utoipa::path(
    get, path = "/badges/{account}", tag = "badges",
    params(("account" = crate::platform::wire::schema::Address, Path, description = "the wallet")),
    responses((status = 200, body = Vec<Held>), (status = 422, body = ProblemSchema))
)]
async fn of_wallet(State(state): State<AppState>, Path(account): Path<Address>) -> ApiResult<Json<Vec<Held>>> {
    Ok(Json(reads::held(&state.db, account).await?))
}

/// The caller's progress on every badge: its measure, the tiers held, the next tier and how
/// far it is, and tiers revoked with their reasons.
#[utoipa::path(
    get, path = "/me/badges", tag = "badges",
    security(("bearer" = ["advertiser", "hoster", "viewer", "admin", "seller", "buyer", "affiliate"])),
    responses((status = 200, body = Vec<Progress>), (status = 401, body = ProblemSchema))
)]
async fn mine(State(state): State<AppState>, caller: Caller<SignedIn>) -> ApiResult<Json<Vec<Progress>>> {
    Ok(Json(reads::progress(&state.db, caller.user_id).await?))
}
