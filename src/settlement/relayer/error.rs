//! The relayer's errors, split like the RPC's: worth retrying, or needing an operator.

use adescrow_chain::rpc::RpcError;

use super::epoch::BuildError;
use crate::platform::outbox::OutboxError;

#[derive(Debug, thiserror::Error)]
pub enum RelayerError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The chain disagrees with what the relayer settled, or refuses it for a reason a
    /// retry cannot fix; raised as an alert, retried on every tick until resolved.
    #[error("needs an operator: {0}")]
    NeedsOperator(String),
}

impl RelayerError {
    /// Whether waiting and trying again may help without anyone stepping in.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(_) => true,
            Self::Rpc(error) => error.is_transient(),
            Self::Outbox(error) => error.is_transient(),
            Self::Build(_) | Self::NeedsOperator(_) => false,
        }
    }
}

pub type Result<T, E = RelayerError> = std::result::Result<T, E>;

/// Raises an alert: an error log line and a counter that alerting rules watch.
pub fn alert(reason: &'static str, detail: &str) {
    metrics::counter!("relayer_alerts_total", "reason" => reason).increment(1);
    tracing::error!(reason, detail, "relayer alert");
}
