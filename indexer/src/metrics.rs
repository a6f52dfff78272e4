//! The metrics this crate records, described once so that each appears on the first scrape
//! of any process that follows the chain, before it first moves.

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its name, its kind and what it counts, and, for a label whose values are
/// known in advance, those values (each is registered; other labelled metrics are
/// registered without labels).
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub label: Option<(&'static str, &'static [&'static str])>,
}

impl Metric {
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Counter, help)
    }

    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Gauge, help)
    }

    pub const fn histogram(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Histogram, help)
    }

    /// The values `label` takes.
    pub const fn by(self, label: &'static str, values: &'static [&'static str]) -> Self {
        Self {
            label: Some((label, values)),
            ..self
        }
    }

    const fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Self {
            name,
            kind,
            help,
            label: None,
        }
    }
}

/// The chain follower's metrics.
pub const METRICS: &[Metric] = &[
    Metric::gauge("indexer_head_block", "Latest block height the chain RPC reported"),
    Metric::gauge(
        "indexer_finalized_block",
        "Height below which blocks count as final (head minus the finality depth)",
    ),
    Metric::gauge("indexer_indexed_block", "Highest block mirrored into Postgres"),
    Metric::gauge("indexer_lag_blocks", "Blocks between the head and the mirror"),
    Metric::counter("indexer_reorgs_total", "Reorgs rolled back"),
    Metric::histogram("indexer_reorg_depth_blocks", "Blocks rolled back per reorg"),
    Metric::counter("indexer_rows_written_total", "Event rows written to the mirror"),
];

/// Describes `metrics` to the installed recorder and registers each one: counters at zero,
/// histograms empty, gauges as NaN (not measured yet), so that no alert fires on a gauge a
/// role has not set. Call once, where the recorder is installed: a second call would reset
/// the gauges.
pub fn register(metrics: &[Metric]) {
    for metric in metrics {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => metrics::describe_histogram!(metric.name, metric.help),
        }
        let labels: Vec<Vec<metrics::Label>> = match metric.label {
            Some((label, values)) => values
                .iter()
                .map(|value| vec![metrics::Label::new(label, *value)])
                .collect(),
            None => vec![Vec::new()],
        };
        for labels in labels {
            match metric.kind {
                Kind::Counter => metrics::counter!(metric.name, labels).increment(0),
                Kind::Gauge => metrics::gauge!(metric.name, labels).set(f64::NAN),
                // Registered without a sample.
                Kind::Histogram => drop(metrics::histogram!(metric.name, labels)),
            }
        }
    }
}
