//! Logs and metrics. Logs go through `tracing` (text or JSON lines); metrics through the
//! `metrics` facade into one process-wide Prometheus recorder rendered at `/metrics`.

use std::sync::OnceLock;

use axum_prometheus::metrics_exporter_prometheus::PrometheusHandle;
use tracing_subscriber::EnvFilter;

use crate::config::{LogArgs, LogFormat};

/// Installs the global `tracing` subscriber. Call once, first thing in `main`.
pub fn init_tracing(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
    }
}

/// The process-wide Prometheus recorder. A recorder can be installed only once per process,
/// while tests build many apps, hence the lazy global.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (_layer, handle) = axum_prometheus::PrometheusMetricLayer::pair();
            handle
        })
        .clone()
}
