//! Gasless consent over HTTP: a user's signed grant or revocation goes in, the relayer
//! submits it; its progress can be read back by its digest. The signature is the
//! credential, so these need no session.

use alloy::primitives::{Address, B256, U256};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, ProblemSchema};
use super::extract::{Json, Path};
use crate::settlement::relayer::consent::{self, ConsentAction, ConsentRequest, SignedConsent};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(submit)).routes(routes!(status))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Grant,
    Revoke,
}

/// A `ConsentGrant` or `ConsentRevocation` (`docs/ENCODING.md`) and the user's signature.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitConsent {
    pub action: Action,
    #[schema(value_type = crate::platform::wire::schema::Address)]
    pub user: Address,
    /// bytes32 scope, 0x-prefixed.
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub scope: B256,
    /// Grants: until when (unix seconds). Not part of a revocation.
    pub expiry: Option<u64>,
    /// The user's next nonce in the registry, as a decimal string.
    #[schema(value_type = crate::platform::wire::schema::Uint256)]
    pub nonce: U256,
    /// Unix seconds after which the signature is void, as a decimal string.
    #[schema(value_type = crate::platform::wire::schema::Uint256)]
    pub deadline: U256,
    /// 65-byte EIP-712 signature, 0x-hex.
    #[schema(value_type = crate::platform::wire::schema::Signature)]
    pub signature: String,
}

/// Queues a signed consent grant or revocation for the relayer. The same message twice
/// returns the first request (200 instead of 202).
#[utoipa::path(
    post, path = "/consent", tag = "settlement", request_body = SubmitConsent,
    responses((status = 202, body = ConsentRequest), (status = 200, body = ConsentRequest),
              (status = 422, body = ProblemSchema), (status = 503, body = ProblemSchema))
)]
async fn submit(
    State(state): State<AppState>,
    Json(body): Json<SubmitConsent>,
) -> ApiResult<(StatusCode, Json<ConsentRequest>)> {
    let registry = state
        .config
        .consent_address
        .ok_or_else(|| ApiError::Unavailable("the consent registry address is not configured".into()))?;
    let action = match (body.action, body.expiry) {
        (Action::Grant, Some(expiry)) => ConsentAction::Grant { expiry },
        (Action::Grant, None) => return Err(ApiError::invalid("expiry", "a grant needs an expiry")),
        (Action::Revoke, None) => ConsentAction::Revoke,
        (Action::Revoke, Some(_)) => return Err(ApiError::invalid("expiry", "a revocation has no expiry")),
    };
    let signed = SignedConsent {
        user: body.user,
        scope: body.scope,
        action,
        nonce: body.nonce,
        deadline: body.deadline,
        signature: body.signature,
    };
    let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
    let checked = consent::check(state.config.chain_id, registry, &signed, now)?;
    let (request, created) = consent::submit(&state.db, state.config.chain_id, registry, &checked).await?;
    let status = if created { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(request)))
}

/// A consent request's progress: queued, sent, mined, confirmed or failed (with why).
#[utoipa::path(
    get, path = "/consent/requests/{digest}", tag = "settlement",
    params(("digest" = crate::platform::wire::schema::Bytes32, Path, description = "the EIP-712 digest the user signed")),
    responses((status = 200, body = ConsentRequest), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema))
)]
async fn status(State(state): State<AppState>, Path(digest): Path<B256>) -> ApiResult<Json<ConsentRequest>> {
    consent::request(&state.db, state.config.chain_id, digest)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("consent request"))
}
