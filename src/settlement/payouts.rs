//! What a payee can claim: per token, the cumulative amount of the latest settled epoch with
//! its proof and ready-made calldata, what the mirror says is already claimed, and what is
//! owed in the ledger but not settled yet.

use std::collections::BTreeMap;

use adescrow_chain::sql::{SqlAddress, SqlB256, SqlValueError};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolCall;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::contracts::AdEscrow;
use crate::money::Amount;

/// One token's payout for one account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPayout {
    #[schema(value_type = crate::platform::wire::schema::TokenAddress)]
    #[serde(serialize_with = "crate::platform::wire::checksummed::serialize")]
    pub token: Address,
    /// Earned since the beginning, as of the settled epoch (the leaf's amount).
    pub cumulative: Amount,
    /// Claimed on chain so far (from the chain mirror).
    pub claimed: Amount,
    /// What a claim pays now: `cumulative - claimed`.
    pub claimable: Amount,
    /// Earned in the ledger but not claimable yet (unsettled, or in a challenge window).
    pub pending: Amount,
    /// The Merkle proof of (account, token, cumulative) under the root; empty when nothing
    /// is settled for this token yet.
    #[schema(value_type = Vec<crate::platform::wire::schema::Bytes32>)]
    pub proof: Vec<B256>,
    /// `AdEscrow.claim(account, token, cumulative, proof)`, ABI-encoded, to send to `escrow`.
    #[schema(value_type = Option<crate::platform::wire::schema::HexBytes>)]
    pub calldata: Option<Bytes>,
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

/// Reads `account`'s payouts: one indexed lookup for the leaves and proofs (with the claims
/// beside them), one for the ledger's earnings. The epoch served is the latest one whose
/// root claims verify against on chain (past its challenge window and activated).
pub async fn payouts(db: &PgPool, chain_id: u64, escrow: Address, account: Address) -> Result<Payouts, sqlx::Error> {
    let chain = chain_id as i64;
    let leaves = sqlx::query!(
        r#"WITH e AS (
               SELECT epoch, root FROM settlement_epochs
               WHERE chain_id = $1 AND activated_at IS NOT NULL ORDER BY epoch DESC LIMIT 1)
           SELECT e.epoch, e.root AS "root!: SqlB256", l.token AS "token?: SqlAddress", l.cumulative AS "cumulative?: Amount",
                  l.proof AS "proof?",
                  (SELECT c.cumulative_amount FROM claims_view c
                   WHERE c.chain_id = $1 AND c.account = $2 AND c.token = l.token) AS "claimed: Amount"
           FROM e LEFT JOIN payout_leaves l ON l.chain_id = $1 AND l.epoch = e.epoch AND l.account = $2"#,
        chain,
        account.as_slice()
    )
    .fetch_all(db);
    // Two connections, so the two lookups overlap.
    let (leaves, earned) = tokio::try_join!(leaves, crate::money::ledger::balances(db, account))?;

    let (mut epoch, mut root) = (None, None);
    let mut tokens: BTreeMap<Address, TokenPayout> = BTreeMap::new();
    for row in leaves {
        epoch = Some(row.epoch as u64);
        root = Some(row.root.0);
        let (Some(SqlAddress(token)), Some(cumulative), Some(proof)) = (row.token, row.cumulative, row.proof) else {
            continue;
        };
        let claimed = row.claimed.unwrap_or(Amount::ZERO);
        let proof = proof_hashes(&proof)?;
        let calldata = AdEscrow::claimCall {
            account,
            token,
            cumulativeAmount: U256::from(cumulative.0),
            proof: proof.clone(),
        }
        .abi_encode();
        tokens.insert(
            token,
            TokenPayout {
                token,
                cumulative,
                claimed,
                claimable: cumulative.saturating_sub(claimed),
                pending: Amount::ZERO,
                proof,
                calldata: Some(calldata.into()),
            },
        );
    }
    for balance in earned {
        let payout = tokens.entry(balance.token).or_insert_with(|| TokenPayout {
            token: balance.token,
            cumulative: Amount::ZERO,
            claimed: Amount::ZERO,
            claimable: Amount::ZERO,
            pending: Amount::ZERO,
            proof: Vec::new(),
            calldata: None,
        });
        payout.pending = balance.earned.saturating_sub(payout.cumulative);
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
