//! The two nodes over HTTP. Pages call them from the publisher's origin: bodies are read as
//! JSON whatever their content type (the SDK sends `text/plain` to avoid a CORS preflight),
//! answers allow any origin, and errors are the API's problem documents naming the field.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::cors::CorsLayer;

use super::api::{CallError, Decision, DecisionRequest};
use super::beacons::{self, BeaconError, Taken};
use super::hoster::{FillError, HosterNode};
use super::store::StoreError;
use super::witness::{CosignError, Witness};
use super::{CosignRequest, Cosigned, now};
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

async fn fill(State(node): State<Arc<HosterNode>>, body: Bytes) -> Result<Json<Decision>, Problem> {
    // The page's request is the API's decision request: the API judges each field.
    let request: DecisionRequest = parse(&body)?;
    match node.fill(&request).await {
        Ok(decision) => Ok(Json(decision)),
        // The API judged the request itself (an unknown placement, a bad viewer id): the
        // page gets its problem as it is.
        Err(FillError::Api(CallError::Refused { status, field, detail })) => Err(Problem {
            kind: ProblemKind::for_status(StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)),
            detail,
            field: Some(field).filter(|f| !f.is_empty()),
        }),
        Err(FillError::Api(CallError::Transient(error))) => {
            tracing::warn!(%error, "the API did not decide");
            Err(Problem::unavailable("the ad server did not answer"))
        }
        Err(FillError::Store(error)) => Err(error.into()),
    }
}

async fn hoster_beacon(State(node): State<Arc<HosterNode>>, body: Bytes) -> Result<Json<Taken>, Problem> {
    let beacons = beacons::parse(&body)?;
    Ok(Json(node.observe(beacons, now()).await?))
}

async fn witness_beacon(State(witness): State<Arc<Witness>>, body: Bytes) -> Result<Json<Taken>, Problem> {
    let beacons = beacons::parse(&body)?;
    Ok(Json(witness.observe(beacons, now()).await?))
}

async fn cosign(State(witness): State<Arc<Witness>>, body: Bytes) -> Result<Json<Cosigned>, Problem> {
    let request: CosignRequest = parse(&body)?;
    witness.cosign(request).await.map(Json).map_err(|error| match error {
        CosignError::Store(error) => error.into(),
        CosignError::SequenceReused(_) => Problem {
            kind: ProblemKind::Conflict,
            detail: error.to_string(),
            field: Some(error.field()),
        },
        _ => Problem {
            kind: ProblemKind::InvalidField,
            detail: error.to_string(),
            field: Some(error.field()),
        },
    })
}

/// A refusal, answered as the API's problem document naming the field at fault.
#[derive(Debug)]
struct Problem {
    kind: ProblemKind,
    detail: String,
    field: Option<String>,
}

impl Problem {
    fn unavailable(detail: &str) -> Self {
        Self {
            kind: ProblemKind::Unavailable,
            detail: detail.into(),
            field: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        problem_response(self.kind, Some(self.detail), self.field)
    }
}

impl From<BeaconError> for Problem {
    fn from(error: BeaconError) -> Self {
        Self {
            kind: ProblemKind::InvalidField,
            detail: error.reason,
            field: Some(error.field).filter(|f| f != "."),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "node store");
        Self::unavailable("the node cannot store this now; retry")
    }
}

/// Reads a JSON body, whatever its content type.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| Problem {
        kind: if error.inner().is_data() {
            ProblemKind::InvalidField
        } else {
            ProblemKind::MalformedBody
        },
        detail: error.inner().to_string(),
        field: Some(error.path().to_string()).filter(|f| f != "."),
    })
}
