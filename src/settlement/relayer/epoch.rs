//! Settlement epochs: closing one freezes the ledger postings it covers; building it sums
//! every payee's cumulative earnings per token, each campaign's debit, gives new payees
//! their permanent indexes, and stores the payout tree's leaves with their proofs and what
//! the epoch settles per token.
//!
//! Closing and building are two steps so that the lock closing takes is held for one
//! statement, not for the seconds a large tree takes. A relayer that dies between them
//! builds the same tree on restart: the epoch's watermark alone determines it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use adescrow_chain::sql::{SqlAddress, SqlB256, SqlU256};
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::contracts::IAdEscrow;
use crate::money::ledger;
use crate::settlement::payee_index;
use crate::settlement::payout_tree::{PayoutLeaf, PayoutTree, TreeError};

/// When an epoch closes.
#[derive(Debug, Clone)]
pub struct EpochPolicy {
    /// Nothing owed waits longer than this for an epoch.
    pub interval: Duration,
    /// An epoch closes early once payees are owed this much (base units, all tokens).
    pub owed_threshold: u128,
}

/// A payee's leaf and released balance in one token.
#[derive(Debug, Clone, Copy, Default)]
struct PayeeState {
    leaf: U256,
    balance: U256,
}

/// What an epoch settles on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub epoch: u64,
    pub root: B256,
    /// Per escrow account (on-chain id): the amount debited, in its token; in order of id.
    pub debits: Vec<(B256, U256)>,
    /// Per token the tree pays (or debited): the sum of its debits, zero for a token with
    /// leaves but no debits; in order of token. The contract moves exactly these tokens to
    /// the new root.
    pub totals: Vec<(Address, U256)>,
}

impl Settlement {
    /// `keccak256(abi.encode(debits))`, as `activate` takes it: the debits exactly as
    /// settled.
    pub fn debits_hash(&self) -> B256 {
        keccak256(self.debit_list().abi_encode())
    }

    /// The debits as the contract's `Debit[]`.
    pub fn debit_list(&self) -> Vec<IAdEscrow::Debit> {
        self.debits
            .iter()
            .map(|(campaign, amount)| IAdEscrow::Debit {
                campaignId: *campaign,
                amount: *amount,
            })
            .collect()
    }

    /// The totals as the contract's `TokenTotal[]`.
    pub fn total_list(&self) -> Vec<IAdEscrow::TokenTotal> {
        self.totals
            .iter()
            .map(|(token, amount)| IAdEscrow::TokenTotal {
                token: *token,
                amount: *amount,
            })
            .collect()
    }
}

/// Closes the next epoch if it is due: the previous one is confirmed, postings wait, and
/// the oldest has waited the interval, payees are owed the threshold, or a campaign with
/// unsettled spend has ended (its last impressions must land within the grace period), or an
/// order or program budget with released spend has (its debit must land before end + grace).
pub async fn close_if_due(
    db: &PgPool,
    chain_id: u64,
    policy: &EpochPolicy,
    now: OffsetDateTime,
) -> Result<Option<u64>, sqlx::Error> {
    let chain = chain_id as i64;
    let last = sqlx::query!(
        "SELECT epoch, last_posting, confirmed_at FROM settlement_epochs
         WHERE chain_id = $1 ORDER BY epoch DESC LIMIT 1",
        chain
    )
    .fetch_optional(db)
    .await?;
    // One epoch in flight at a time: each root builds on the one before it.
    if last.as_ref().is_some_and(|l| l.confirmed_at.is_none()) {
        return Ok(None);
    }
    let covered = last.as_ref().map_or(0, |l| l.last_posting);
    let waiting = sqlx::query!(
        r#"SELECT min(p.posted_at) AS oldest,
                  coalesce(sum(e.amount) FILTER (WHERE e.payee IS NOT NULL AND e.amount > 0), 0) AS "owed!: SqlU256",
                  bool_or(c.status = 'completed' OR c.ends_at <= $2 OR a.ends_at <= $2) AS ended
           FROM ledger_postings p
           JOIN ledger_entries e ON e.posting_id = p.id
           LEFT JOIN campaigns c ON c.id = e.escrow_id
           LEFT JOIN escrow_accounts a ON a.id = e.escrow_id
           WHERE p.id > $1 AND e.hold_id IS NULL"#,
        covered,
        now
    )
    .fetch_one(db)
    .await?;
    let Some(oldest) = waiting.oldest else {
        return Ok(None);
    };
    let due = now - oldest >= policy.interval
        || waiting.owed.0 >= U256::from(policy.owed_threshold)
        || waiting.ended.unwrap_or(false);
    if !due {
        return Ok(None);
    }
    close(db, chain_id).await.map(Some)
}

