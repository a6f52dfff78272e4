//! Why the demo stopped: the step it was on and what went wrong there, so that a red run
//! says "step X expected Y, saw Z" rather than a bare transport error.

use std::time::Duration;

use alloy::primitives::TxHash;

use super::report::Step;
use crate::contracts::{AdEscrow, ConsentRegistry, TestToken};

/// A failed demo run: the step and its failure. Its message already holds the failure's, so
/// it names no source (which would print the same text twice).
#[derive(Debug, thiserror::Error)]
#[error("demo step \"{step}\" failed: {failure}")]
pub struct DemoError {
    pub step: Step,
    pub failure: Failure,
}

/// What went wrong inside a step.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The system answered, but not what the scenario expects.
    #[error("{what}: expected {expected}, saw {seen}")]
    Mismatch {
        what: String,
        expected: String,
        seen: String,
    },
    /// The API refused a call the scenario needs.
    #[error("{method} {path} answered {status}: {body}")]
    Api {
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    /// The API did not answer at all.
    #[error("cannot reach the API at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    /// A waiting step ran out of time.
    #[error("gave up after {after:?} waiting for {what} (last seen: {seen})")]
    Timeout {
        what: String,
        after: Duration,
        seen: String,
    },
    #[error("chain call failed: {0}")]
    Contract(alloy::contract::Error),
    /// A contract refused the call with one of its own errors, decoded.
    #[error("the contract refused: {0}")]
    Refused(String),
    #[error("chain RPC failed: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    #[error("transaction was not confirmed: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    #[error("{what} transaction {tx} reverted")]
    Reverted { what: &'static str, tx: TxHash },
    #[error("signing failed: {0}")]
    Signer(#[from] alloy::signers::Error),
    #[error(transparent)]
    Deployment(#[from] crate::platform::deploy::DeployError),
    #[error("{0}")]
    Setup(String),
}

impl Failure {
    /// A mismatch between what the scenario expects and what it saw.
    pub fn mismatch(what: impl Into<String>, expected: impl ToString, seen: impl ToString) -> Self {
        Self::Mismatch {
            what: what.into(),
            expected: expected.to_string(),
            seen: seen.to_string(),
        }
    }

    /// Fails with a mismatch unless `seen == expected`.
    pub fn expect_eq<T: PartialEq + std::fmt::Display>(what: &str, expected: T, seen: T) -> Result<(), Self> {
        if seen == expected {
            Ok(())
        } else {
            Err(Self::mismatch(what, expected, seen))
        }
    }
}

impl From<alloy::contract::Error> for Failure {
    /// Names the contract's custom error when the revert carries one of ours, rather than
    /// showing its selector.
    fn from(error: alloy::contract::Error) -> Self {
        if let Some(refusal) = error.as_decoded_interface_error::<AdEscrow::AdEscrowErrors>() {
            return Self::Refused(format!("{refusal:?}"));
        }
        if let Some(refusal) = error.as_decoded_interface_error::<TestToken::TestTokenErrors>() {
            return Self::Refused(format!("{refusal:?}"));
        }
        if let Some(refusal) = error.as_decoded_interface_error::<ConsentRegistry::ConsentRegistryErrors>() {
            return Self::Refused(format!("{refusal:?}"));
        }
        Self::Contract(error)
    }
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;
