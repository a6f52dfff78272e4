//! The outbox: every transaction the relayer owes the chain, as a Postgres row, moved along
//! by steps that each read their work from the database, so that a relayer killed between
//! any two of them picks up where it stopped.
//!
//! 1. [`Outbox::enqueue`] writes the row and takes its nonce in one database transaction.
//! 2. [`Outbox::sign_queued`] signs each queued row and stores the raw transaction and its
//!    hash before anything is broadcast.
//! 3. [`Outbox::check`] looks for a receipt of every hash sent for a row's nonce; a row not
//!    mined in time gets a replacement with the same nonce and fees raised by at least 10%,
//!    up to a ceiling (hitting it raises an alert and keeps the last attempt going).
//! 4. [`Outbox::broadcast`] sends every stored attempt not yet sent; "already known" counts
//!    as sent.
//! 5. [`Outbox::confirm`] re-reads each mined row's receipt: gone or in another block means
//!    a reorg removed it, and it goes back to be broadcast again; buried under enough
//!    blocks, it is confirmed (a settlement's epoch with it, in the same transaction).

use std::time::Duration;

use alloy::consensus::{TxEip1559, TxEnvelope, TypedTransaction};
use alloy::eips::Encodable2718;
use alloy::network::{Ethereum, EthereumWallet, NetworkWallet};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use sqlx::{Connection, PgConnection, PgPool};

use super::epoch;
use super::error::{Result, alert};
use super::rpc::{RelayerRpc, RpcFault};

/// What a row is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "outbox_kind", rename_all = "lowercase")]
pub enum Kind {
    Settle,
    Activate,
    Consent,
}

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

/// A transaction to send.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub kind: Kind,
    pub epoch: Option<u64>,
    pub target: Address,
    pub calldata: Bytes,
    pub gas_limit: u64,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    db: PgPool,
    rpc: RelayerRpc,
    wallet: EthereumWallet,
    sender: Address,
    chain_id: u64,
    config: OutboxConfig,
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

/// Takes the next nonce of `sender`: the database's count, or the chain's if another
/// transaction of the key got there first. The row lock serializes concurrent takers.
pub async fn take_nonce(conn: &mut PgConnection, chain_id: u64, sender: Address, mined: u64) -> Result<u64> {
    let nonce = sqlx::query_scalar!(
        r#"INSERT INTO relayer_nonces AS n (chain_id, sender, next_nonce) VALUES ($1, $2, $3 + 1)
           ON CONFLICT (chain_id, sender) DO UPDATE SET next_nonce = greatest(n.next_nonce, $3) + 1
           RETURNING next_nonce - 1 AS "nonce!""#,
        chain_id as i64,
        sender.as_slice(),
        mined as i64
    )
    .fetch_one(conn)
    .await?;
    Ok(nonce as u64)
}

impl Outbox {
    pub fn new(db: PgPool, rpc: RelayerRpc, wallet: EthereumWallet, chain_id: u64, config: OutboxConfig) -> Self {
        let sender = NetworkWallet::<Ethereum>::default_signer_address(&wallet);
        Self {
            db,
            rpc,
            wallet,
            sender,
            chain_id,
            config,
        }
    }

    pub fn sender(&self) -> Address {
        self.sender
    }