/// Closes the next epoch now, covering every posting committed so far.
pub async fn close(db: &PgPool, chain_id: u64) -> Result<u64, sqlx::Error> {
    let mut conn = db.acquire().await?;
    let mut tx = conn.begin().await?;
    // A posting that commits after the watermark has a higher id: it falls into the next epoch.
    let watermark = ledger::committed_watermark(&mut tx).await?;
    let epoch = sqlx::query_scalar!(
        r#"INSERT INTO settlement_epochs (chain_id, epoch, last_posting)
           SELECT $1, coalesce((SELECT max(epoch) FROM settlement_epochs WHERE chain_id = $1), 0) + 1, $2
           RETURNING epoch"#,
        chain_id as i64,
        watermark
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("relayer_epochs_closed_total").increment(1);
    tracing::info!(epoch, "epoch closed");
    Ok(epoch as u64)
}

/// Builds every closed epoch that has no tree yet. Returns how many were built.
pub async fn build_pending(db: &PgPool, chain_id: u64) -> Result<usize, BuildError> {
    let unbuilt = sqlx::query_scalar!(
        "SELECT epoch FROM settlement_epochs WHERE chain_id = $1 AND root IS NULL ORDER BY epoch",
        chain_id as i64
    )
    .fetch_all(db)
    .await?;
    for epoch in &unbuilt {
        build(db, chain_id, *epoch as u64).await?;
    }
    Ok(unbuilt.len())
}

/// Why an epoch could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("epoch {0} is not closed")]
    NotClosed(u64),
    #[error("epoch {epoch}: {payee}'s released balance in {token} would be negative")]
    Negative { epoch: u64, payee: Address, token: Address },
    #[error("epoch {epoch}: leaves in {token} would total {leaves}, more than the {settled} debited")]
    Unbacked {
        epoch: u64,
        token: Address,
        leaves: U256,
        settled: U256,
    },
    #[error("epoch {0} has nothing to pay")]
    Empty(u64),
    #[error("epoch {epoch}: {source}")]
    Tree { epoch: u64, source: TreeError },
}

