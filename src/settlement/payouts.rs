//! What a payee can claim, and where the rest of its money stands: per token, the payee's
//! index and the cumulative amount of the latest claimable epoch with its proof and
//! ready-made calldata, what the mirror says is already claimed (and by which transaction), a
//! newer leaf still in its challenge window, and what the ledger holds, has released, or is
//! owed back.

use std::collections::BTreeMap;

use adescrow_chain::sql::{SqlAddress, SqlB256, SqlValueError};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolCall;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::contracts::AdEscrow;
use crate::money::Amount;
use crate::money::holds::{self, Held};
use crate::settlement::payout_tree::PayoutLeaf;

/// One token's payout for one account, in the states its money passes through: accrued
/// (everything earned), held (until, why), released, in an epoch pending its challenge
/// window, claimable, claimed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPayout {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// The payee's permanent index in the escrow for this token: the high 128 bits of the
    /// leaf's and the claim's `indexAndAmount`, and what `AdEscrow.claimed(index)` reads.
    /// None until the payee's first leaf is claimable.
    pub index: Option<u64>,
    /// Everything earned so far, held or released, net of what was moved out.
    pub accrued: Amount,
    /// Each open hold: how much, why and until when.
    pub held: Vec<Held>,
    /// Released: what payout trees include.
    pub released: Amount,
    /// What the payouts already included beyond the released balance (after a clawback or
    /// a transfer): repaid from later earnings before the leaf grows again.
    pub owed: Amount,
    /// Built or settled, waiting for its challenge window: the leaf it will make claimable.
    pub in_epoch: Option<PendingLeaf>,
    /// Earned since the beginning, as of the claimable epoch (the leaf's amount).
    pub cumulative: Amount,
    /// Claimed on chain so far (from the chain mirror).
    pub claimed: Amount,
    /// The transaction of the latest claim.
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub claimed_tx: Option<B256>,
    /// What a claim pays now: `cumulative - claimed`.
    pub claimable: Amount,
    /// Released in the ledger but not claimable yet (unsettled, or in a challenge window).
    pub pending: Amount,
    /// The Merkle proof of (account, token, `index << 128 | cumulative`) under the root;
    /// empty when nothing is settled for this token yet.
    #[schema(value_type = Vec<crate::platform::wire::schema::Bytes32>)]
    pub proof: Vec<B256>,
    /// `AdEscrow.claim(account, token, index << 128 | cumulative, proof)`, ABI-encoded, to
    /// send to `escrow` (from any account: the tokens go to the payee).
    #[schema(value_type = Option<crate::platform::wire::schema::HexBytes>)]
    pub calldata: Option<Bytes>,
}

/// A leaf in an epoch that claims cannot use yet.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingLeaf {
    pub epoch: u64,
    pub cumulative: Amount,
    /// Unix seconds from which claims may use it; none until the settlement is on chain.
    pub claimable_at: Option<i64>,
}

impl TokenPayout {
    fn empty(token: Address) -> Self {
        Self {
            token,
            index: None,
            accrued: Amount::ZERO,
            held: Vec::new(),
            released: Amount::ZERO,
            owed: Amount::ZERO,
            in_epoch: None,
            cumulative: Amount::ZERO,
            claimed: Amount::ZERO,
            claimed_tx: None,
            claimable: Amount::ZERO,
            pending: Amount::ZERO,
            proof: Vec::new(),
            calldata: None,
        }
    }
}

/// Everything an account can claim, per token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payouts {
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub account: Address,
    /// The escrow the calldata is for.
    #[schema(value_type = crate::platform::wire::schema::Address)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub escrow: Address,
    /// The latest epoch claims can use, and its root; none before the first.
    pub epoch: Option<u64>,
    #[schema(value_type = Option<crate::platform::wire::schema::Bytes32>)]
    pub root: Option<B256>,
    pub tokens: Vec<TokenPayout>,
}

