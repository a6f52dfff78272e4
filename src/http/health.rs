//! Liveness (`/healthz`), readiness (`/readyz`) and Prometheus metrics (`/metrics`).

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use adescrow_chain::rpc::ChainError;

use super::error::{ProblemKind, problem_response};
use super::extract::Json;
use super::{AppState, PROBE_TIMEOUT};

/// `/metrics` is left out when it has an address of its own (`ADESCROW_METRICS_ADDR`).
pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz));
    match state.config.metrics_addr {
        Some(_) => router,
        None => router.routes(routes!(metrics)),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// The process is up. Says nothing about its dependencies: see `/readyz`.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    #[schema(example = "ready")]
    status: &'static str,
    /// Latest block height the chain RPC reported.
    chain_head: u64,
}

/// The database and the chain RPC both answer (and the RPC serves the configured chain),
/// and every background role of the process is up and making progress.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "A dependency or a background role is down; `detail` names it", body = super::error::ProblemSchema,
         content_type = "application/problem+json"),
    )
)]
async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    let database = async {
        tokio::time::timeout(PROBE_TIMEOUT, crate::platform::db::ping(&state.db))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|error| error.to_string())
    };
    let (database, chain) = tokio::join!(database, state.chain.check());

    // The causes are logged, not returned: they can carry hostnames and credentials.
    let mut failures = Vec::new();
    if let Err(error) = &database {
        tracing::warn!(%error, "readiness: database check failed");
        failures.push("database does not answer");
    }
    if let Err(error) = &chain {
        tracing::warn!(%error, "readiness: chain check failed");
        failures.push(match error {
            ChainError::WrongChain { .. } => "chain RPC serves another chain",
            _ => "chain RPC does not answer",
        });
    }
    // A role's own error is logged by its worker; here only its name and state.
    let roles: Vec<String> = state
        .roles
        .problems()
        .iter()
        .map(|problem| format!("role {problem}"))
        .collect();
    failures.extend(roles.iter().map(String::as_str));
    if let Ok(head) = &chain {
        let stalled = crate::mirror::reads::indexer_stalled(
            &state.db,
            state.config.chain_id,
            *head,
            state.config.indexer_max_lag,
        );
        match stalled.await {
            Ok(true) => failures.push("indexer has stalled"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "readiness: indexer check failed"),
        }
    }
    match chain {
        Ok(chain_head) if failures.is_empty() => Json(Readiness {
            status: "ready",
            chain_head,
        })
        .into_response(),
        _ => problem_response(
            ProblemKind::Unavailable,
            Some(format!("not ready: {}", failures.join("; "))),
            None,
        ),
    }
}

/// Prometheus text exposition: request counts and latencies by route and status, plus the
/// metrics of every role running in this process.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    crate::platform::telemetry::exposition(&state.metrics)
}