/// Builds epoch `epoch`'s payout tree from the previous epoch's leaves plus the postings
/// in between, and stores new payees' indexes, leaves, proofs, debits and totals in one
/// transaction.
pub async fn build(db: &PgPool, chain_id: u64, epoch: u64) -> Result<B256, BuildError> {
    let chain = chain_id as i64;
    let this = sqlx::query!(
        r#"SELECT last_posting, root AS "root?: SqlB256" FROM settlement_epochs WHERE chain_id = $1 AND epoch = $2"#,
        chain,
        epoch as i64
    )
    .fetch_optional(db)
    .await?
    .ok_or(BuildError::NotClosed(epoch))?;
    if let Some(root) = this.root {
        return Ok(root.0);
    }
    let covered = sqlx::query_scalar!(
        "SELECT last_posting FROM settlement_epochs WHERE chain_id = $1 AND epoch = $2",
        chain,
        epoch as i64 - 1
    )
    .fetch_optional(db)
    .await?
    .unwrap_or(0);

    // Released balances and leaves: the previous epoch's, moved by the released entries
    // since. A leaf never goes down: it is max(previous leaf, released balance), and a
    // payee whose balance fell below its leaf owes the difference into the next epoch.
    let mut payees: HashMap<(Address, Address), PayeeState> = HashMap::new();
    let previous = sqlx::query!(
        r#"SELECT account AS "account: SqlAddress", token AS "token: SqlAddress",
                  cumulative AS "cumulative: SqlU256", balance AS "balance: SqlU256"
           FROM payout_leaves
           WHERE chain_id = $1 AND epoch = $2"#,
        chain,
        epoch as i64 - 1
    )
    .fetch_all(db)
    .await?;
    for row in previous {
        payees.insert(
            (row.account.0, row.token.0),
            PayeeState {
                leaf: row.cumulative.0,
                balance: row.balance.0,
            },
        );
    }
    // Held entries (hold_id set) wait for the posting that releases them.
    let moved = sqlx::query!(
        r#"SELECT e.payee AS "payee!: SqlAddress", p.token AS "token: SqlAddress",
                  coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0) AS "credits!: SqlU256",
                  coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0), 0) AS "debits!: SqlU256"
           FROM ledger_postings p JOIN ledger_entries e ON e.posting_id = p.id
           WHERE p.id > $1 AND p.id <= $2 AND e.payee IS NOT NULL AND e.hold_id IS NULL
           GROUP BY e.payee, p.token"#,
        covered,
        this.last_posting
    )
    .fetch_all(db)
    .await?;
    for row in moved {
        let (payee, token) = (row.payee.0, row.token.0);
        let standing = payees.entry((payee, token)).or_default();
        standing.balance = (standing.balance + row.credits.0)
            .checked_sub(row.debits.0)
            .ok_or(BuildError::Negative { epoch, payee, token })?;
        standing.leaf = standing.leaf.max(standing.balance);
    }

    // Debits: what each escrow account spent in the same postings, released (escrow
    // entries are negative; a release posting's escrow entries are too).
    let spent = sqlx::query!(
        r#"SELECT e.escrow_id AS "escrow_id!", a.chain_escrow_id AS "chain_escrow_id: SqlB256",
                  p.token AS "token: SqlAddress", (-sum(e.amount)) AS "amount!: SqlU256"
           FROM ledger_postings p
           JOIN ledger_entries e ON e.posting_id = p.id
           JOIN escrow_accounts a ON a.id = e.escrow_id
           WHERE p.id > $1 AND p.id <= $2 AND e.escrow_id IS NOT NULL AND e.hold_id IS NULL
           GROUP BY e.escrow_id, a.chain_escrow_id, p.token
           HAVING sum(e.amount) <> 0
           ORDER BY a.chain_escrow_id"#,
        covered,
        this.last_posting
    )
    .fetch_all(db)
    .await?;
    // Everything ever debited, per token: what the contract lets the leaves pay out.
    let settled_before = sqlx::query!(
        r#"SELECT token AS "token: SqlAddress", sum(amount) AS "amount!: SqlU256"
           FROM settlement_debits WHERE chain_id = $1 AND epoch < $2 GROUP BY token"#,
        chain,
        epoch as i64
    )
    .fetch_all(db)
    .await?;
    let mut settled: BTreeMap<Address, U256> = settled_before
        .into_iter()
        .map(|row| (row.token.0, row.amount.0))
        .collect();
    for row in &spent {
        *settled.entry(row.token.0).or_default() += row.amount.0;
    }
    let mut promised: BTreeMap<Address, U256> = BTreeMap::new();
    for ((_, token), standing) in &payees {
        *promised.entry(*token).or_default() += standing.leaf;
    }
    // The ledger's rules make this hold (see `money::ledger`); checked again because a root
    // that promised more than its epochs debited would leave the last claims unpaid.
    if let Some((token, leaves)) = promised
        .iter()
        .find(|(token, leaves)| **leaves > settled.get(*token).copied().unwrap_or_default())
    {
        return Err(BuildError::Unbacked {
            epoch,
            token: *token,
            leaves: *leaves,
            settled: settled.get(token).copied().unwrap_or_default(),
        });
    }

    // A fixed order, so that a rebuild writes identical rows.
    let mut standings: Vec<((Address, Address), PayeeState)> = payees
        .into_iter()
        .filter(|(_, standing)| !standing.leaf.is_zero())
        .collect();
    if standings.is_empty() {
        return Err(BuildError::Empty(epoch));
    }
    standings.sort_unstable_by_key(|(payee, _)| *payee);

    // Every token the tree pays moves to the new root, so each is in the totals, with zero
    // when nothing of it was debited this epoch; every debited token must be there too.
    let mut totals: BTreeMap<Address, U256> = standings.iter().map(|((_, token), _)| (*token, U256::ZERO)).collect();
    for row in &spent {
        *totals.entry(row.token.0).or_default() += row.amount.0;
    }
    let (mut escrows, mut chain_ids, mut tokens, mut amounts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for row in spent {
        escrows.push(row.escrow_id);
        chain_ids.push(row.chain_escrow_id);
        tokens.push(row.token);
        amounts.push(row.amount);
    }

    let mut conn = db.acquire().await?;
    let mut tx = conn.begin().await?;
    let mut leaves = Vec::with_capacity(standings.len());
    let mut balances = Vec::with_capacity(standings.len());
    for ((account, token), standing) in standings {
        leaves.push(PayoutLeaf {
            account,
            token,
            // Set by `index_leaves` below.
            index: 0,
            cumulative_amount: standing.leaf,
        });
        balances.push(standing.balance);
    }
    // In this transaction: an index is committed with the leaves that use it, or not at all.
    payee_index::index_leaves(&mut tx, chain_id, &mut leaves).await?;
    let tree = PayoutTree::new(leaves).map_err(|source| match source {
        TreeError::Empty => BuildError::Empty(epoch),
        source => BuildError::Tree { epoch, source },
    })?;
    let root = tree.root();

    let mut rows = String::with_capacity(tree.len() * 1300);
    for (index, (leaf, balance)) in tree.leaves().zip(&balances).enumerate() {
        rows.push_str(&format!(
            "{chain}\t{epoch}\t\\\\x{}\t\\\\x{}\t{}\t{balance}\t\\\\x",
            hex::encode(leaf.account),
            hex::encode(leaf.token),
            leaf.cumulative_amount
        ));
        for node in tree.proof(index) {
            rows.push_str(&hex::encode(node));
        }
        rows.push('\n');
    }

    let mut copy = tx
        .copy_in_raw("COPY payout_leaves (chain_id, epoch, account, token, cumulative, balance, proof) FROM STDIN")
        .await?;
    copy.send(rows.as_bytes()).await?;
    copy.finish().await?;
    sqlx::query!(
        "INSERT INTO settlement_debits (chain_id, epoch, escrow_id, chain_escrow_id, token, amount)
         SELECT $1, $2, * FROM UNNEST($3::uuid[], $4::bytea[], $5::bytea[], $6::numeric[])",
        chain,
        epoch as i64,
        &escrows as &[Uuid],
        &chain_ids as &[SqlB256],
        &tokens as &[SqlAddress],
        &amounts as &[SqlU256]
    )
    .execute(&mut *tx)
    .await?;
    let (total_tokens, total_amounts): (Vec<SqlAddress>, Vec<SqlU256>) = totals
        .into_iter()
        .map(|(token, amount)| (SqlAddress(token), SqlU256(amount)))
        .unzip();
    sqlx::query!(
        "INSERT INTO settlement_totals (chain_id, epoch, token, amount)
         SELECT $1, $2, * FROM UNNEST($3::bytea[], $4::numeric[])",
        chain,
        epoch as i64,
        &total_tokens as &[SqlAddress],
        &total_amounts as &[SqlU256]
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE settlement_epochs SET root = $3, built_at = now(), payees = $4
         WHERE chain_id = $1 AND epoch = $2",
        chain,
        epoch as i64,
        SqlB256(root) as SqlB256,
        tree.len() as i32
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(epoch, %root, payees = tree.len(), "epoch built");
    Ok(root)
}

/// What epoch `epoch` settles: its root, debits and per-token totals, as built. `settle`
/// sends them, and `activate` must send the same again.
pub async fn settlement(db: &PgPool, chain_id: u64, epoch: u64) -> Result<Option<Settlement>, sqlx::Error> {
    let Some(root) = sqlx::query_scalar!(
        r#"SELECT root AS "root?: SqlB256" FROM settlement_epochs WHERE chain_id = $1 AND epoch = $2"#,
        chain_id as i64,
        epoch as i64
    )
    .fetch_optional(db)
    .await?
    .flatten() else {
        return Ok(None);
    };
    let debits = sqlx::query!(
        r#"SELECT chain_escrow_id AS "chain_escrow_id: SqlB256", amount AS "amount: SqlU256"
           FROM settlement_debits
           WHERE chain_id = $1 AND epoch = $2 ORDER BY chain_escrow_id"#,
        chain_id as i64,
        epoch as i64
    )
    .fetch_all(db)
    .await?;
    let totals = sqlx::query!(
        r#"SELECT token AS "token: SqlAddress", amount AS "amount: SqlU256"
           FROM settlement_totals
           WHERE chain_id = $1 AND epoch = $2 ORDER BY token"#,
        chain_id as i64,
        epoch as i64
    )
    .fetch_all(db)
    .await?;
    Ok(Some(Settlement {
        epoch,
        root: root.0,
        debits: debits
            .into_iter()
            .map(|row| (row.chain_escrow_id.0, row.amount.0))
            .collect(),
        totals: totals.into_iter().map(|row| (row.token.0, row.amount.0)).collect(),
    }))
}

/// Marks `epoch` settled by `tx_hash`, in the caller's transaction, and drops the leaves of
/// epochs two or more behind: the contract accepts proofs of the current and the previous
/// root only.
pub async fn confirm(conn: &mut PgConnection, chain_id: u64, epoch: u64, tx_hash: B256) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE settlement_epochs SET confirmed_at = now(), settled_tx = $3
         WHERE chain_id = $1 AND epoch = $2 AND confirmed_at IS NULL",
        chain_id as i64,
        epoch as i64,
        SqlB256(tx_hash) as SqlB256
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "DELETE FROM payout_leaves WHERE chain_id = $1 AND epoch < $2",
        chain_id as i64,
        epoch as i64 - 1
    )
    .execute(&mut *conn)
    .await?;
    metrics::counter!("relayer_epochs_confirmed_total").increment(1);
    tracing::info!(epoch, tx = %tx_hash, "epoch settled on chain");
    Ok(())
}