/// Reads `account`'s payouts in two lookups that overlap: the leaves and proofs of the
/// claimable epoch with the claims beside them, and the ledger's balances per token with the
/// leaf of a newer epoch still in its window; the holds only when something is held. The
/// epoch served is the latest one whose root claims verify against on chain (past its
/// challenge window and activated).
pub async fn payouts(db: &PgPool, chain_id: u64, escrow: Address, account: Address) -> Result<Payouts, sqlx::Error> {
    let chain = chain_id as i64;
    let leaves = sqlx::query!(
        r#"WITH e AS (
               SELECT epoch, root FROM settlement_epochs
               WHERE chain_id = $1 AND activated_at IS NOT NULL ORDER BY epoch DESC LIMIT 1)
           SELECT e.epoch, e.root AS "root!: SqlB256", l.token AS "token?: SqlAddress", l.cumulative AS "cumulative?: Amount",
                  l.proof AS "proof?", i.leaf_index AS "index?", c.cumulative_amount AS "claimed?: Amount",
                  c.tx_hash AS "claimed_tx?: SqlB256"
           FROM e
           LEFT JOIN payout_leaves l ON l.chain_id = $1 AND l.epoch = e.epoch AND l.account = $2
           LEFT JOIN payout_indexes i ON i.chain_id = $1 AND i.account = $2 AND i.token = l.token
           LEFT JOIN LATERAL (
               SELECT cumulative_amount, tx_hash FROM mirror_claims
               WHERE chain_id = $1 AND leaf_index = i.leaf_index
               ORDER BY block_number DESC, log_index DESC LIMIT 1) c ON true"#,
        chain,
        account.as_slice()
    )
    .fetch_all(db);
    let ledger = sqlx::query!(
        r#"WITH w AS (
               SELECT s.epoch, m.claimable_at FROM settlement_epochs s
               LEFT JOIN mirror_settlements m ON m.chain_id = s.chain_id AND m.epoch = s.epoch AND m.root = s.root
               WHERE s.chain_id = $1 AND s.root IS NOT NULL AND s.activated_at IS NULL
               ORDER BY s.epoch DESC LIMIT 1)
           SELECT b.token AS "token!: SqlAddress", b.released AS "released!: Amount", b.held AS "held!: Amount",
                  w.epoch AS "waiting_epoch?", l.cumulative AS "waiting_cumulative?: Amount", w.claimable_at AS "claimable_at?"
           FROM payee_balances b
           LEFT JOIN w ON true
           LEFT JOIN payout_leaves l ON l.chain_id = $1 AND l.epoch = w.epoch AND l.account = $2 AND l.token = b.token
           WHERE b.payee = $2"#,
        chain,
        account.as_slice()
    )
    .fetch_all(db);
    let (leaves, ledger) = tokio::try_join!(leaves, ledger)?;

    let (mut epoch, mut root) = (None, None);
    let mut tokens: BTreeMap<Address, TokenPayout> = BTreeMap::new();
    for row in leaves {
        epoch = Some(row.epoch as u64);
        root = Some(row.root.0);
        // A leaf's index is stored with it (the build's transaction), so none is missing.
        let (Some(SqlAddress(token)), Some(cumulative), Some(proof), Some(index)) =
            (row.token, row.cumulative, row.proof, row.index)
        else {
            continue;
        };
        let proof = proof_hashes(&proof)?;
        let leaf = PayoutLeaf {
            account,
            token,
            index: index as u64,
            cumulative_amount: U256::from(cumulative.0),
        };
        let calldata = AdEscrow::claimCall {
            account,
            token,
            indexAndAmount: leaf.index_and_amount(),
            proof: proof.clone(),
        }
        .abi_encode();
        let payout = tokens.entry(token).or_insert_with(|| TokenPayout::empty(token));
        payout.index = Some(leaf.index);
        payout.cumulative = cumulative;
        payout.claimed = row.claimed.unwrap_or(Amount::ZERO);
        payout.claimed_tx = row.claimed_tx.map(|tx| tx.0);
        payout.proof = proof;
        payout.calldata = Some(calldata.into());
    }
    for row in ledger {
        let token = row.token.0;
        let payout = tokens.entry(token).or_insert_with(|| TokenPayout::empty(token));
        payout.released = row.released;
        payout.accrued = row.released.checked_add(row.held).unwrap_or(Amount(u128::MAX));
        if let (Some(epoch), Some(cumulative)) = (row.waiting_epoch, row.waiting_cumulative) {
            payout.in_epoch = Some(PendingLeaf {
                epoch: epoch as u64,
                cumulative,
                claimable_at: row.claimable_at,
            });
        }
        if !row.held.is_zero() {
            payout.held = holds::held(db, account, token).await?;
        }
    }
    for payout in tokens.values_mut() {
        payout.claimable = payout.cumulative.saturating_sub(payout.claimed);
        payout.pending = payout.released.saturating_sub(payout.cumulative);
        // What the latest leaf paid beyond the released balance. (An epoch closed but not
        // built yet may raise it for a few seconds; the ledger's own checks use that too.)
        let paid = payout
            .in_epoch
            .as_ref()
            .map_or(payout.cumulative, |leaf| leaf.cumulative.max(payout.cumulative));
        payout.owed = paid.saturating_sub(payout.released);
    }
    Ok(Payouts {
        account,
        escrow,
        epoch,
        root,
        tokens: tokens.into_values().collect(),
    })
}

/// A stored proof: sibling hashes concatenated, 32 bytes each (a table constraint says so;
/// a column that broke it would be a decode error, not a shorter proof).
fn proof_hashes(bytes: &[u8]) -> Result<Vec<B256>, sqlx::Error> {
    bytes
        .chunks(32)
        .map(|hash| {
            B256::try_from(hash).map_err(|_| sqlx::Error::ColumnDecode {
                index: "proof".into(),
                source: SqlValueError::Length {
                    expected: 32,
                    actual: hash.len(),
                }
                .into(),
            })
        })
        .collect()
}
