//! The two nodes over HTTP. Pages call them from the publisher's origin: bodies are read as
//! JSON whatever their content type (the SDK sends `text/plain` to avoid a CORS preflight),
//! answers allow any origin, and errors are the API's problem documents naming the field.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::cors::CorsLayer;

use super::api::{CallError, DecisionRequest};
use super::beacons::{self, BeaconError};
use super::hoster::{FillError, HosterNode};
use super::store::StoreError;
use super::witness::{CosignError, Witness};
use super::{CosignRequest, now};
use crate::http::error::{ProblemKind, problem_response};

/// The publisher SDK, built by `scripts/sdk build` and committed (checked up to date by the
/// test command), so that the node binary serves it without a build step of its own.
pub const SDK: &str = include_str!("../../web/sdk/dist/sdk.js");

/// The largest body either node reads: a beacon or a decision request is small; a
/// co-sign request of the API's largest batch is not.
const BEACON_LIMIT: usize = 64 * 1024;
const COSIGN_LIMIT: usize = 4 * 1024 * 1024;

/// The hoster node: the SDK, decisions for the page's slots, and beacons.
pub fn hoster_router(node: Arc<HosterNode>) -> Router {
    Router::new()
        .route("/sdk.js", get(sdk))
        .route("/v1/fill", post(fill))
        .route("/v1/e", post(hoster_beacon))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(BEACON_LIMIT))
        .layer(CorsLayer::permissive())
        .with_state(node)
}

/// The witness node: beacons, and co-signing for hoster nodes.
pub fn witness_router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/v1/e", post(witness_beacon).layer(DefaultBodyLimit::max(BEACON_LIMIT)))
        .route("/v1/cosign", post(cosign).layer(DefaultBodyLimit::max(COSIGN_LIMIT)))
        .route("/healthz", get(healthz))
        .layer(CorsLayer::permissive())
        .with_state(witness)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn sdk() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        ],
        SDK,
    )
        .into_response()
}

async fn fill(State(node): State<Arc<HosterNode>>, body: Bytes) -> Response {
    // The page's request is the API's decision request: the API judges each field.
    let request: DecisionRequest = match parse(&body) {
        Ok(request) => request,
        Err(problem) => return problem,
    };
    let decision = node.fill(&request).await;
    match decision {
        Ok(decision) => axum::Json(decision).into_response(),
        // The API judged the request itself (an unknown placement, a bad viewer id): the
        // page gets its problem as it is.
        Err(FillError::Api(CallError::Refused { status, field, detail })) => problem_response(
            ProblemKind::for_status(StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)),
            Some(detail),
            Some(field).filter(|f| !f.is_empty()),
        ),
        Err(FillError::Api(CallError::Transient(error))) => {
            tracing::warn!(%error, "the API did not decide");
            problem_response(
                ProblemKind::Unavailable,
                Some("the ad server did not answer".into()),
                None,
            )
        }
        Err(FillError::Store(error)) => store_problem(&error),
    }
}

async fn hoster_beacon(State(node): State<Arc<HosterNode>>, body: Bytes) -> Response {
    match beacons::parse(&body) {
        Ok(beacons) => match node.observe(beacons, now()).await {
            Ok(taken) => axum::Json(taken).into_response(),
            Err(error) => store_problem(&error),
        },
        Err(error) => beacon_problem(error),
    }
}

async fn witness_beacon(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    match beacons::parse(&body) {
        Ok(beacons) => match witness.observe(beacons, now()).await {
            Ok(taken) => axum::Json(taken).into_response(),
            Err(error) => store_problem(&error),
        },
        Err(error) => beacon_problem(error),
    }
}

async fn cosign(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let request: CosignRequest = match parse(&body) {
        Ok(request) => request,
        Err(problem) => return problem,
    };
    match witness.cosign(request).await {
        Ok(cosigned) => axum::Json(cosigned).into_response(),
        Err(CosignError::Store(error)) => store_problem(&error),
        Err(error @ CosignError::SequenceReused(_)) => {
            problem_response(ProblemKind::Conflict, Some(error.to_string()), Some(error.field()))
        }
        Err(error) => problem_response(ProblemKind::InvalidField, Some(error.to_string()), Some(error.field())),
    }
}

/// Reads a JSON body, whatever its content type; a problem naming the field if it does not.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        let kind = if error.inner().is_data() {
            ProblemKind::InvalidField
        } else {
            ProblemKind::MalformedBody
        };
        problem_response(kind, Some(error.inner().to_string()), Some(field).filter(|f| f != "."))
    })
}

fn beacon_problem(error: BeaconError) -> Response {
    problem_response(
        ProblemKind::InvalidField,
        Some(error.reason),
        Some(error.field).filter(|f| f != "."),
    )
}

fn store_problem(error: &StoreError) -> Response {
    tracing::error!(%error, "node store");
    problem_response(
        ProblemKind::Unavailable,
        Some("the node cannot store this now; retry".into()),
        None,
    )
}
