//! A JSON-RPC client for one chain, with a hard timeout on every probe so that a node that
//! accepts connections but never answers cannot stall a caller.

use std::time::Duration;

use alloy::providers::{Provider, RootProvider};
use url::Url;

/// Why the chain could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("RPC did not answer within {0:?}")]
    Timeout(Duration),
    #[error("RPC request failed: {0}")]
    Transport(#[from] alloy::transports::TransportError),
    #[error("RPC serves chain {actual}, expected chain {expected}")]
    WrongChain { expected: u64, actual: u64 },
}

/// A read-only handle on a chain's RPC endpoint.
#[derive(Debug, Clone)]
pub struct ChainRpc {
    provider: RootProvider,
    expected_chain_id: u64,
    timeout: Duration,
}

impl ChainRpc {
    pub fn new(url: Url, expected_chain_id: u64, timeout: Duration) -> Self {
        Self {
            provider: RootProvider::new_http(url),
            expected_chain_id,
            timeout,
        }
    }

    /// The underlying provider, for callers that need more than the probes here.
    pub fn provider(&self) -> &RootProvider {
        &self.provider
    }

    /// Confirms the endpoint answers and serves the expected chain; returns the head height.
    pub async fn check(&self) -> Result<u64, ChainError> {
        let probe = async {
            let actual = self.provider.get_chain_id().await?;
            if actual != self.expected_chain_id {
                return Err(ChainError::WrongChain {
                    expected: self.expected_chain_id,
                    actual,
                });
            }
            Ok(self.provider.get_block_number().await?)
        };
        tokio::time::timeout(self.timeout, probe)
            .await
            .map_err(|_| ChainError::Timeout(self.timeout))?
    }
}
