//! Payouts over HTTP: what an account can claim on chain, with the proof and calldata to
//! claim it, and what it is owed but not settled yet. Public, like the chain it mirrors.

use alloy::primitives::Address;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::settlement::payouts::{self, Payouts};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(payouts_of))
}

/// An account's payouts per token: its payee index, cumulative, claimed, claimable now,
/// pending, and the proof and calldata of `AdEscrow.claim`.
#[utoipa::path(
    get, path = "/payouts/{account}", tag = "settlement",
    params(("account" = crate::platform::wire::schema::Address, Path, description = "the payee's address")),
    responses((status = 200, body = Payouts), (status = 422, body = ProblemSchema), (status = 503, body = ProblemSchema))
)]
async fn payouts_of(State(state): State<AppState>, Path(account): Path<Address>) -> ApiResult<Json<Payouts>> {
    let escrow = state
        .config
        .escrow_address
        .ok_or_else(|| ApiError::Unavailable("the escrow address is not configured".into()))?;
    Ok(Json(
        payouts::payouts(&state.db, state.config.chain_id, escrow, account).await?,
    ))
}
