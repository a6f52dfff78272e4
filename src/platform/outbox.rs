//! The outbox: every transaction the service sends, whatever its kind, as a Postgres row
//! moved along by steps that each read their work from the database, so that a sender
//! killed between any two of them picks up where it stopped.
//!
//! A domain asks for a transaction with [`enqueue`], inside its own database transaction:
//! a [`Kind`] label, a key naming what the transaction is for (enqueueing the same key
//! again is a no-op while its row is live or confirmed), the target, the calldata, and a
//! gas limit if the domain simulated it itself. What the transaction achieved is the
//! domain's to record: a [`Followup`] registered for the kind runs in the database
//! transaction that makes a row final. The sender ([`Outbox`]) then:
//!
//! 1. [`Outbox::assign`]: simulates each row without a gas limit (a revert fails the row,
//!    in the kind's words, before any gas is spent) and gives rows their nonces, in the
//!    order they were enqueued.
//! 2. [`Outbox::sign_queued`]: signs each row that has a nonce and stores the raw
//!    transaction and its hash before anything is broadcast.
//! 3. [`Outbox::check`]: looks for a receipt of every hash sent for a row's nonce; a row not
//!    mined in time gets a replacement with the same nonce and fees raised by at least 10%,
//!    up to a ceiling (hitting it raises an alert and keeps the last attempt going).
//! 4. [`Outbox::broadcast`]: sends every stored attempt not yet sent; "already known"
//!    counts as sent.
//! 5. [`Outbox::confirm`]: re-reads each mined row's receipt: gone or in another block
//!    means a reorg removed it, and it goes back to be broadcast again; buried under enough
//!    blocks, it is final (confirmed, or failed if it reverted).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use adescrow_chain::rpc::{ChainRpc, RpcError};
use adescrow_chain::sql::{SqlAddress, SqlB256};
use alloy::consensus::{TxEip1559, TxEnvelope, TypedTransaction};
use alloy::eips::Encodable2718;
use alloy::network::{Ethereum, EthereumWallet, NetworkWallet};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use sqlx::{Connection, PgConnection, PgExecutor, PgPool};

use crate::money::Amount;

/// What a transaction is for, as a label its owning domain defines once
/// (`pub const SETTLE: Kind = Kind::new("settle")`). Lowercase letters, digits and `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(&'static str);

impl Kind {
    /// A label that is not lowercase ASCII letters, digits and `_` (starting with a letter)
    /// fails the constant's evaluation, so a bad one does not compile.
    pub const fn new(label: &'static str) -> Self {
        let bytes = label.as_bytes();
        assert!(
            !bytes.is_empty() && bytes[0].is_ascii_lowercase(),
            "a kind starts with a letter"
        );
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
                "a kind is lowercase letters, digits and _"
            );
            i += 1;
        }
        Self(label)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A transaction a domain asks for.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub kind: Kind,
    /// What the transaction is for, in the domain's terms (an epoch, a digest); at most
    /// one live or confirmed row has a given kind and key.
    pub key: String,
    pub target: Address,
    pub calldata: Bytes,
    /// `None`: the outbox simulates the call and refuses it if it would revert.
    pub gas_limit: Option<u64>,
}

/// The row [`enqueue`] found or created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: i64,
    /// `false` when a live or confirmed row of the same kind and key was there already.
    pub created: bool,
}

/// Where a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "outbox_status", rename_all = "lowercase")]
pub enum Status {
    /// Waiting for its nonce or its first signature.
    Queued,
    /// Signed (and broadcast, or about to be).
    Sent,
    /// A receipt is in.
    Mined,
    /// Buried under enough blocks.
    Confirmed,
    /// Refused in simulation, reverted, or its nonce was taken (the error says which).
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Mined => "mined",
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
        }
    }

    /// Not final yet.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Queued | Self::Sent | Self::Mined)
    }
}

/// A row as a domain reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub status: Status,
    /// The transaction that carried it, once mined.
    pub tx_hash: Option<B256>,
    pub error: Option<String>,
}

