//! The `Idempotency-Key` header on the API's routes: which operations take a key, and the
//! layer that runs them through the store in [`crate::platform::idempotency`] (its module
//! documentation states the semantics).

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::middleware;
use crate::accounts::Authenticated;
use crate::accounts::principal::AuthError;
use crate::platform::idempotency::{
    Answer, Begin, Caller, HEADER_NAME, Key, Policy, Scope, begin, complete, fingerprint, lock_timeout, release,
};

/// The response header that marks a replayed answer.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The operations that take a key, as (method, route) in the OpenAPI document's spelling.
///
/// Each creates something or moves a campaign through its status machine, and none of
/// them is safe to run twice: a second brand, campaign (with a fresh escrow campaign id),
/// ad set, ad, placement, marketplace item or order (with a fresh escrow id), or a second
/// status change (or a 409 where the first one's
/// answer was lost). Node registration is here for its answer: a retry would otherwise be
/// a 409 for a node that was registered.
///
/// Left out, and why:
/// - sign-in, refresh, sign-out and node sessions: they issue or end credentials and carry
///   their own single-use nonce, refresh token or signed time;
/// - `POST /v1/api-keys`: its answer holds the key's secret, shown once and stored only as
///   a hash; keeping the answer to replay it would keep the secret readable in the
///   database. A lost answer costs an unused key its owner lists and revokes;
/// - `POST /v1/receipts` and `POST /v1/consent`: the signed message is the key (a batch's
///   hoster and sequence; a consent's EIP-712 digest), sending it again already returns the
///   first answer, and they take no session to scope a key to;
/// - `POST /v1/me/roles`, `POST /v1/me/viewer-id`: idempotent by nature;
/// - `POST /v1/decisions`: each decision is a fresh auction on the serving path, which must
///   not pay a database write per request;
/// - the marketplace's file uploads (their answers are small, but the body a key's
///   fingerprint covers can be tens of megabytes), refunds (a second is a 409 naming the
///   order's state), and license activations (the same device again is no second one).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("post", "/v1/brands"),
    ("post", "/v1/campaigns"),
    ("post", "/v1/campaigns/{id}/status"),
    ("post", "/v1/ad-sets"),
    ("post", "/v1/ads"),
    ("post", "/v1/placements"),
    ("post", "/v1/nodes"),
    ("post", "/v1/program-budgets"),
    ("post", "/v1/program-budgets/{id}/fundings"),
    ("post", "/v1/market/items"),
    ("post", "/v1/market/orders"),
    ("post", "/v1/admin/promotions"),
    ("post", "/v1/promotions/{code}/redemptions"),
    ("post", "/v1/resellers/me/contracts"),
];

/// What a 409 for a key in flight tells the client to wait, in seconds.
const IN_FLIGHT_RETRY_AFTER: u64 = 1;

/// An attempt that owns a key. Dropped without [`Claim::finish`] (the request was cut off
/// by the timeout layer, or its handler panicked), it releases the key.
struct Claim {
    db: PgPool,
    scope: Scope,
    attempt: Uuid,
    armed: bool,
}

impl Claim {
    /// Gives the key up after an answer that is not stored.
    async fn release(&self) {
        if let Err(error) = release(&self.db, &self.scope, self.attempt).await {
            // The record stays in flight until the lock timeout; retries get 409 until then.
            tracing::error!(%error, "could not release an idempotency key");
        }
    }

    /// Stores a success or releases the key, and hands the answer on.
    async fn finish(mut self, response: Response) -> Response {
        self.armed = false;
        if !response.status().is_success() {
            self.release().await;
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(body) => body,
            Err(error) => {
                self.release().await;
                return ApiError::Internal(anyhow::anyhow!("reading the answer to store it: {error}")).into_response();
            }
        };
        let text = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let answer = Answer {
            status: parts.status.as_u16(),
            content_type: text(header::CONTENT_TYPE),
            location: text(header::LOCATION),
            body: body.to_vec(),
        };
        match complete(&self.db, &self.scope, self.attempt, &answer).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                route = self.scope.route(),
                "an idempotent request outlived its lock; its answer is not stored"
            ),
            // The effect took place and the client gets its answer; the record stays in
            // flight until the lock timeout.
            Err(error) => tracing::error!(%error, "could not store an idempotent answer"),
        }
        Response::from_parts(parts, Body::from(body))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (db, scope, attempt) = (self.db.clone(), self.scope.clone(), self.attempt);
        runtime.spawn(async move {
            if let Err(error) = release(&db, &scope, attempt).await {
                tracing::error!(%error, "could not release the idempotency key of a cut-off request");
            }
        });
    }
}

/// The route of a request that takes a key, if it is one.
fn covered(request: &Request) -> Option<&str> {
    let route = request.extensions().get::<MatchedPath>()?.as_str();
    let method = request.method().as_str();
    OPERATIONS
        .iter()
        .any(|(m, r)| m.eq_ignore_ascii_case(method) && *r == route)
        .then_some(route)
}

fn replay(answer: Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, answer.content_type),
        (header::LOCATION, answer.location),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// The layer over the API's routes: requests to [`OPERATIONS`] that carry a key go through
/// the mechanism; everything else passes untouched. Runs inside the rate limit, which has
/// identified the caller.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(route) = covered(&request).map(str::to_owned) else {
        return next.run(request).await;
    };
    let key = match Key::from_headers(request.headers()) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(request).await,
        Err(error) => return ApiError::invalid(HEADER_NAME, error.to_string()).into_response(),
    };
    let (parts, body) = request.into_parts();
    let caller = match middleware::identity(&parts, &state).await {
        Ok(Authenticated::User(principal)) => Caller::User(principal.user_id),
        Ok(Authenticated::Node(node)) => Caller::Node(node),
        // The handler refuses the request with the reason; there is no one to keep a key for.
        Err(AuthError::Refused(_)) => {
            return next.run(Request::from_parts(parts, body)).await;
        }
        Err(error) => return ApiError::from(error).into_response(),
    };
    // Buffered under the route's body limit (which `DefaultBodyLimit` leaves in the
    // extensions), refused as the JSON extractor refuses a body over it.
    let mut buffering = Request::new(body);
    *buffering.extensions_mut() = parts.extensions.clone();
    let bytes = match Bytes::from_request(buffering, &state).await {
        Ok(bytes) => bytes,
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            return ApiError::PayloadTooLarge.into_response();
        }
        Err(other) => return ApiError::MalformedBody(other.body_text()).into_response(),
    };
    let path = parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str());
    let fingerprint = fingerprint(&parts.method, path, &bytes);
    let scope = Scope::new(caller, &parts.method, &route, key);
    let policy = Policy {
        lifetime: state.config.idempotency_key_lifetime,
        lock_timeout: lock_timeout(state.config.request_timeout),
    };
    match begin(&state.db, &scope, &fingerprint, policy).await {
        Ok(Begin::Run(attempt)) => {
            let claim = Claim {
                db: state.db.clone(),
                scope,
                attempt,
                armed: true,
            };
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            claim.finish(response).await
        }
        Ok(Begin::Replay(answer)) => replay(answer),
        Ok(Begin::InFlight) => {
            let mut response = ApiError::conflict(
                HEADER_NAME,
                "a request with this key is still being processed; retry it shortly",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(IN_FLIGHT_RETRY_AFTER));
            response
        }
        Ok(Begin::Mismatch) => ApiError::invalid(
            HEADER_NAME,
            "this key was used for a different request (method, path or body); use a new key",
        )
        .into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}