    /// Queues `new` with the next nonce. A settlement for an epoch that already has a live
    /// row is not queued twice: that row's id comes back.
    pub async fn enqueue(&self, new: NewTransaction) -> Result<i64> {
        let mined = self.rpc.mined_nonce(self.sender).await?;
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        if let Some(epoch) = new.epoch
            && let Some(existing) = sqlx::query_scalar!(
                "SELECT id FROM outbox WHERE chain_id = $1 AND kind = 'settle' AND epoch = $2 AND status <> 'failed'",
                self.chain_id as i64,
                epoch as i64
            )
            .fetch_optional(&mut *tx)
            .await?
        {
            return Ok(existing);
        }
        let nonce = take_nonce(&mut tx, self.chain_id, self.sender, mined).await?;
        let id = sqlx::query_scalar!(
            "INSERT INTO outbox (chain_id, sender, nonce, kind, epoch, target, calldata, gas_limit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            self.chain_id as i64,
            self.sender.as_slice(),
            nonce as i64,
            new.kind as Kind,
            new.epoch.map(|e| e as i64),
            new.target.as_slice(),
            new.calldata.as_ref(),
            new.gas_limit as i64
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(id, nonce, kind = ?new.kind, epoch = new.epoch, "transaction queued");
        Ok(id)
    }

    /// Signs every queued row that has a nonce, storing each signed transaction before it is
    /// broadcast. Returns how many were signed.
    pub async fn sign_queued(&self) -> Result<usize> {
        let queued = sqlx::query!(
            r#"SELECT id, nonce AS "nonce!", target, calldata, gas_limit FROM outbox
               WHERE chain_id = $1 AND sender = $2 AND status = 'queued' AND nonce IS NOT NULL
               ORDER BY nonce"#,
            self.chain_id as i64,
            self.sender.as_slice()
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
            let unsigned = self.transaction(row.nonce, row.gas_limit, &row.target, &row.calldata, fees);
            self.store_attempt(row.id, unsigned, fees).await?;
        }
        Ok(queued.len())
    }

    /// An outbox row as an EIP-1559 transaction with `fees`.
    fn transaction(&self, nonce: i64, gas_limit: i64, target: &[u8], calldata: &[u8], fees: Fees) -> TxEip1559 {
        TxEip1559 {
            chain_id: self.chain_id,
            nonce: nonce as u64,
            gas_limit: gas_limit as u64,
            max_fee_per_gas: fees.max,
            max_priority_fee_per_gas: fees.priority,
            to: TxKind::Call(Address::from_slice(target)),
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
             VALUES ($1, $2, $3, $4::text::numeric, $5::text::numeric)",
            hash.as_slice(),
            id,
            &raw,
            fees.max.to_string(),
            fees.priority.to_string()
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
            "SELECT a.tx_hash, a.raw, o.id FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id
             WHERE o.chain_id = $1 AND o.sender = $2 AND o.status = 'sent' AND a.broadcast_at IS NULL
             ORDER BY o.nonce, a.signed_at",
            self.chain_id as i64,
            self.sender.as_slice()
        )
        .fetch_all(&self.db)
        .await?;
        for attempt in &unsent {
            let hash = B256::from_slice(&attempt.tx_hash);
            match self.rpc.send_raw(&attempt.raw).await {
                Ok(_) | Err(RpcFault::AlreadyKnown) => {}
                // The nonce is used: by this row's other attempt (the check finds its
                // receipt) or by someone else (the check fails the row).
                Err(RpcFault::NonceTooLow) => {
                    tracing::info!(tx = %hash, "nonce already used; the receipt check decides")
                }
                // A costlier attempt of the same nonce is in the pool already.
                Err(RpcFault::Underpriced) => tracing::info!(tx = %hash, "an earlier attempt outbids this one"),
                Err(fault) => {
                    if !fault.is_transient() {
                        alert("broadcast_refused", &format!("outbox row {}: {fault}", attempt.id));
                    }
                    return Err(fault.into());
                }
            }
            sqlx::query!(
                "UPDATE outbox_attempts SET broadcast_at = now() WHERE tx_hash = $1",
                attempt.tx_hash
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
            r#"SELECT o.id, o.nonce AS "nonce!", o.target, o.calldata, o.gas_limit,
                      array_agg(a.tx_hash ORDER BY a.signed_at) AS "hashes!",
                      (array_agg(a.max_fee::text ORDER BY a.signed_at DESC))[1] AS "max_fee!",
                      (array_agg(a.priority_fee::text ORDER BY a.signed_at DESC))[1] AS "priority_fee!",
                      extract(epoch FROM now() - max(a.signed_at))::float8 AS "age!"
               FROM outbox o JOIN outbox_attempts a ON a.outbox_id = o.id
               WHERE o.chain_id = $1 AND o.sender = $2 AND o.status = 'sent'
               GROUP BY o.id ORDER BY o.nonce"#,
            self.chain_id as i64,
            self.sender.as_slice()
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
                if let Some(mined) = self.rpc.receipt(B256::from_slice(hash)).await? {
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
                    mined.tx_hash.as_slice(),
                    mined.block as i64,
                    mined.block_hash.as_slice(),
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
                // key took the nonce. The row's work is redone under a new nonce.
                alert(
                    "nonce_taken",
                    &format!("outbox row {} lost nonce {}", row.id, row.nonce),
                );
                self.fail(row.id, "nonce taken by another transaction of the relayer key")
                    .await?;
                continue;
            }
            if row.age < self.config.replace_after.as_secs_f64() {
                continue;
            }
            let last = Fees {
                max: row.max_fee.parse().unwrap_or(u128::MAX),
                priority: row.priority_fee.parse().unwrap_or(u128::MAX),
            };
            let estimate = self.rpc.fees().await?;
            let network = Fees {
                max: estimate.max_fee_per_gas,
                priority: estimate.max_priority_fee_per_gas,
            };
            match replacement_fees(last, network, self.config.fee_ceiling) {
                Some(fees) => {
                    let unsigned = self.transaction(row.nonce, row.gas_limit, &row.target, &row.calldata, fees);
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
                        row.hashes.last()
                    )
                    .execute(&self.db)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Confirms mined rows once buried deep enough, and sends back those a reorg removed.
    pub async fn confirm(&self) -> Result<()> {
        let mined = sqlx::query!(
            r#"SELECT id, kind AS "kind: Kind", epoch, mined_tx AS "mined_tx!", mined_block AS "mined_block!",
                      mined_block_hash AS "mined_block_hash!", reverted AS "reverted!"
               FROM outbox WHERE chain_id = $1 AND sender = $2 AND status = 'mined' ORDER BY nonce"#,
            self.chain_id as i64,
            self.sender.as_slice()
        )
        .fetch_all(&self.db)
        .await?;
        if mined.is_empty() {
            return Ok(());
        }
        let head = self.rpc.head().await?;
        for row in mined {
            let tx_hash = B256::from_slice(&row.mined_tx);
            let still = self.rpc.receipt(tx_hash).await?;
            if still.is_none_or(|r| r.block_hash.as_slice() != row.mined_block_hash.as_slice()) {
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
                    row.mined_tx
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                continue;
            }
            if head + 1 < row.mined_block as u64 + self.config.confirmations {
                continue;
            }
            let mut conn = self.db.acquire().await?;
            let mut tx = conn.begin().await?;
            if row.reverted {
                sqlx::query!(
                    "UPDATE outbox SET status = 'failed', error = 'reverted', updated_at = now() WHERE id = $1",
                    row.id
                )
                .execute(&mut *tx)
                .await?;
                tracing::warn!(id = row.id, tx = %tx_hash, kind = ?row.kind, "transaction reverted");
            } else {
                sqlx::query!(
                    "UPDATE outbox SET status = 'confirmed', updated_at = now() WHERE id = $1",
                    row.id
                )
                .execute(&mut *tx)
                .await?;
                if let (Kind::Settle, Some(epoch)) = (row.kind, row.epoch) {
                    epoch::confirm(&mut tx, self.chain_id, epoch as u64, tx_hash).await?;
                }
                tracing::info!(id = row.id, tx = %tx_hash, kind = ?row.kind, "transaction confirmed");
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Gives up on a row (its work is redone under a new row where that makes sense).
    async fn fail(&self, id: i64, reason: &str) -> Result<()> {
        sqlx::query!(
            "UPDATE outbox SET status = 'failed', error = $2, updated_at = now() WHERE id = $1",
            id,
            reason
        )
        .execute(&self.db)
        .await?;
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
}
