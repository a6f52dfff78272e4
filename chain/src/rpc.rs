//! JSON-RPC access to one chain over one or more endpoints, for every role that talks to it
//! (the API's readiness probe, the indexer, the outbox). Every call has a timeout and fails
//! over to the next endpoint on a transient fault; every failure is classified once, by
//! [`classify`], into what the caller should do next: retry later, shrink a log range,
//! re-read a nonce, count a broadcast as done, raise fees, read a revert, or stop.
//!
//! Failed calls are counted in `chain_rpc_errors_total{role, kind, call}`, where `role`
//! names the caller ([`ChainRpc::role`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::eips::eip1559::Eip1559Estimation;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest};
use alloy::transports::{RpcError as TransportError, TransportErrorKind};
use url::Url;

/// The counter of failed calls.
pub const ERRORS_METRIC: &str = "chain_rpc_errors_total";

/// A failed call, classified by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// Timeouts, refused connections, rate limits, server errors, a node that is behind:
    /// worth retrying later.
    #[error("transient RPC error in {call}: {message}")]
    Transient { call: &'static str, message: String },
    /// The provider refuses a log query this large: retry with a smaller range.
    #[error("log range too large: {message}")]
    RangeTooLarge { message: String },
    /// A transaction with this nonce is already mined: re-read the nonce and the receipts.
    #[error("nonce too low")]
    NonceTooLow,
    /// The node already has this very transaction: it counts as sent.
    #[error("transaction already known")]
    AlreadyKnown,
    /// A transaction with the same nonce and higher fees is in the pool.
    #[error("replacement transaction underpriced")]
    Underpriced,
    /// The call reverted; `data` is the revert data when the node returned it.
    #[error("execution reverted: {message}")]
    Reverted { message: String, data: Option<Bytes> },
    /// Will fail again: a malformed request, a method the node lacks, no funds for gas.
    #[error("RPC error in {call}: {message}")]
    Permanent { call: &'static str, message: String },
}

impl RpcError {
    /// Whether the same call may succeed if made again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// A stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transient { .. } => "transient",
            Self::RangeTooLarge { .. } => "range_too_large",
            Self::NonceTooLow => "nonce_too_low",
            Self::AlreadyKnown => "already_known",
            Self::Underpriced => "underpriced",
            Self::Reverted { .. } => "reverted",
            Self::Permanent { .. } => "permanent",
        }
    }
}

/// Why the chain could not be confirmed (readiness, and every role before it starts).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("RPC serves chain {actual}, expected chain {expected}")]
    WrongChain { expected: u64, actual: u64 },
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

const LOGS: &str = "eth_getLogs";

