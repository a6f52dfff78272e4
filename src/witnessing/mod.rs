//! Witnessing for real: the two nodes publishers and witnesses run beside the API.
//!
//! The publisher SDK (`web/sdk`) sends a beacon for every impression, view and click to
//! **both** the hoster node that served the page's ads and an independent witness node.
//! The hoster node ([`hoster`]) gets decisions from the API through its node session, keeps
//! what it saw, batches it into receipts, asks the witness to co-sign and submits. The
//! witness node ([`witness`]) keeps its own observations and co-signs a batch only for the
//! receipts it observed itself (same ticket and event, time within a tolerance): billing
//! pays the witnessed split for those and the unwitnessed split for the rest. Each node
//! keeps its observations in an embedded SQLite store ([`store`]) and survives restarts.

pub mod api;
pub mod beacons;
pub mod hoster;
pub mod routes;
pub mod store;
pub mod witness;

use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::adserver::pricing::EventType;
use crate::billing::batch::{self, Receipt};

/// A receipt as the hoster node sends it to the witness and to the API (`POST
/// /v1/receipts`): the same JSON both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireReceipt {
    pub ticket: String,
    pub event: EventType,
    /// Unix seconds.
    pub at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_ref: Option<String>,
}

impl WireReceipt {
    /// The receipt as it is hashed; `None` for a time no date can hold.
    pub fn to_receipt(&self) -> Option<Receipt> {
        Some(Receipt {
            ticket: self.ticket.clone(),
            event: self.event,
            at: OffsetDateTime::from_unix_timestamp(self.at).ok()?,
            viewer: self.viewer.clone(),
            order_ref: self.order_ref.clone(),
        })
    }
}

/// What the hoster node asks its witness to co-sign.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CosignRequest {
    pub chain_id: u64,
    pub hoster: Address,
    pub sequence: u64,
    pub receipts: Vec<WireReceipt>,
    /// The hoster key's `personal_sign` of [`cosign_message`]: only the hoster itself can
    /// take one of its sequences at the witness.
    pub signature: String,
}

impl CosignRequest {
    /// The request for `receipts` under `sequence`, signed with the hoster's key. Fails on
    /// a receipt time no date holds, or a key that cannot sign.
    pub fn signed(
        signer: &PrivateKeySigner,
        chain_id: u64,
        sequence: u64,
        receipts: Vec<WireReceipt>,
    ) -> Result<Self, String> {
        let parsed: Option<Vec<Receipt>> = receipts.iter().map(WireReceipt::to_receipt).collect();
        let parsed = parsed.ok_or("a receipt time no date holds")?;
        let message = cosign_message(signer.address(), chain_id, sequence, batch::receipts_hash(&parsed));
        let signature = signer
            .sign_message_sync(message.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(Self {
            chain_id,
            hoster: signer.address(),
            sequence,
            receipts,
            signature: format!("0x{}", hex::encode(signature.as_bytes())),
        })
    }
}

/// The text a hoster node signs to ask for a co-signature: its batch, by the receipts hash.
pub fn cosign_message(hoster: Address, chain_id: u64, sequence: u64, receipts_hash: B256) -> String {
    format!(
        "adescrow co-sign request\nhoster: {hoster}\nchain id: {chain_id}\nsequence: {sequence}\nreceipts: {receipts_hash}"
    )
}

/// The witness's answer: its signature of the batch message naming the receipts it
/// confirms (`docs/ENCODING.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cosigned {
    pub witness: Address,
    /// 0x-hex, 65 bytes.
    pub signature: String,
    /// The bitmap of confirmed receipts, 0x-hex.
    pub confirmed: Bytes,
    pub confirmed_count: usize,
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}
