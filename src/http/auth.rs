//! Sign-In with Ethereum and session management:
//! nonce -> signed EIP-4361 message -> session token + refresh token.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, ProblemSchema};
use super::extract::Json;
use super::middleware::SignUpNetwork;
use crate::accounts::client_network::ClientNetwork;
use crate::accounts::session::IssuedSession;
use crate::accounts::{self, SignInTerms, User, siwe};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(nonce))
        .routes(routes!(sign_in))
        .routes(routes!(refresh))
        .routes(routes!(sign_out))
}

/// What a wallet needs to compose its sign-in message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInChallenge {
    /// Single use; put it in the message's `Nonce` line.
    pub nonce: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The message's domain must be exactly this.
    pub domain: String,
    /// The message's URI must be on this origin.
    pub uri: String,
    pub chain_id: u64,
}

/// Issues a single-use sign-in nonce. A network may hold only so many unused ones at a time
/// (`ADESCROW_NONCES_PER_CLIENT`); beyond that the answer is 429 until one is used or expires.
#[utoipa::path(
    get, path = "/auth/nonce", tag = "auth",
    responses(
        (status = 200, body = SignInChallenge),
        (status = 429, description = "Too many unused nonces from this network; `Retry-After` says when one expires", body = ProblemSchema),
    )
)]
async fn nonce(State(state): State<AppState>, client: ClientNetwork) -> ApiResult<Json<SignInChallenge>> {
    let mut conn = state.db.acquire().await?;
    let (nonce, expires_at) = siwe::issue_nonce(
        &mut conn,
        &client,
        state.sign_in.nonce_ttl(),
        state.config.nonces_per_client.get(),
    )
    .await?;
    Ok(Json(SignInChallenge {
        nonce,
        expires_at,
        domain: state.sign_in.domain().to_owned(),
        uri: state.config.public_url.to_string(),
        chain_id: state.config.chain_id,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInRequest {
    /// The EIP-4361 message exactly as signed.
    pub message: String,
    /// The wallet's `personal_sign` signature of `message`: 0x-prefixed 65 bytes.
    #[schema(value_type = crate::platform::wire::schema::Signature)]
    pub signature: String,
    /// First sign-in only: a referral code (in any case), the `ref` of a referral link, or
    /// an affiliate code (`AFF…`). A code that does not count refuses the sign-in.
    #[schema(value_type = Option<crate::platform::wire::schema::Invitation>)]
    pub referral: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub access_token_expires_at: OffsetDateTime,
    /// Exchange at `/v1/auth/refresh` for a new session; single use.
    pub refresh_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub refresh_token_expires_at: OffsetDateTime,
    pub user: User,
}

impl Session {
    fn new(issued: IssuedSession, user: User) -> Self {
        Self {
            access_token: issued.access_token,
            access_token_expires_at: issued.access_expires_at,
            refresh_token: issued.refresh_token,
            refresh_token_expires_at: issued.refresh_expires_at,
            user,
        }
    }
}

/// Signs in with a signed EIP-4361 message. The first sign-in creates the user as a viewer,
/// and records who referred it (a referral code or link) or which affiliate brought it.
#[utoipa::path(
    post, path = "/auth/siwe", tag = "auth", request_body = SignInRequest,
    responses(
        (status = 200, body = Session),
        (status = 401, description = "Message, nonce or signature refused; `field` names the part", body = ProblemSchema),
        (status = 403, description = "The account is disabled", body = ProblemSchema),
        (status = 409, description = "A referral on a later sign-in, an exhausted code, or a second attribution", body = ProblemSchema),
        (status = 422, body = ProblemSchema),
    )
)]
async fn sign_in(
    State(state): State<AppState>,
    SignUpNetwork(peer): SignUpNetwork,
    Json(request): Json<SignInRequest>,
) -> ApiResult<Json<Session>> {
    let terms = SignInTerms {
        policy: &state.sign_in,
        sessions: &state.sessions,
        admins: &state.config.admin_addresses,
    };
    let (issued, user) = state
        .growth
        .sign_in(
            &state.db,
            terms,
            &request.message,
            &request.signature,
            request.referral.as_deref(),
            state.growth.network_of(peer),
            OffsetDateTime::now_utc(),
        )
        .await?;
    tracing::info!(user = %user.id, address = %user.address, "signed in");
    Ok(Json(Session::new(issued, user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new session. Each refresh token works once; reusing one
/// ends every session of that sign-in.
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 401, body = ProblemSchema))
)]
async fn refresh(State(state): State<AppState>, Json(request): Json<RefreshRequest>) -> ApiResult<Json<Session>> {
    let (issued, user) = accounts::refresh(&state.db, &state.sessions, &request.refresh_token).await?;
    Ok(Json(Session::new(issued, user)))
}

/// Ends the session a refresh token belongs to. Idempotent.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Signed out"))
)]
async fn sign_out(State(state): State<AppState>, Json(request): Json<RefreshRequest>) -> ApiResult<StatusCode> {
    let mut conn = state.db.acquire().await?;
    state.sessions.revoke(&mut conn, &request.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
