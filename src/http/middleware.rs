//! Cross-cutting request handling: per-client rate limits, security headers, and turning
//! bare error statuses from lower layers into problem documents.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, AUTHORIZATION, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use tower_http::set_header::SetResponseHeaderLayer;

use super::AppState;
use super::error::{ApiError, ProblemKind, problem_response};

/// Whom a request counts against: its credential when it carries one (so machines behind one
/// NAT keep separate budgets), its peer address otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// SHA-256 of the bearer credential; the secret itself is never kept.
    Credential([u8; 32]),
    Ip(IpAddr),
    /// No credential and no peer address (in-process callers such as tests).
    Unknown,
}

/// A GCRA limiter (the `governor` crate) keyed by client.
#[derive(Debug)]
pub struct ClientRateLimiter {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    clock: DefaultClock,
}

impl ClientRateLimiter {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
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
}

fn client_key(req: &Request) -> ClientKey {
    if let Some(credential) = req.headers().get(AUTHORIZATION) {
        return ClientKey::Credential(Sha256::digest(credential.as_bytes()).into());
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => ClientKey::Ip(addr.ip()),
        None => ClientKey::Unknown,
    }
}

/// Refuses requests over the client's budget with 429 and `Retry-After`.
pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match state.rate_limiter.check(&client_key(&req)) {
        Ok(()) => next.run(req).await,
        Err(retry_after_secs) => ApiError::RateLimited { retry_after_secs }.into_response(),
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
