//! JSON-RPC access to one chain over one or more endpoints: every call has a timeout, fails
//! over to the next endpoint on a transient fault, and reports errors classified so that the
//! caller knows whether to retry, to shrink a log range, or to stop.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::B256;
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{Filter, Log};
use alloy::transports::{RpcError, TransportErrorKind};
use url::Url;

/// Why the chain could not be confirmed (readiness).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Rpc(#[from] CallError),
    #[error("RPC serves chain {actual}, expected chain {expected}")]
    WrongChain { expected: u64, actual: u64 },
}

/// A failed call, classified.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Worth retrying later: timeouts, connection failures, rate limits, server errors,
    /// a node that is behind.
    #[error("transient RPC error in {call}: {message}")]
    Transient { call: &'static str, message: String },
    /// The provider refuses a log query this large; retry with a smaller range.
    #[error("log range too large: {message}")]
    RangeTooLarge { message: String },
    /// Will fail again: a malformed request or a method the node lacks.
    #[error("RPC error in {call}: {message}")]
    Permanent { call: &'static str, message: String },
}

impl CallError {
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Permanent { .. })
    }

    /// A stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transient { .. } => "transient",
            Self::RangeTooLarge { .. } => "range_too_large",
            Self::Permanent { .. } => "permanent",
        }
    }
}

/// What providers answer when a log query is too wide, across the common implementations
/// (geth, erigon, nethermind, alchemy, infura, quicknode, ankr, anvil).
const RANGE_MESSAGES: [&str; 10] = [
    "query returned more than",
    "block range",
    "range too large",
    "range is too large",
    "too many",
    "limit exceeded",
    "response size",
    "max results",
    "exceeds max",
    "query timeout",
];

fn classify(call: &'static str, error: RpcError<TransportErrorKind>) -> CallError {
    match &error {
        RpcError::ErrorResp(payload) => {
            let message = payload.message.to_lowercase();
            if RANGE_MESSAGES.iter().any(|m| message.contains(m)) || payload.code == -32005 {
                CallError::RangeTooLarge {
                    message: payload.message.to_string(),
                }
            } else if payload.code == -32601 || payload.code == -32602 {
                CallError::Permanent {
                    call,
                    message: payload.message.to_string(),
                }
            } else {
                // Internal errors, "header not found" from a lagging node, rate limits.
                CallError::Transient {
                    call,
                    message: payload.message.to_string(),
                }
            }
        }
        RpcError::UnsupportedFeature(_) | RpcError::LocalUsageError(_) => CallError::Permanent {
            call,
            message: error.to_string(),
        },
        _ => CallError::Transient {
            call,
            message: error.to_string(),
        },
    }
}

/// A block as the indexer needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub number: u64,
    pub hash: B256,
    pub parent_hash: B256,
}

/// A handle on a chain's RPC endpoints. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChainRpc {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    providers: Vec<(Url, RootProvider)>,
    /// The endpoint that answered last; calls start there.
    active: AtomicUsize,
    expected_chain_id: u64,
    timeout: Duration,
}

impl ChainRpc {
    pub fn new(url: Url, expected_chain_id: u64, timeout: Duration) -> Self {
        Self::with_failover(vec![url], expected_chain_id, timeout)
    }

    /// Several endpoints of the same chain, tried in turn when one fails.
    pub fn with_failover(urls: Vec<Url>, expected_chain_id: u64, timeout: Duration) -> Self {
        assert!(!urls.is_empty(), "at least one RPC URL");
        let providers = urls
            .into_iter()
            .map(|url| (url.clone(), RootProvider::new_http(url)))
            .collect();
        Self {
            inner: Arc::new(Inner {
                providers,
                active: AtomicUsize::new(0),
                expected_chain_id,
                timeout,
            }),
        }
    }

    pub fn chain_id(&self) -> u64 {
        self.inner.expected_chain_id
    }

    /// Runs `f` against the active endpoint, failing over to the others on transient errors.
    async fn call<T, F, Fut>(&self, call: &'static str, f: F) -> Result<T, CallError>
    where
        F: Fn(RootProvider) -> Fut,
        Fut: Future<Output = Result<T, RpcError<TransportErrorKind>>>,
    {
        let count = self.inner.providers.len();
        let start = self.inner.active.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..count {
            let index = (start + attempt) % count;
            let (url, provider) = &self.inner.providers[index];
            let result = match tokio::time::timeout(self.inner.timeout, f(provider.clone())).await {
                Ok(result) => result.map_err(|e| classify(call, e)),
                Err(_) => Err(CallError::Transient {
                    call,
                    message: format!("no answer within {:?}", self.inner.timeout),
                }),
            };
            match result {
                Ok(value) => {
                    self.inner.active.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(error) => {
                    metrics::counter!("indexer_rpc_errors_total", "kind" => error.kind(), "call" => call).increment(1);
                    if !matches!(error, CallError::Transient { .. }) {
                        return Err(error);
                    }
                    tracing::warn!(endpoint = %url.host_str().unwrap_or_default(), %error, "RPC call failed");
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or_else(|| CallError::Transient {
            call,
            message: "no RPC endpoint is configured".into(),
        }))
    }

    /// Confirms an endpoint answers and serves the expected chain; returns the head height.
    pub async fn check(&self) -> Result<u64, ChainError> {
        let actual = self
            .call("eth_chainId", |p| async move { p.get_chain_id().await })
            .await?;
        if actual != self.inner.expected_chain_id {
            return Err(ChainError::WrongChain {
                expected: self.inner.expected_chain_id,
                actual,
            });
        }
        Ok(self.head().await?)
    }

    pub async fn head(&self) -> Result<u64, CallError> {
        self.call("eth_blockNumber", |p| async move { p.get_block_number().await })
            .await
    }

    /// The block at `number`, or `None` if this endpoint does not have it (yet).
    pub async fn block(&self, number: u64) -> Result<Option<BlockRef>, CallError> {
        let block = self
            .call("eth_getBlockByNumber", |p| async move {
                p.get_block_by_number(BlockNumberOrTag::Number(number)).await
            })
            .await?;
        Ok(block.map(|b| BlockRef {
            number: b.header.number,
            hash: b.header.hash,
            parent_hash: b.header.parent_hash,
        }))
    }

    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, CallError> {
        self.call("eth_getLogs", |p| {
            let filter = filter.clone();
            async move { p.get_logs(&filter).await }
        })
        .await
    }
}
