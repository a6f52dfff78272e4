//! Gasless consent: a user signs an EIP-712 `ConsentGrant` or `ConsentRevocation`; the API
//! checks it and queues it in the outbox (keyed by its digest, so a resubmission finds the
//! first request); the outbox simulates it, gives it a nonce and sends it like any other
//! transaction. A request the registry would refuse fails before any gas is spent.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolInterface, SolStruct};
use serde::Serialize;
use sqlx::{Connection, PgPool};
use utoipa::ToSchema;

use crate::accounts::personal_sign::SignatureError;
use crate::billing::batch;
use crate::contracts::{ConsentGrant, ConsentRegistry, ConsentRevocation, consent_domain};
use crate::platform::outbox::{self, Entry, Followup, Kind, NewTransaction};

/// Consent messages in the outbox.
pub const KIND: Kind = Kind::new("consent");

/// What the user signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentAction {
    Grant { expiry: u64 },
    Revoke,
}

/// A consent message and the user's signature of it.
#[derive(Debug, Clone)]
pub struct SignedConsent {
    pub user: Address,
    pub scope: B256,
    pub action: ConsentAction,
    pub nonce: U256,
    pub deadline: U256,
    pub signature: String,
}

/// Why a consent message is refused; each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("signature: not signed by the user for this chain and registry")]
    WrongSigner,
    #[error("deadline: has passed")]
    DeadlinePassed,
    #[error("expiry: must be in the future")]
    ExpiryPassed,
    #[error("user: must not be the zero address")]
    ZeroUser,
}

impl ConsentError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::Signature(_) | Self::WrongSigner => "signature",
            Self::DeadlinePassed => "deadline",
            Self::ExpiryPassed => "expiry",
            Self::ZeroUser => "user",
        }
    }
}

/// A checked consent message: its digest and the registry call that carries it.
#[derive(Debug, Clone)]
pub struct CheckedConsent {
    pub digest: B256,
    pub calldata: Bytes,
}

/// Checks `signed` as the registry will (signer, deadline, expiry) before anything is queued.
pub fn check(
    chain_id: u64,
    registry: Address,
    signed: &SignedConsent,
    now: u64,
) -> Result<CheckedConsent, ConsentError> {
    if signed.user == Address::ZERO {
        return Err(ConsentError::ZeroUser);
    }
    if signed.deadline < U256::from(now) {
        return Err(ConsentError::DeadlinePassed);
    }
    let domain = consent_domain(chain_id, registry);
    let signature = crate::accounts::personal_sign::parse(&signed.signature)?;
    let (digest, calldata) = match signed.action {
        ConsentAction::Grant { expiry } => {
            if expiry <= now {
                return Err(ConsentError::ExpiryPassed);
            }
            let message = ConsentGrant {
                user: signed.user,
                scope: signed.scope,
                expiry,
                nonce: signed.nonce,
                deadline: signed.deadline,
            };
            let call = ConsentRegistry::grantBySigCall {
                user: signed.user,
                scope: signed.scope,
                expiry,
                nonce: signed.nonce,
                deadline: signed.deadline,
                signature: Bytes::from(signature.as_bytes().to_vec()),
            };
            (message.eip712_signing_hash(&domain), call.abi_encode())
        }
        ConsentAction::Revoke => {
            let message = ConsentRevocation {
                user: signed.user,
                scope: signed.scope,
                nonce: signed.nonce,
                deadline: signed.deadline,
            };
            let call = ConsentRegistry::revokeBySigCall {
                user: signed.user,
                scope: signed.scope,
                nonce: signed.nonce,
                deadline: signed.deadline,
                signature: Bytes::from(signature.as_bytes().to_vec()),
            };
            (message.eip712_signing_hash(&domain), call.abi_encode())
        }
    };
    if batch::recover(digest, &signed.signature)? != signed.user {
        return Err(ConsentError::WrongSigner);
    }
    Ok(CheckedConsent {
        digest,
        calldata: calldata.into(),
    })
}

/// A consent request as the API reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRequest {
    /// The EIP-712 digest the user signed; identifies the request.
    #[schema(value_type = crate::platform::wire::schema::Bytes32)]
    pub digest: B256,
    /// queued, sent, mined, confirmed or failed.
    pub status: String,
    /// The transaction that carried it, once mined.
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub tx_hash: Option<B256>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Queues a checked consent message; a second submission of the same message returns the
/// first request, whatever became of it. `true` when this call created it.
pub async fn submit(
    db: &PgPool,
    chain_id: u64,
    registry: Address,
    checked: &CheckedConsent,
) -> Result<(ConsentRequest, bool), sqlx::Error> {
    let key = key(checked.digest);
    let mut conn = db.acquire().await?;
    // A failed request frees its key in the outbox; a resubmission still finds it here.
    if let Some(existing) = outbox::latest(&mut *conn, chain_id, KIND, &key).await? {
        return Ok((report(checked.digest, existing), false));
    }
    let new = NewTransaction {
        kind: KIND,
        key,
        target: registry,
        calldata: checked.calldata.clone(),
        // The outbox simulates it before it takes a nonce; `Refusal` words a revert.
        gas_limit: None,
    };
    let mut tx = conn.begin().await?;
    let enqueued = outbox::enqueue(&mut tx, chain_id, &new).await?;
    tx.commit().await?;
    // Stored above or by the submission it conflicted with; outbox rows are never deleted.
    let entry = outbox::latest(&mut *conn, chain_id, KIND, &new.key)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok((report(checked.digest, entry), enqueued.created))
}

/// The consent request with this digest.
pub async fn request(db: &PgPool, chain_id: u64, digest: B256) -> Result<Option<ConsentRequest>, sqlx::Error> {
    let entry = outbox::latest(db, chain_id, KIND, &key(digest)).await?;
    Ok(entry.map(|entry| report(digest, entry)))
}

fn report(digest: B256, entry: Entry) -> ConsentRequest {
    ConsentRequest {
        digest,
        status: entry.status.as_str().to_owned(),
        tx_hash: entry.tx_hash,
        error: entry.error,
    }
}

/// How a consent request is named in the outbox: the digest the user signed.
fn key(digest: B256) -> String {
    digest.to_string()
}

/// Consent's part in the outbox: nothing to record when a request lands (its status is the
/// outbox row's), and a revert in simulation explained with the registry's own error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Refusal;

impl Followup for Refusal {
    fn refused(&self, message: &str, data: Option<&[u8]>) -> String {
        let reason = data
            .and_then(|d| ConsentRegistry::ConsentRegistryErrors::abi_decode(d).ok())
            .map_or_else(|| message.to_owned(), |e| format!("{e:?}"));
        format!("the registry refuses it: {reason}")
    }
}
