//! Gasless consent: a user signs an EIP-712 `ConsentGrant` or `ConsentRevocation`; the API
//! checks it and queues it in the outbox (keyed by its digest, so a resubmission finds the
//! first request); the relayer simulates it, gives it a nonce and sends it like any other
//! transaction. A request the registry would refuse fails before any gas is spent.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolInterface, SolStruct};
use serde::Serialize;
use sqlx::{Connection, PgPool};
use utoipa::ToSchema;

use super::error::Result;
use super::outbox::{Outbox, take_nonce};
use super::rpc::{RelayerRpc, RpcFault};
use crate::accounts::personal_sign::SignatureError;
use crate::billing::batch;
use crate::contracts::{ConsentGrant, ConsentRegistry, ConsentRevocation, consent_domain};

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
/// first request. `true` when this call created it.
pub async fn submit(
    db: &PgPool,
    chain_id: u64,
    registry: Address,
    checked: &CheckedConsent,
) -> Result<(ConsentRequest, bool), sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT INTO outbox (chain_id, kind, digest, target, calldata, gas_limit)
         VALUES ($1, 'consent', $2, $3, $4, 0)
         ON CONFLICT (chain_id, digest) WHERE kind = 'consent' DO NOTHING",
        chain_id as i64,
        checked.digest.as_slice(),
        registry.as_slice(),
        checked.calldata.as_ref()
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    // Stored above or by the submission it conflicted with; outbox rows are never deleted.
    let request = request(db, chain_id, checked.digest)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok((request, inserted))
}

/// The consent request with this digest.
pub async fn request(db: &PgPool, chain_id: u64, digest: B256) -> Result<Option<ConsentRequest>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT status::text AS "status!", mined_tx, error FROM outbox
           WHERE chain_id = $1 AND kind = 'consent' AND digest = $2"#,
        chain_id as i64,
        digest.as_slice()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| ConsentRequest {
        digest,
        status: row.status,
        tx_hash: row.mined_tx.map(|h| B256::from_slice(&h)),
        error: row.error,
    }))
}

/// Simulates each consent request that has no nonce yet: one the registry would refuse
/// fails with the registry's reason, the others get the relayer's next nonces.
pub async fn assign_nonces(db: &PgPool, rpc: &RelayerRpc, outbox: &Outbox, chain_id: u64) -> Result<()> {
    let waiting = sqlx::query!(
        "SELECT id, target, calldata FROM outbox
         WHERE chain_id = $1 AND kind = 'consent' AND status = 'queued' AND nonce IS NULL
         ORDER BY id LIMIT 100",
        chain_id as i64
    )
    .fetch_all(db)
    .await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let sender = outbox.sender();
    let mined = rpc.mined_nonce(sender).await?;
    for row in waiting {
        let target = Address::from_slice(&row.target);
        let calldata = Bytes::from(row.calldata);
        match rpc.estimate_gas(sender, target, &calldata).await {
            Ok(gas) => {
                let mut conn = db.acquire().await?;
                let mut tx = conn.begin().await?;
                let nonce = take_nonce(&mut tx, chain_id, sender, mined).await?;
                sqlx::query!(
                    "UPDATE outbox SET sender = $2, nonce = $3, gas_limit = $4, updated_at = now() WHERE id = $1",
                    row.id,
                    sender.as_slice(),
                    nonce as i64,
                    (gas + gas / 4 + 10_000) as i64
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            Err(RpcFault::Reverted { data, message }) => {
                let reason = data
                    .as_deref()
                    .and_then(|d| ConsentRegistry::ConsentRegistryErrors::abi_decode(d).ok())
                    .map_or(message, |e| format!("{e:?}"));
                tracing::info!(id = row.id, %reason, "consent request refused by the registry");
                sqlx::query!(
                    "UPDATE outbox SET status = 'failed', error = $2, updated_at = now() WHERE id = $1",
                    row.id,
                    format!("the registry refuses it: {reason}")
                )
                .execute(db)
                .await?;
            }
            Err(fault) => return Err(fault.into()),
        }
    }
    Ok(())
}
