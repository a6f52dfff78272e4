//! Cross-cutting request handling: who is calling and their rate limit, security headers,
//! and turning bare error statuses from lower layers into problem documents.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use time::OffsetDateTime;
use tower_http::set_header::SetResponseHeaderLayer;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, ProblemKind, problem_response};
use super::extract::bearer;
use crate::accounts::client_network::{ClientNetwork, ClientNetworks};
use crate::accounts::principal::{AuthError, Refusal};
use crate::accounts::{Authenticated, Principal, api_key};
use crate::programs::resellers::members;

/// Whom a request counts against. Only a verified credential has a budget of its own:
/// anything else (no credential, or one that does not verify) counts against its network,
/// so made-up credentials cannot mint fresh budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A user, by session token or API key: one budget per account, so that opening more
    /// sessions or keys does not buy more requests.
    User(Uuid),
    /// A hoster node, by node session token.
    Node(Uuid),
    Network(ClientNetwork),
}

/// A GCRA limiter (the `governor` crate) keyed by client.
#[derive(Debug)]
pub struct ClientRateLimiter {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    clock: DefaultClock,
    networks: ClientNetworks,
}

impl ClientRateLimiter {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32, networks: ClientNetworks) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
            networks,
        }
    }

    /// Counts one request; on refusal returns the whole seconds to wait.
    pub fn check(&self, key: &ClientKey) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets clients whose buckets are full again, so memory tracks active clients only.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// The network a request came from.
    pub fn network_of(&self, extensions: &Extensions) -> ClientNetwork {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        self.networks.of(peer)
    }
}

/// The result of checking a request's credential, kept in its extensions so that the
/// [`Principal`] and [`NodeCaller`](super::extract::NodeCaller) extractors reuse it: an API
/// key or session check costs a database round trip, paid once per request.
#[derive(Debug, Clone)]
pub struct Identity(pub Result<Authenticated, Refusal>);

/// Checks a request's bearer credential.
pub async fn identify(headers: &HeaderMap, state: &AppState) -> Result<Authenticated, AuthError> {
    let token = bearer(headers)?;
    // Node tokens are checked from memory: a MAC, and the serving index's view of which
    // nodes are retired or lost their owner's hoster role.
    if !token.starts_with(api_key::PREFIX)
        && let Some(node) = state.node_sessions.verify(token)
    {
        return if state.ad_server.is_active_node(node) {
            Ok(Authenticated::Node(node))
        } else {
            Err(Refusal::InactiveNode.into())
        };
    }
    Ok(Authenticated::User(
        Principal::authenticate(&state.db, &state.sessions, token).await?,
    ))
}

/// The request's identity: the one the rate limit found, or (on routes it does not cover)
/// checked now.
pub async fn identity(parts: &Parts, state: &AppState) -> Result<Authenticated, AuthError> {
    match parts.extensions.get::<Identity>() {
        Some(Identity(identity)) => Ok(identity.clone()?),
        None => identify(&parts.headers, state).await,
    }
}

/// Identifies the caller, then refuses requests over its budget with 429 and `Retry-After`.
pub async fn rate_limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let identified = identify(req.headers(), &state).await;
    let key = match &identified {
        Ok(Authenticated::User(principal)) => ClientKey::User(principal.user_id),
        Ok(Authenticated::Node(node)) => ClientKey::Node(*node),
        Err(_) => ClientKey::Network(state.rate_limiter.network_of(req.extensions())),
    };
    if let Err(retry_after_secs) = state.rate_limiter.check(&key) {
        return ApiError::RateLimited { retry_after_secs }.into_response();
    }
    // A reseller's end users count against its monthly API quota.
    let warning = match &identified {
        Ok(Authenticated::User(principal)) => {
            match members::count_call(&state.db, principal.user_id, OffsetDateTime::now_utc()).await {
                Ok(warning) => warning,
                Err(error) => return ApiError::from(error).into_response(),
            }
        }
        _ => None,
    };
    let identity = match identified {
        Ok(caller) => Ok(caller),
        Err(AuthError::Refused(refusal)) => Err(refusal),
        // Nobody can be authenticated while the database fails; say so at once.
        Err(error @ AuthError::Database(_)) => return ApiError::from(error).into_response(),
    };
    req.extensions_mut().insert(Identity(identity));
    let mut response = next.run(req).await;
    if let Some(value) = warning.and_then(|w| HeaderValue::from_str(&w.header()).ok()) {
        response.headers_mut().insert(super::resellers::QUOTA_WARNING, value);
    }
    response
}

/// The address a request came from, for hashing as a sign-up network; none in process.
#[derive(Debug, Clone, Copy)]
pub struct SignUpNetwork(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for SignUpNetwork {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(peer))
    }
}

/// The network a request came from, as its keyed hash.
impl FromRequestParts<AppState> for ClientNetwork {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(state.rate_limiter.network_of(&parts.extensions))
    }
}

/// Layers further out (routing, timeouts, panics, body limits) answer with bare statuses;
/// give those the same problem shape as handler errors.
pub async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let kind = ProblemKind::for_status(status);
    let mut problem = problem_response(kind, None, None);
    *problem.status_mut() = status;
    for name in [header::RETRY_AFTER, header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// Headers that harden every response. The CSP is strict because the API serves JSON;
/// the docs page sets its own.
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 5] {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    [
        header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        header(header::X_FRAME_OPTIONS, "DENY"),
        header(header::REFERRER_POLICY, "no-referrer"),
        header(header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"),
        header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ]
}