/// Queues `new` in the caller's transaction, unless a live or confirmed row of the same
/// kind and key exists: then that row comes back. Needs neither the chain nor the key that
/// signs, so any process may enqueue.
pub async fn enqueue(conn: &mut PgConnection, chain_id: u64, new: &NewTransaction) -> Result<Enqueued, sqlx::Error> {
    let created = sqlx::query_scalar!(
        "INSERT INTO outbox (chain_id, kind, key, target, calldata, gas_limit)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (chain_id, kind, key) WHERE status <> 'failed' DO NOTHING
         RETURNING id",
        chain_id as i64,
        new.kind.as_str(),
        new.key,
        SqlAddress(new.target) as SqlAddress,
        new.calldata.as_ref(),
        new.gas_limit.map(|g| g as i64)
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = created {
        tracing::info!(id, kind = %new.kind, key = new.key, "transaction queued");
        return Ok(Enqueued { id, created: true });
    }
    // The row that conflicted; rows are never deleted, so it is there.
    let id = sqlx::query_scalar!(
        "SELECT id FROM outbox WHERE chain_id = $1 AND kind = $2 AND key = $3 AND status <> 'failed'",
        chain_id as i64,
        new.kind.as_str(),
        new.key
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Enqueued { id, created: false })
}

/// The newest row of `kind` with `key`: the live or confirmed one if there is one (no row
/// can follow it), else the last that failed.
pub async fn latest(
    db: impl PgExecutor<'_>,
    chain_id: u64,
    kind: Kind,
    key: &str,
) -> Result<Option<Entry>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT id, status AS "status: Status", mined_tx AS "mined_tx?: SqlB256", error FROM outbox
           WHERE chain_id = $1 AND kind = $2 AND key = $3 ORDER BY id DESC LIMIT 1"#,
        chain_id as i64,
        kind.as_str(),
        key
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| Entry {
        id: row.id,
        status: row.status,
        tx_hash: row.mined_tx.map(B256::from),
        error: row.error,
    }))
}

/// How a row ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Mined, succeeded, and buried under the configured confirmations.
    Confirmed { tx_hash: B256 },
    /// Will not be retried under this row: `reason` says why.
    Failed { reason: String },
}

/// A row that just became final, as its [`Followup`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: i64,
    pub chain_id: u64,
    pub kind: Kind,
    pub key: String,
    pub outcome: Outcome,
}

/// A boxed future, for follow-ups behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The owning domain's part in the transactions of one kind. Both methods have defaults
/// for a kind that needs nothing more than its status in the outbox.
pub trait Followup: Send + Sync + fmt::Debug {
    /// Runs in the database transaction that makes the row final, so the domain's record
    /// and the outbox's agree after any crash. An error rolls both back; the step is
    /// retried.
    fn finished<'a>(&'a self, conn: &'a mut PgConnection, row: &'a Finished) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        let _ = (conn, row);
        Box::pin(async { Ok(()) })
    }

    /// The reason stored on a row whose simulation reverts, from the node's `message` and
    /// the revert `data` (which the domain knows how to decode).
    fn refused(&self, message: &str, data: Option<&[u8]>) -> String {
        let _ = data;
        format!("the chain refuses it: {message}")
    }
}

/// A kind that needs nothing more than its status in the outbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFollowup;

impl Followup for NoFollowup {}

/// How the outbox sends.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Blocks on top of (and including) the one a transaction is in before it counts.
    pub confirmations: u64,
    /// A transaction not mined this long after its last attempt is replaced.
    pub replace_after: Duration,
    /// The highest max fee per gas (wei) a replacement may offer.
    pub fee_ceiling: u128,
}

/// Why a step of the outbox did not finish.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("signing failed: {0}")]
    Signing(#[from] alloy::signers::Error),
}

impl OutboxError {
    /// Whether waiting and running the step again may help without anyone stepping in.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(_) => true,
            Self::Rpc(error) => error.is_transient(),
            Self::Signing(_) => false,
        }
    }
}

pub type Result<T, E = OutboxError> = std::result::Result<T, E>;

/// The counter alerting rules watch for conditions an operator must look at. The role that
/// sends holds the key, so its alerts are the relayer's.
const ALERTS_METRIC: &str = "relayer_alerts_total";

fn alert(reason: &'static str, detail: &str) {
    metrics::counter!(ALERTS_METRIC, "reason" => reason).increment(1);
    tracing::error!(reason, detail, "outbox alert");
}

