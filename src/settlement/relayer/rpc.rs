//! The chain as the relayer sees it: every call has a timeout, and every failure is
//! classified so that the outbox knows what to do next: retry later, re-read the nonce,
//! count a broadcast as done, raise fees, or reconcile a revert by reading the chain.

use std::time::Duration;

use alloy::eips::eip1559::Eip1559Estimation;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest};
use alloy::transports::{RpcError, TransportErrorKind};
use url::Url;

/// A failed call, classified by what the relayer should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcFault {
    /// Timeouts, refused connections, rate limits, server errors: retry with backoff.
    #[error("transient RPC error in {call}: {message}")]
    Transient { call: &'static str, message: String },
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

impl RpcFault {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

fn classify(call: &'static str, error: RpcError<TransportErrorKind>) -> RpcFault {
    match &error {
        RpcError::ErrorResp(payload) => {
            let message = payload.message.to_lowercase();
            if message.contains("nonce too low") || message.contains("nonce is too low") {
                RpcFault::NonceTooLow
            } else if message.contains("already known")
                || message.contains("known transaction")
                || message.contains("already imported")
                || message.contains("already exists")
            {
                RpcFault::AlreadyKnown
            } else if message.contains("underpriced") {
                RpcFault::Underpriced
            } else if payload.code == 3 || message.contains("revert") {
                RpcFault::Reverted {
                    message: payload.message.to_string(),
                    data: payload.as_revert_data(),
                }
            } else if payload.code == -32601
                || payload.code == -32602
                || message.contains("insufficient funds")
                || message.contains("intrinsic gas")
            {
                RpcFault::Permanent {
                    call,
                    message: payload.message.to_string(),
                }
            } else {
                RpcFault::Transient {
                    call,
                    message: payload.message.to_string(),
                }
            }
        }
        RpcError::UnsupportedFeature(_) | RpcError::LocalUsageError(_) => RpcFault::Permanent {
            call,
            message: error.to_string(),
        },
        _ => RpcFault::Transient {
            call,
            message: error.to_string(),
        },
    }
}

/// A mined transaction as the outbox records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mined {
    pub tx_hash: B256,
    pub block: u64,
    pub block_hash: B256,
    pub success: bool,
}

impl From<&TransactionReceipt> for Mined {
    fn from(receipt: &TransactionReceipt) -> Self {
        Mined {
            tx_hash: receipt.transaction_hash,
            block: receipt.block_number.unwrap_or_default(),
            block_hash: receipt.block_hash.unwrap_or_default(),
            success: receipt.status(),
        }
    }
}

/// One endpoint with a timeout on every call. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RelayerRpc {
    provider: RootProvider,
    timeout: Duration,
}

impl RelayerRpc {
    pub fn new(url: Url, timeout: Duration) -> Self {
        Self {
            provider: RootProvider::new_http(url),
            timeout,
        }
    }

    async fn call<T>(
        &self,
        call: &'static str,
        future: impl Future<Output = Result<T, RpcError<TransportErrorKind>>>,
    ) -> Result<T, RpcFault> {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(result) => result.map_err(|error| {
                let fault = classify(call, error);
                if fault.is_transient() {
                    metrics::counter!("relayer_rpc_errors_total", "call" => call).increment(1);
                }
                fault
            }),
            Err(_) => Err(RpcFault::Transient {
                call,
                message: format!("no answer within {:?}", self.timeout),
            }),
        }
    }

    pub async fn chain_id(&self) -> Result<u64, RpcFault> {
        self.call("eth_chainId", self.provider.get_chain_id()).await
    }

    pub async fn head(&self) -> Result<u64, RpcFault> {
        self.call("eth_blockNumber", self.provider.get_block_number()).await
    }

    /// How many transactions of `account` are mined (its next nonce on chain).
    pub async fn mined_nonce(&self, account: Address) -> Result<u64, RpcFault> {
        self.call(
            "eth_getTransactionCount",
            self.provider.get_transaction_count(account).latest().into_future(),
        )
        .await
    }

    pub async fn balance(&self, account: Address) -> Result<U256, RpcFault> {
        self.call("eth_getBalance", self.provider.get_balance(account).into_future())
            .await
    }

    pub async fn fees(&self) -> Result<Eip1559Estimation, RpcFault> {
        self.call("eth_feeHistory", self.provider.estimate_eip1559_fees()).await
    }

    /// Gas for `calldata` sent by `from` to `to`; a revert here means the transaction would
    /// revert now.
    pub async fn estimate_gas(&self, from: Address, to: Address, calldata: &Bytes) -> Result<u64, RpcFault> {
        let request = TransactionRequest::default()
            .from(from)
            .to(to)
            .input(calldata.clone().into());
        self.call("eth_estimateGas", self.provider.estimate_gas(request).into_future())
            .await
    }

    /// `eth_call` of a view.
    pub async fn view(&self, to: Address, calldata: Bytes) -> Result<Bytes, RpcFault> {
        let request = TransactionRequest::default().to(to).input(calldata.into());
        self.call("eth_call", self.provider.call(request).into_future()).await
    }

    pub async fn send_raw(&self, raw: &[u8]) -> Result<B256, RpcFault> {
        self.call("eth_sendRawTransaction", async {
            Ok(*self.provider.send_raw_transaction(raw).await?.tx_hash())
        })
        .await
    }

    pub async fn receipt(&self, tx_hash: B256) -> Result<Option<Mined>, RpcFault> {
        let receipt = self
            .call(
                "eth_getTransactionReceipt",
                self.provider.get_transaction_receipt(tx_hash),
            )
            .await?;
        // A receipt without a block is a pending transaction on some nodes.
        Ok(receipt.filter(|r| r.block_number.is_some()).map(|r| Mined::from(&r)))
    }

    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, RpcFault> {
        self.call("eth_getLogs", self.provider.get_logs(filter)).await
    }
}

#[cfg(test)]
mod tests {
    use alloy::rpc::json_rpc::ErrorPayload;

    use super::*;

    fn answer(code: i64, message: &str) -> RpcFault {
        let payload = ErrorPayload {
            code,
            message: message.to_owned().into(),
            data: None,
        };
        classify("test", RpcError::ErrorResp(payload))
    }

    #[test]
    fn node_answers_are_classified() {
        assert_eq!(answer(-32000, "nonce too low"), RpcFault::NonceTooLow);
        assert_eq!(answer(-32000, "already known"), RpcFault::AlreadyKnown);
        assert_eq!(
            answer(-32000, "replacement transaction underpriced"),
            RpcFault::Underpriced
        );
        assert!(matches!(answer(3, "execution reverted"), RpcFault::Reverted { .. }));
        assert!(matches!(
            answer(-32000, "insufficient funds for gas * price + value"),
            RpcFault::Permanent { .. }
        ));
        assert!(answer(-32603, "internal error").is_transient());
        assert!(answer(429, "rate limited").is_transient());
    }
}
