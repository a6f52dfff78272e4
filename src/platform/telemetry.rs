//! Logs and metrics. Logs go through `tracing` (text or JSON lines); metrics through the
//! `metrics` facade into one process-wide Prometheus recorder, rendered at `/metrics` on the
//! API's address or on a metrics address of its own (`ADESCROW_METRICS_ADDR`).
//!
//! Every metric a role records is described in [`METRICS`] (the indexer's in
//! `adescrow_indexer::metrics`) and registered when the recorder is installed, so the first
//! scrape already shows each one: a counter that has not moved reads zero.

use std::future::Future;
use std::sync::OnceLock;

use adescrow_indexer::metrics::{self as metric_table, Metric};
use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use axum_prometheus::metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::platform::config::{LogArgs, LogFormat};

/// Installs the global `tracing` subscriber. Call once, first thing in `main`.
pub fn init_tracing(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
    }
}

/// The metrics of this crate's roles (request metrics come from `axum-prometheus`).
pub const METRICS: &[Metric] = &[
    Metric::counter(
        crate::platform::worker::RESTARTS_METRIC,
        "Background role runs that failed (an error or a panic) and were restarted, by role",
    ),
    Metric::counter(
        "adescrow_decisions_total",
        "Ad decisions answered, by whether an ad was chosen",
    )
    .by("filled", &["true", "false"]),
    Metric::gauge("adescrow_serving_index_ads", "Ads in the serving index"),
    Metric::histogram(
        "adescrow_serving_index_rebuild_seconds",
        "Time to rebuild the serving index",
    ),
    Metric::counter(
        "adescrow_scheduler_status_changes_total",
        "Campaign status changes the scheduler made",
    ),
    Metric::counter("adescrow_receipts_total", "Receipts judged, by outcome").by("outcome", &["billed", "refused"]),
    Metric::counter(
        "adescrow_billing_retries_total",
        "Billing transactions started over and judged again",
    ),
    Metric::gauge("relayer_epochs", "Settlement epochs, by state").by("state", &["pending", "confirmed"]),
    Metric::gauge(
        "relayer_outbox_depth",
        "Outbox transactions queued, sent or mined but not yet confirmed",
    ),
    Metric::gauge(
        "relayer_oldest_unconfirmed_seconds",
        "Age of the oldest unconfirmed outbox transaction",
    ),
    Metric::gauge("relayer_balance_wei", "Balance of the relayer's key"),
    Metric::counter("relayer_epochs_closed_total", "Settlement epochs closed"),
    Metric::counter("relayer_epochs_confirmed_total", "Settlement epochs confirmed on chain"),
    Metric::counter("relayer_broadcasts_total", "Signed transactions broadcast"),
    Metric::counter("relayer_replacements_total", "Transactions replaced with higher fees"),
    Metric::counter("relayer_reorged_total", "Mined transactions a reorg took out"),
    Metric::counter(
        adescrow_chain::rpc::ERRORS_METRIC,
        "Failed chain RPC calls, by role (api, indexer, relayer), error kind and call",
    ),
    Metric::counter("relayer_alerts_total", "Conditions an operator must look at, by reason"),
];

/// The process-wide Prometheus recorder. A recorder can be installed only once per process,
/// while tests build many apps, hence the lazy global.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (_layer, handle) = axum_prometheus::PrometheusMetricLayer::pair();
            metric_table::register(METRICS);
            metric_table::register(metric_table::METRICS);
            handle
        })
        .clone()
}

/// The Prometheus text exposition of every metric of this process.
pub fn exposition(handle: &PrometheusHandle) -> impl IntoResponse + use<> {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
}

/// Serves `/metrics` alone on `listener` until `shutdown`.
pub async fn serve_metrics(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handle = metrics_handle();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(exposition(&handle))),
    );
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("metrics server error")
}

/// Binds the metrics address, with an error that names it.
pub async fn bind_metrics(address: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for metrics on {address} (is the port taken?)"))
}