/// Sends the outbox's rows with one key on one chain. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: PgPool,
    rpc: ChainRpc,
    wallet: EthereumWallet,
    sender: Address,
    chain_id: u64,
    config: OutboxConfig,
    followups: BTreeMap<Kind, Arc<dyn Followup>>,
}

/// Fees of one attempt, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fees {
    max: u128,
    priority: u128,
}

/// At least the 10% (plus one wei) nodes require of a replacement.
fn bump(fee: u128) -> u128 {
    fee.saturating_add(fee.div_ceil(10)).saturating_add(1)
}

/// The fees of a replacement for `last`, given what the network asks now; `None` when the
/// ceiling leaves no room for a valid replacement.
fn replacement_fees(last: Fees, network: Fees, ceiling: u128) -> Option<Fees> {
    let priority = bump(last.priority).max(network.priority);
    let max = bump(last.max).max(network.max).max(priority);
    if bump(last.max) > ceiling {
        return None;
    }
    let max = max.min(ceiling);
    Some(Fees {
        max,
        priority: priority.min(max),
    })
}

/// Estimates miss state that changes between estimate and inclusion; 25% covers it.
pub fn with_margin(gas: u64) -> u64 {
    gas + gas / 4 + 10_000
}

/// Takes the next nonce of `sender`: the database's count, or the chain's if another
/// transaction of the key got there first. The row lock serializes concurrent takers.
async fn take_nonce(conn: &mut PgConnection, chain_id: u64, sender: Address, mined: u64) -> Result<u64, sqlx::Error> {
    let nonce = sqlx::query_scalar!(
        r#"INSERT INTO outbox_nonces AS n (chain_id, sender, next_nonce) VALUES ($1, $2, $3 + 1)
           ON CONFLICT (chain_id, sender) DO UPDATE SET next_nonce = greatest(n.next_nonce, $3) + 1
           RETURNING next_nonce - 1 AS "nonce!""#,
        chain_id as i64,
        SqlAddress(sender) as SqlAddress,
        mined as i64
    )
    .fetch_one(conn)
    .await?;
    Ok(nonce as u64)
}

impl Outbox {
    /// Sends with `wallet`'s default signer; any `TxSigner` fits behind it (a local key, a
    /// keystore, a KMS). Rows of a kind without a follow-up ([`Outbox::handles`]) wait:
    /// they get no nonce until a sender that knows their kind runs.
    pub fn new(db: PgPool, rpc: ChainRpc, wallet: EthereumWallet, config: OutboxConfig) -> Self {
        let sender = NetworkWallet::<Ethereum>::default_signer_address(&wallet);
        let chain_id = rpc.chain_id();
        Self {
            db,
            rpc,
            wallet,
            sender,
            chain_id,
            config,
            followups: BTreeMap::new(),
        }
    }

    /// Sends rows of `kind`, with `followup` run as each becomes final.
    pub fn handles(mut self, kind: Kind, followup: impl Followup + 'static) -> Self {
        self.followups.insert(kind, Arc::new(followup));
        self
    }