/// Classifies a failure of `call`. Answers about a transaction (its nonce, the pool, a
/// revert) come first, since nodes phrase them inside generic error codes; a refused range
/// is only a log query's, so a rate limit of any other call stays transient.
pub fn classify(call: &'static str, error: TransportError<TransportErrorKind>) -> RpcError {
    match &error {
        TransportError::ErrorResp(payload) => {
            let message = payload.message.to_lowercase();
            let text = || payload.message.to_string();
            if message.contains("nonce too low") || message.contains("nonce is too low") {
                RpcError::NonceTooLow
            } else if message.contains("already known")
                || message.contains("known transaction")
                || message.contains("already imported")
                || message.contains("already exists")
            {
                RpcError::AlreadyKnown
            } else if message.contains("underpriced") {
                RpcError::Underpriced
            } else if payload.code == 3 || message.contains("revert") {
                RpcError::Reverted {
                    message: text(),
                    data: payload.as_revert_data(),
                }
            } else if call == LOGS && (payload.code == -32005 || RANGE_MESSAGES.iter().any(|m| message.contains(m))) {
                RpcError::RangeTooLarge { message: text() }
            } else if payload.code == -32601
                || payload.code == -32602
                || message.contains("insufficient funds")
                || message.contains("intrinsic gas")
            {
                RpcError::Permanent { call, message: text() }
            } else {
                // Internal errors, "header not found" from a lagging node, rate limits.
                RpcError::Transient { call, message: text() }
            }
        }
        TransportError::UnsupportedFeature(_) | TransportError::LocalUsageError(_) => RpcError::Permanent {
            call,
            message: error.to_string(),
        },
        _ => RpcError::Transient {
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

/// A mined transaction as the outbox records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mined {
    pub tx_hash: B256,
    pub block: u64,
    pub block_hash: B256,
    pub success: bool,
}

impl Mined {
    /// `None` for a receipt without a block, which some nodes return for a pending
    /// transaction.
    fn from_receipt(receipt: &TransactionReceipt) -> Option<Self> {
        Some(Mined {
            tx_hash: receipt.transaction_hash,
            block: receipt.block_number?,
            block_hash: receipt.block_hash?,
            success: receipt.status(),
        })
    }
}

/// A handle on a chain's RPC endpoints. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChainRpc {
    inner: Arc<Inner>,
    role: &'static str,
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

    /// Several endpoints of the same chain, tried in turn when one fails. An empty list
    /// leaves every call failing as transient, naming the cause.
    pub fn with_failover(urls: Vec<Url>, expected_chain_id: u64, timeout: Duration) -> Self {
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
            role: "api",
        }
    }

    /// Names the role whose calls these are, for the error counter (`api` until named).
    pub fn role(self, role: &'static str) -> Self {
        Self { role, ..self }
    }

    pub fn chain_id(&self) -> u64 {
        self.inner.expected_chain_id
    }

    /// Runs `f` against the active endpoint, failing over to the others on transient
    /// errors. Every other answer is the chain's (or the request's) and would be the same
    /// from any endpoint, so it ends the call.
    async fn call<T, F, Fut>(&self, call: &'static str, f: F) -> Result<T, RpcError>
    where
        F: Fn(RootProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError<TransportErrorKind>>>,
    {
        let count = self.inner.providers.len();
        let start = self.inner.active.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..count {
            let index = (start + attempt) % count;
            let (url, provider) = &self.inner.providers[index];
            let result = match tokio::time::timeout(self.inner.timeout, f(provider.clone())).await {
                Ok(result) => result.map_err(|e| classify(call, e)),
                Err(_) => Err(RpcError::Transient {
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
                    metrics::counter!(ERRORS_METRIC, "role" => self.role, "kind" => error.kind(), "call" => call)
                        .increment(1);
                    if !error.is_transient() {
                        return Err(error);
                    }
                    tracing::warn!(role = self.role, endpoint = %url.host_str().unwrap_or_default(), %error, "RPC call failed");
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or_else(|| RpcError::Transient {
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

    pub async fn head(&self) -> Result<u64, RpcError> {
        self.call("eth_blockNumber", |p| async move { p.get_block_number().await })
            .await
    }

    /// The block at `number`, or `None` if this endpoint does not have it (yet).
    pub async fn block(&self, number: u64) -> Result<Option<BlockRef>, RpcError> {
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

    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, RpcError> {
        self.call(LOGS, |p| {
            let filter = filter.clone();
            async move { p.get_logs(&filter).await }
        })
        .await
    }

    /// How many transactions of `account` are mined (its next nonce on chain).
    pub async fn mined_nonce(&self, account: Address) -> Result<u64, RpcError> {
        self.call("eth_getTransactionCount", |p| async move {
            p.get_transaction_count(account).latest().await
        })
        .await
    }

    pub async fn balance(&self, account: Address) -> Result<U256, RpcError> {
        self.call("eth_getBalance", |p| async move { p.get_balance(account).await })
            .await
    }

    pub async fn fees(&self) -> Result<Eip1559Estimation, RpcError> {
        self.call("eth_feeHistory", |p| async move { p.estimate_eip1559_fees().await })
            .await
    }

    /// Gas for `calldata` sent by `from` to `to`; a revert here means the transaction would
    /// revert now.
    pub async fn estimate_gas(&self, from: Address, to: Address, calldata: &Bytes) -> Result<u64, RpcError> {
        let request = TransactionRequest::default()
            .from(from)
            .to(to)
            .input(calldata.clone().into());
        self.call("eth_estimateGas", |p| {
            let request = request.clone();
            async move { p.estimate_gas(request).await }
        })
        .await
    }

    /// `eth_call` of a view.
    pub async fn view(&self, to: Address, calldata: Bytes) -> Result<Bytes, RpcError> {
        let request = TransactionRequest::default().to(to).input(calldata.into());
        self.call("eth_call", |p| {
            let request = request.clone();
            async move { p.call(request).await }
        })
        .await
    }

    /// Broadcasts a signed transaction. It fails over like every call: a signed transaction
    /// is the same bytes on every endpoint, so an endpoint that took it before timing out
    /// makes the next one answer "already known" (which counts as sent), and the nonce lets
    /// at most one transaction of it be mined, however many nodes hold it.
    pub async fn send_raw(&self, raw: &[u8]) -> Result<B256, RpcError> {
        let raw = Bytes::copy_from_slice(raw);
        self.call("eth_sendRawTransaction", |p| {
            let raw = raw.clone();
            async move { Ok(*p.send_raw_transaction(&raw).await?.tx_hash()) }
        })
        .await
    }

    /// The receipt of a mined transaction; `None` while it is not in a block.
    pub async fn receipt(&self, tx_hash: B256) -> Result<Option<Mined>, RpcError> {
        let receipt = self
            .call("eth_getTransactionReceipt", |p| async move {
                p.get_transaction_receipt(tx_hash).await
            })
            .await?;
        Ok(receipt.as_ref().and_then(Mined::from_receipt))
    }
}

#[cfg(test)]
mod tests {
    use alloy::rpc::json_rpc::ErrorPayload;

    use super::*;

    fn answer_to(call: &'static str, code: i64, message: &str) -> RpcError {
        let payload = ErrorPayload {
            code,
            message: message.to_owned().into(),
            data: None,
        };
        classify(call, TransportError::ErrorResp(payload))
    }

    fn answer(code: i64, message: &str) -> RpcError {
        answer_to("eth_sendRawTransaction", code, message)
    }

    #[test]
    fn transaction_answers_are_classified() {
        assert_eq!(answer(-32000, "nonce too low"), RpcError::NonceTooLow);
        assert_eq!(answer(-32000, "Nonce is too low"), RpcError::NonceTooLow);
        assert_eq!(answer(-32000, "already known"), RpcError::AlreadyKnown);
        assert_eq!(
            answer(-32010, "Transaction with the same hash was already imported."),
            RpcError::AlreadyKnown
        );
        assert_eq!(
            answer(-32000, "replacement transaction underpriced"),
            RpcError::Underpriced
        );
        assert!(matches!(answer(3, "execution reverted"), RpcError::Reverted { .. }));
        assert!(matches!(
            answer_to("eth_estimateGas", -32000, "execution reverted: paused"),
            RpcError::Reverted { .. }
        ));
        assert!(matches!(
            answer(-32000, "insufficient funds for gas * price + value"),
            RpcError::Permanent { .. }
        ));
        assert!(matches!(
            answer(-32000, "intrinsic gas too low"),
            RpcError::Permanent { .. }
        ));
    }

    #[test]
    fn refused_log_ranges_are_told_apart_from_rate_limits() {
        for (code, message) in [
            (-32005, "query returned more than 10000 results"),
            (-32000, "block range is too wide"),
            (-32602, "Log response size exceeded"),
            (-32000, "eth_getLogs is limited to a 10,000 range: range too large"),
            (-32603, "query timeout exceeded"),
        ] {
            assert!(
                matches!(answer_to("eth_getLogs", code, message), RpcError::RangeTooLarge { .. }),
                "{message}"
            );
        }
        // The same words about any other call are a rate limit or a server fault.
        assert!(answer_to("eth_blockNumber", -32005, "limit exceeded").is_transient());
        assert!(answer(-32005, "too many requests").is_transient());
    }

    #[test]
    fn node_faults_are_transient_and_bad_requests_permanent() {
        assert!(answer(-32603, "internal error").is_transient());
        assert!(answer(429, "rate limited").is_transient());
        assert!(answer_to("eth_getBlockByNumber", -32000, "header not found").is_transient());
        assert!(matches!(
            answer_to("eth_getLogs", -32601, "the method eth_getLogs does not exist"),
            RpcError::Permanent { .. }
        ));
        assert!(matches!(
            answer_to("eth_call", -32602, "invalid argument 0"),
            RpcError::Permanent { .. }
        ));
        let local = classify("eth_chainId", TransportError::UnsupportedFeature("pubsub"));
        assert!(matches!(local, RpcError::Permanent { .. }));
    }

    #[test]
    fn kinds_are_distinct_labels() {
        let all = [
            RpcError::Transient {
                call: "c",
                message: String::new(),
            },
            RpcError::RangeTooLarge { message: String::new() },
            RpcError::NonceTooLow,
            RpcError::AlreadyKnown,
            RpcError::Underpriced,
            RpcError::Reverted {
                message: String::new(),
                data: None,
            },
            RpcError::Permanent {
                call: "c",
                message: String::new(),
            },
        ];
        let kinds: std::collections::BTreeSet<_> = all.iter().map(RpcError::kind).collect();
        assert_eq!(kinds.len(), all.len());
        assert_eq!(all.iter().filter(|e| e.is_transient()).count(), 1);
    }

    #[tokio::test]
    async fn no_endpoint_fails_as_transient() {
        let rpc = ChainRpc::with_failover(Vec::new(), 1, Duration::from_secs(1));
        assert!(rpc.head().await.unwrap_err().is_transient());
    }
}
