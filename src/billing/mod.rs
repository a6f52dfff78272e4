//! Tracking: turning what hoster nodes report into money owed, exactly once.
//!
//! A node submits receipts in batches signed once by itself and once by a witness node
//! ([`batch`]); [`verify`] decides whether a batch counts and whether as witnessed. Each receipt is billed or refused with a reason, all or nothing per receipt:
//! first the checks that need no database ([`check_receipt`]), then, in one transaction,
//! those against what is already billed, consent and budgets ([`store`], reading what it
//! needs through `facts`, writing rows through `billed_rows` and running totals through
//! `spend`). Billed receipts post to the ledger, split between hoster, platform, witness and
//! viewer ([`split`]).

pub mod adjustments;
pub mod batch;
mod billed_rows;
mod facts;
mod spend;
pub mod split;
pub mod store;
pub mod verify;

use std::collections::HashSet;

use alloy::primitives::{Address, B256, keccak256};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::adserver::pricing::EventType;
use crate::adserver::serving::{Ticket, TicketKeys};
use crate::money::Amount;
use batch::{Confirmations, Receipt};

/// How far in the future an event's time may be (clock skew between nodes and us).
pub const MAX_FUTURE_SKEW_SECS: i64 = 300;

/// Why a receipt was not billed. The codes are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "refusal_reason", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The ticket is malformed, forged or altered.
    TicketInvalid,
    /// The event happened after the ticket expired.
    TicketExpired,
    /// The ticket was issued to another hoster node.
    WrongHoster,
    /// The viewer is not the one the ticket was issued for.
    ViewerMismatch,
    /// The event's time is too far in the future.
    TimeInFuture,
    /// This ticket's event was already billed (in this batch or an earlier one).
    Duplicate,
    /// A click without a billed impression of the same ticket.
    ClickWithoutImpression,
    /// The ticket carries no price for this event.
    NotPriced,
    /// The viewer reached the campaign's frequency cap for this ad.
    FrequencyCapped,
    /// The campaign needs a consent the viewer did not hold at the event's time.
    ConsentMissing,
    /// The campaign's escrow, less what is billed and unsettled, cannot pay it.
    CampaignBudgetExhausted,
    /// The brand's daily or monthly budget is spent.
    BrandBudgetReached,
}

/// How prices are shared, in basis points. The platform pays viewer rewards from its share.
#[derive(Debug, Clone, Copy)]
pub struct SplitPolicy {
    /// Hoster, platform, witness.
    pub witnessed: [u32; 3],
    /// Hoster, platform.
    pub unwitnessed: [u32; 2],
    /// Per event type, of the price, paid to a signed-in viewer holding consent.
    pub viewer_reward: [u32; 4],
    /// Where the platform's share is paid.
    pub platform: Address,
}

/// The consent scope viewers hold to earn rewards on campaigns that need no scope of their
/// own: `keccak256("rewards")`, as scopes are named in `docs/ENCODING.md`.
pub fn rewards_scope() -> B256 {
    keccak256(b"rewards")
}

/// A node taking part in a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchNode {
    pub node: Uuid,
    /// The node owner's wallet, where its share is paid.
    pub payee: Address,
}

/// A batch whose signatures checked out, ready to bill.
#[derive(Debug, Clone)]
pub struct VerifiedBatch {
    pub hoster: BatchNode,
    pub witness: Option<BatchNode>,
    pub sequence: u64,
    pub receipts_hash: B256,
    pub hoster_signature: Vec<u8>,
    pub witness_signature: Option<Vec<u8>>,
    /// Which receipts the witness observed itself; empty without a witness.
    pub confirmed: Confirmations,
    pub receipts: Vec<Receipt>,
}

impl VerifiedBatch {
    /// The witness of receipt `position`: the batch's witness, if it confirmed that receipt.
    /// The others are billed as unwitnessed.
    pub fn witness_of(&self, position: usize) -> Option<BatchNode> {
        self.witness.filter(|_| self.confirmed.confirms(position))
    }
}

/// A receipt that passed the checks needing no database.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub position: usize,
    pub ticket: Ticket,
    pub price: Amount,
}

/// What happened to one receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptResult {
    /// The receipt's position in the batch.
    pub index: usize,
    /// `null` when the ticket could not be read.
    pub ticket_id: Option<Uuid>,
    pub event: EventType,
    pub billed: bool,
    /// Whether the batch's witness confirmed it (billed at the witnessed split).
    pub witnessed: bool,
    /// What the advertiser pays, when billed.
    pub price: Option<Amount>,
    /// Why not, when refused.
    pub reason: Option<Refusal>,
}

/// The answer to a batch; a resubmission gets the same one.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchAnswer {
    pub batch_id: i64,
    pub sequence: u64,
    /// Whether a witness co-signed the batch; each receipt says whether it confirmed it.
    pub witnessed: bool,
    pub billed: usize,
    pub refused: usize,
    pub receipts: Vec<ReceiptResult>,
}

/// How a receipt came out of the checks that need no database: a candidate to bill, or
/// refused (with its ticket, when the ticket could be read).
pub type Checked = Result<Candidate, (Option<Uuid>, Refusal)>;

/// Runs [`check_receipt`] on every receipt of a verified batch (`checked[i]` for receipt
/// `i`).
pub fn check_receipts(keys: &TicketKeys, batch: &VerifiedBatch, now: OffsetDateTime) -> Vec<Checked> {
    let mut seen = HashSet::with_capacity(batch.receipts.len());
    batch
        .receipts
        .iter()
        .enumerate()
        .map(|(position, receipt)| {
            check_receipt(keys, batch.hoster.node, receipt, now, &mut seen).map(|(ticket, price)| Candidate {
                position,
                ticket,
                price,
            })
        })
        .collect()
}

/// The checks one receipt can pass or fail on its own: its ticket (MAC, expiry, hoster,
/// viewer, price), its time, and repeats within the batch.
pub fn check_receipt(
    keys: &TicketKeys,
    hoster: Uuid,
    receipt: &Receipt,
    now: OffsetDateTime,
    seen: &mut HashSet<(Uuid, EventType)>,
) -> Result<(Ticket, Amount), (Option<Uuid>, Refusal)> {
    let ticket = keys
        .verify(&receipt.ticket)
        .map_err(|_| (None, Refusal::TicketInvalid))?;
    let refuse = |reason| (Some(ticket.id), reason);
    let at = receipt.at.unix_timestamp();
    if at > now.unix_timestamp() + MAX_FUTURE_SKEW_SECS {
        return Err(refuse(Refusal::TimeInFuture));
    }
    if at > ticket.expires_at {
        return Err(refuse(Refusal::TicketExpired));
    }
    if ticket.hoster_node_id != hoster {
        return Err(refuse(Refusal::WrongHoster));
    }
    if ticket.viewer
        != receipt
            .viewer
            .as_deref()
            .map(crate::adserver::serving::ticket::viewer_hash)
    {
        return Err(refuse(Refusal::ViewerMismatch));
    }
    let price = ticket
        .prices
        .get(receipt.event)
        .ok_or_else(|| refuse(Refusal::NotPriced))?;
    if !seen.insert((ticket.id, receipt.event)) {
        return Err(refuse(Refusal::Duplicate));
    }
    Ok((ticket, price))
}