    pub fn sender(&self) -> Address {
        self.sender
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn followup(&self, kind: &str) -> Option<(Kind, &dyn Followup)> {
        self.followups
            .iter()
            .find(|(k, _)| k.as_str() == kind)
            .map(|(k, f)| (*k, f.as_ref()))
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.followups.keys().map(|k| k.as_str()).collect()
    }

    /// Every step once, in order. Each is safe to repeat and to interrupt.
    pub async fn tick(&self) -> Result<()> {
        self.assign().await?;
        self.sign_queued().await?;
        self.check().await?;
        self.broadcast().await?;
        self.confirm().await
    }

    /// Simulates each queued row that has no gas limit, failing those the chain would
    /// refuse, and gives the rest the sender's next nonces in the order they were queued.
    /// Returns how many got a nonce.
    pub async fn assign(&self) -> Result<usize> {
        let waiting = sqlx::query!(
            r#"SELECT id, kind, key, target AS "target: SqlAddress", calldata, gas_limit FROM outbox
               WHERE chain_id = $1 AND status = 'queued' AND nonce IS NULL AND kind = ANY($2)
               ORDER BY id LIMIT 100"#,
            self.chain_id as i64,
            &self.kinds() as &[&str]
        )
        .fetch_all(&self.db)
        .await?;
        if waiting.is_empty() {
            return Ok(0);
        }
        let mined = self.rpc.mined_nonce(self.sender).await?;
        let mut assigned = 0;
        for row in waiting {
            let Some((kind, followup)) = self.followup(&row.kind) else {
                continue;
            };
            let gas_limit = match row.gas_limit {
                Some(gas) => gas as u64,
                None => {
                    let calldata = Bytes::from(row.calldata);
                    match self.rpc.estimate_gas(self.sender, row.target.0, &calldata).await {
                        Ok(gas) => with_margin(gas),
                        Err(RpcError::Reverted { message, data }) => {
                            let reason = followup.refused(&message, data.as_ref().map(|d| d.as_ref()));
                            tracing::info!(id = row.id, %kind, %reason, "refused in simulation");
                            let finished = Finished {
                                id: row.id,
                                chain_id: self.chain_id,
                                kind,
                                key: row.key,
                                outcome: Outcome::Failed { reason },
                            };
                            self.finish(followup, &finished).await?;
                            continue;
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            };
            let mut conn = self.db.acquire().await?;
            let mut tx = conn.begin().await?;
            let nonce = take_nonce(&mut tx, self.chain_id, self.sender, mined).await?;
            sqlx::query!(
                "UPDATE outbox SET sender = $2, nonce = $3, gas_limit = $4, updated_at = now() WHERE id = $1",
                row.id,
                SqlAddress(self.sender) as SqlAddress,
                nonce as i64,
                gas_limit as i64
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(id = row.id, %kind, key = row.key, nonce, "nonce taken");
            assigned += 1;
        }
        Ok(assigned)
    }

    /// Signs every queued row that has a nonce, storing each signed transaction before it is
    /// broadcast. Returns how many were signed.
    pub async fn sign_queued(&self) -> Result<usize> {
        let queued = sqlx::query!(
            r#"SELECT id, nonce AS "nonce!", target AS "target: SqlAddress", calldata, gas_limit AS "gas_limit!"
               FROM outbox
               WHERE chain_id = $1 AND sender = $2 AND status = 'queued' AND nonce IS NOT NULL
               ORDER BY nonce"#,
            self.chain_id as i64,
            SqlAddress(self.sender) as SqlAddress
        )
        .fetch_all(&self.db)
        .await?;
        if queued.is_empty() {
            return Ok(0);
        }
        let estimate = self.rpc.fees().await?;
        let max = estimate.max_fee_per_gas.min(self.config.fee_ceiling);
        let fees = Fees {
            max,
            priority: estimate.max_priority_fee_per_gas.min(max),
        };
        for row in &queued {
            let unsigned = self.transaction(row.nonce, row.gas_limit, row.target.0, &row.calldata, fees);
            self.store_attempt(row.id, unsigned, fees).await?;
        }
        Ok(queued.len())
    }

    /// An outbox row as an EIP-1559 transaction with `fees`.
    fn transaction(&self, nonce: i64, gas_limit: i64, target: Address, calldata: &[u8], fees: Fees) -> TxEip1559 {
        TxEip1559 {
            chain_id: self.chain_id,
            nonce: nonce as u64,
            gas_limit: gas_limit as u64,
            max_fee_per_gas: fees.max,
            max_priority_fee_per_gas: fees.priority,
            to: TxKind::Call(target),
            value: U256::ZERO,
            access_list: Default::default(),
            input: Bytes::copy_from_slice(calldata),
        }
    }

    /// Signs `unsigned` and stores it as an attempt of row `id` (marking the row sent).
    async fn store_attempt(&self, id: i64, unsigned: TxEip1559, fees: Fees) -> Result<B256> {
        let signed: TxEnvelope = NetworkWallet::<Ethereum>::sign_transaction_from(
            &self.wallet,
            self.sender,
            TypedTransaction::Eip1559(unsigned),
        )
        .await?;
        let hash = *signed.tx_hash();
        let raw = signed.encoded_2718();
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query!(
            "INSERT INTO outbox_attempts (tx_hash, outbox_id, raw, max_fee, priority_fee)
             VALUES ($1, $2, $3, $4, $5)",
            SqlB256(hash) as SqlB256,
            id,
            &raw,
            Amount(fees.max) as Amount,
            Amount(fees.priority) as Amount
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE outbox SET status = 'sent', updated_at = now() WHERE id = $1 AND status = 'queued'",
            id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(id, tx = %hash, max_fee = fees.max, priority_fee = fees.priority, "transaction signed and stored");
        Ok(hash)
    }

    /// Broadcasts every stored attempt that has not been sent yet. Returns how many went out.
    pub async fn broadcast(&self) -> Result<usize> {
        let unsent = sqlx::query!(
            r#"SELECT a.tx_hash AS "tx_hash: SqlB256", a.raw, o.id
               FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id
               WHERE o.chain_id = $1 AND o.sender = $2 AND o.status = 'sent' AND a.broadcast_at IS NULL
               ORDER BY o.nonce, a.signed_at"#,
            self.chain_id as i64,
            SqlAddress(self.sender) as SqlAddress
        )
        .fetch_all(&self.db)
        .await?;
        for attempt in &unsent {
            let hash = attempt.tx_hash.0;
            match self.rpc.send_raw(&attempt.raw).await {
                Ok(_) | Err(RpcError::AlreadyKnown) => {}
                // The nonce is used: by this row's other attempt (the check finds its
                // receipt) or by someone else (the check fails the row).
                Err(RpcError::NonceTooLow) => {
                    tracing::info!(tx = %hash, "nonce already used; the receipt check decides")
                }
                // A costlier attempt of the same nonce is in the pool already.
                Err(RpcError::Underpriced) => tracing::info!(tx = %hash, "an earlier attempt outbids this one"),
                Err(error) => {
                    if !error.is_transient() {
                        alert("broadcast_refused", &format!("outbox row {}: {error}", attempt.id));
                    }
                    return Err(error.into());
                }
            }
            sqlx::query!(
                "UPDATE outbox_attempts SET broadcast_at = now() WHERE tx_hash = $1",
                attempt.tx_hash as SqlB256
            )
            .execute(&self.db)
            .await?;
            metrics::counter!("relayer_broadcasts_total").increment(1);
            tracing::info!(id = attempt.id, tx = %hash, "transaction broadcast");
        }
        Ok(unsent.len())
    }

    /// Checks every sent row for a receipt of any of its attempts; replaces those not mined
    /// in time.
    pub async fn check(&self) -> Result<()> {
        let sent = sqlx::query!(
            r#"SELECT o.id, o.kind, o.key, o.nonce AS "nonce!", o.target AS "target: SqlAddress", o.calldata,
                      o.gas_limit AS "gas_limit!",
                      array_agg(a.tx_hash ORDER BY a.signed_at) AS "hashes!: Vec<SqlB256>",
                      (array_agg(a.max_fee ORDER BY a.signed_at DESC))[1] AS "max_fee!: Amount",
                      (array_agg(a.priority_fee ORDER BY a.signed_at DESC))[1] AS "priority_fee!: Amount",
                      extract(epoch FROM now() - max(a.signed_at))::float8 AS "age!"
               FROM outbox o JOIN outbox_attempts a ON a.outbox_id = o.id
               WHERE o.chain_id = $1 AND o.sender = $2 AND o.status = 'sent'
               GROUP BY o.id ORDER BY o.nonce"#,
            self.chain_id as i64,
            SqlAddress(self.sender) as SqlAddress
        )
        .fetch_all(&self.db)
        .await?;
        if sent.is_empty() {
            return Ok(());
        }
        let mut mined_nonce = None;
        for row in sent {
            let mut found = None;
            for hash in &row.hashes {
                if let Some(mined) = self.rpc.receipt(hash.0).await? {
                    found = Some(mined);
                    break;
                }
            }
            if let Some(mined) = found {
                sqlx::query!(
                    "UPDATE outbox SET status = 'mined', mined_tx = $2, mined_block = $3, mined_block_hash = $4,
                                       reverted = $5, updated_at = now()
                     WHERE id = $1 AND status = 'sent'",
                    row.id,
                    SqlB256(mined.tx_hash) as SqlB256,
                    mined.block as i64,
                    SqlB256(mined.block_hash) as SqlB256,
                    !mined.success
                )
                .execute(&self.db)
                .await?;
                tracing::info!(id = row.id, tx = %mined.tx_hash, block = mined.block, success = mined.success, "transaction mined");
                continue;
            }
            let chain_nonce = match mined_nonce {
                Some(n) => n,
                None => *mined_nonce.insert(self.rpc.mined_nonce(self.sender).await?),
            };
            if chain_nonce > row.nonce as u64 {
                // Mined, yet none of our hashes has a receipt: another transaction of this
                // key took the nonce. The owning domain may enqueue the work again.
                alert(
                    "nonce_taken",
                    &format!("outbox row {} lost nonce {}", row.id, row.nonce),
                );
                if let Some((kind, followup)) = self.followup(&row.kind) {
                    let finished = Finished {
                        id: row.id,
                        chain_id: self.chain_id,
                        kind,
                        key: row.key,
                        outcome: Outcome::Failed {
                            reason: "nonce taken by another transaction of the sending key".into(),
                        },
                    };
                    self.finish(followup, &finished).await?;
                } else {
                    tracing::warn!(
                        id = row.id,
                        kind = row.kind,
                        "no follow-up for this kind; left for a sender that has one"
                    );
                }
                continue;
            }
            if row.age < self.config.replace_after.as_secs_f64() {
                continue;
            }
            let last = Fees {
                max: row.max_fee.0,
                priority: row.priority_fee.0,
            };
            let estimate = self.rpc.fees().await?;
            let network = Fees {
                max: estimate.max_fee_per_gas,
                priority: estimate.max_priority_fee_per_gas,
            };
            match replacement_fees(last, network, self.config.fee_ceiling) {
                Some(fees) => {
                    let unsigned = self.transaction(row.nonce, row.gas_limit, row.target.0, &row.calldata, fees);
                    let hash = self.store_attempt(row.id, unsigned, fees).await?;
                    metrics::counter!("relayer_replacements_total").increment(1);
                    tracing::warn!(id = row.id, nonce = row.nonce, tx = %hash, max_fee = fees.max, "not mined in time; replaced with higher fees");
                }
                None => {
                    alert(
                        "fee_ceiling",
                        &format!(
                            "outbox row {} is stuck at the fee ceiling; resending its last attempt",
                            row.id
                        ),
                    );
                    // Nodes that dropped it take it back; it stays the best we may offer.
                    // (Grouped rows have an attempt; without one, NULL matches no row.)
                    sqlx::query!(
                        "UPDATE outbox_attempts SET broadcast_at = NULL, signed_at = now()
                         WHERE tx_hash = $1",
                        row.hashes.last().copied() as Option<SqlB256>
                    )
                    .execute(&self.db)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Makes mined rows final once buried deep enough, and sends back those a reorg
    /// removed.
    pub async fn confirm(&self) -> Result<()> {
        let mined = sqlx::query!(
            r#"SELECT id, kind, key, mined_tx AS "mined_tx!: SqlB256", mined_block AS "mined_block!",
                      mined_block_hash AS "mined_block_hash!: SqlB256", reverted AS "reverted!"
               FROM outbox WHERE chain_id = $1 AND sender = $2 AND status = 'mined' ORDER BY nonce"#,
            self.chain_id as i64,
            SqlAddress(self.sender) as SqlAddress
        )
        .fetch_all(&self.db)
        .await?;
        if mined.is_empty() {
            return Ok(());
        }
        let head = self.rpc.head().await?;
        for row in mined {
            let tx_hash = row.mined_tx.0;
            let still = self.rpc.receipt(tx_hash).await?;
            if still.is_none_or(|r| r.block_hash != row.mined_block_hash.0) {
                metrics::counter!("relayer_reorged_total").increment(1);
                tracing::warn!(id = row.id, tx = %tx_hash, block = row.mined_block, "a reorg removed the transaction; sending it again");
                let mut conn = self.db.acquire().await?;
                let mut tx = conn.begin().await?;
                sqlx::query!(
                    "UPDATE outbox SET status = 'sent', mined_tx = NULL, mined_block = NULL, mined_block_hash = NULL,
                                       reverted = NULL, updated_at = now()
                     WHERE id = $1",
                    row.id
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query!(
                    "UPDATE outbox_attempts SET broadcast_at = NULL WHERE tx_hash = $1",
                    row.mined_tx as SqlB256
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                continue;
            }
            if head + 1 < row.mined_block as u64 + self.config.confirmations {
                continue;
            }
            let outcome = if row.reverted {
                tracing::warn!(id = row.id, tx = %tx_hash, kind = row.kind, "transaction reverted");
                Outcome::Failed {
                    reason: "reverted".into(),
                }
            } else {
                tracing::info!(id = row.id, tx = %tx_hash, kind = row.kind, "transaction confirmed");
                Outcome::Confirmed { tx_hash }
            };
            match self.followup(&row.kind) {
                Some((kind, followup)) => {
                    let finished = Finished {
                        id: row.id,
                        chain_id: self.chain_id,
                        kind,
                        key: row.key,
                        outcome,
                    };
                    self.finish(followup, &finished).await?;
                }
                // Given a nonce by a sender that knew the kind; this one does not, so it
                // leaves the row for that sender to finish.
                None => tracing::warn!(id = row.id, kind = row.kind, "no follow-up for this kind; left mined"),
            }
        }
        Ok(())
    }

    /// Marks a row final and runs its kind's follow-up, in one database transaction.
    async fn finish(&self, followup: &dyn Followup, row: &Finished) -> Result<()> {
        let (status, error) = match &row.outcome {
            Outcome::Confirmed { .. } => (Status::Confirmed, None),
            Outcome::Failed { reason } => (Status::Failed, Some(reason.as_str())),
        };
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query!(
            "UPDATE outbox SET status = $2, error = $3, updated_at = now() WHERE id = $1",
            row.id,
            status as Status,
            error
        )
        .execute(&mut *tx)
        .await?;
        followup.finished(&mut tx, row).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gauges for dashboards and alerts: rows not yet final and the age of the oldest.
    pub async fn report(&self) -> Result<()> {
        let status = sqlx::query!(
            r#"SELECT count(*) AS "depth!",
                      coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS "oldest!"
               FROM outbox WHERE chain_id = $1 AND status IN ('queued', 'sent', 'mined')"#,
            self.chain_id as i64
        )
        .fetch_one(&self.db)
        .await?;
        metrics::gauge!("relayer_outbox_depth").set(status.depth as f64);
        metrics::gauge!("relayer_oldest_unconfirmed_seconds").set(status.oldest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GWEI: u128 = 1_000_000_000;

    #[test]
    fn replacements_raise_both_fees_by_at_least_ten_percent() {
        let last = Fees {
            max: 10 * GWEI,
            priority: GWEI,
        };
        let quiet = Fees { max: GWEI, priority: 1 };
        let fees = replacement_fees(last, quiet, 1_000 * GWEI).unwrap();
        assert!(fees.max * 10 >= last.max * 11, "max fee {fees:?}");
        assert!(fees.priority * 10 >= last.priority * 11, "priority fee {fees:?}");
    }

    #[test]
    fn replacements_follow_a_busier_network() {
        let last = Fees { max: GWEI, priority: 1 };
        let busy = Fees {
            max: 50 * GWEI,
            priority: 2 * GWEI,
        };
        assert_eq!(replacement_fees(last, busy, 1_000 * GWEI), Some(busy));
    }

    #[test]
    fn the_ceiling_caps_replacements_and_then_stops_them() {
        let last = Fees {
            max: 90 * GWEI,
            priority: GWEI,
        };
        let spike = Fees {
            max: 150 * GWEI,
            priority: GWEI,
        };
        let fees = replacement_fees(last, spike, 100 * GWEI).unwrap();
        assert_eq!(fees.max, 100 * GWEI, "capped at the ceiling");
        let at_ceiling = Fees {
            max: 100 * GWEI,
            priority: GWEI,
        };
        assert_eq!(replacement_fees(at_ceiling, at_ceiling, 100 * GWEI), None);
    }

    #[test]
    fn kinds_are_labels() {
        const FUND: Kind = Kind::new("fund_budget2");
        assert_eq!(FUND.as_str(), "fund_budget2");
        assert_eq!(FUND.to_string(), "fund_budget2");
    }
}
