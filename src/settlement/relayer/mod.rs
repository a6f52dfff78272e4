//! The settlement relayer: closes epochs of the ledger, settles their payout roots on chain
//! through the outbox, activates roots after their challenge window, and runs the outbox,
//! which also sends users' signed consent. One leader at a time across processes (a
//! Postgres advisory lock); a second instance waits for the lock.
//!
//! Every step reads its work from Postgres and writes its result there before the next
//! step starts, so a relayer killed anywhere resumes from the database alone: see
//! [`Relayer::tick`] for the order.

pub mod consent;
pub mod epoch;
pub mod error;
pub mod setup;

use std::future::Future;
use std::time::Duration;

use adescrow_chain::rpc::{ChainRpc, RpcError};
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes};
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::contracts::AdEscrow;
use crate::money::holds;
use crate::platform::outbox::{
    self, BoxFuture, Finished, Followup, Kind, NewTransaction, NoFollowup, Outbox, OutboxConfig, Outcome, Status,
    with_margin,
};
use crate::platform::worker::{Backoff, Health, Leadership, Role, StepError, Supervisor};
pub use epoch::EpochPolicy;
use error::alert;
pub use error::{RelayerError, Result};

/// An epoch's `settle()`, keyed by the epoch.
pub const SETTLE: Kind = Kind::new("settle");
/// `activate(debitsHash, totals)` of a pending root, keyed by its epoch.
pub const ACTIVATE: Kind = Kind::new("activate");

/// Settlement's part in the outbox: an epoch is settled once its `settle()` is final.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settled;

impl Followup for Settled {
    fn finished<'a>(&'a self, conn: &'a mut PgConnection, row: &'a Finished) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let Outcome::Confirmed { tx_hash } = row.outcome else {
                // `plan_settlement` queues the epoch again, after simulating it anew.
                return Ok(());
            };
            let epoch: u64 = row.key.parse().map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
            epoch::confirm(conn, row.chain_id, epoch, tx_hash).await
        })
    }
}

/// The advisory lock key of the relayer role (`'relayer'` in ASCII).
pub const LEADER_KEY: i64 = 0x0072_656c_6179_6572;

/// Everything the relayer needs to know.
#[derive(Debug, Clone)]
pub struct RelayerConfig {
    pub escrow: Address,
    /// The escrow's deployment block, where log searches start.
    pub escrow_block: u64,
    pub consent_registry: Address,
    pub epochs: EpochPolicy,
    pub outbox: OutboxConfig,
    /// How often the relayer looks for work.
    pub poll_interval: Duration,
    /// Below this balance (wei) the relayer key is reported as running low.
    pub low_balance: u128,
}

#[derive(Debug, Clone)]
pub struct Relayer {
    db: PgPool,
    rpc: ChainRpc,
    outbox: Outbox,
    config: RelayerConfig,
}

impl Relayer {
    /// `wallet` signs every transaction; any `TxSigner` fits behind it (a local key, a
    /// keystore, a KMS). The chain is `rpc`'s.
    pub fn new(db: PgPool, rpc: ChainRpc, wallet: EthereumWallet, config: RelayerConfig) -> Self {
        let outbox = Outbox::new(db.clone(), rpc.clone(), wallet, config.outbox.clone())
            .handles(SETTLE, Settled)
            .handles(ACTIVATE, NoFollowup)
            .handles(consent::KIND, consent::Refusal);
        Self {
            db,
            rpc,
            outbox,
            config,
        }
    }

    pub fn sender(&self) -> Address {
        self.outbox.sender()
    }

    fn chain_id(&self) -> u64 {
        self.rpc.chain_id()
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Runs the relayer role on its own until `shutdown` (the `relayer` command and tests;
    /// `serve` adds the role to its supervisor).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let mut supervisor = Supervisor::new(Health::default(), Duration::MAX, shutdown);
        supervisor.spawn(self);
        supervisor.wait().await;
        Ok(())
    }

    /// One pass over every step, in order. Each is safe to repeat and to interrupt.
    pub async fn tick(&self) -> Result<()> {
        self.close_epoch(OffsetDateTime::now_utc()).await?;
        self.plan_settlement().await?;
        self.outbox.tick().await?;
        self.plan_activation().await?;
        self.report().await
    }

    /// Releases the holds that are due, closes an epoch if one is due, and builds every
    /// closed epoch's tree.
    pub async fn close_epoch(&self, now: OffsetDateTime) -> Result<Option<u64>> {
        holds::release_due(&self.db, self.chain_id(), now).await?;
        let closed = epoch::close_if_due(&self.db, self.chain_id(), &self.config.epochs, now).await?;
        epoch::build_pending(&self.db, self.chain_id()).await?;
        Ok(closed)
    }

    /// Queues the settlement of the oldest built, unconfirmed epoch that has no live
    /// transaction, after simulating it; reconciles with the chain when it already holds
    /// the epoch. (`plan_activation` activates a pending root once its window has passed.)
    pub async fn plan_settlement(&self) -> Result<()> {
        let unconfirmed = sqlx::query_scalar!(
            "SELECT epoch FROM settlement_epochs
             WHERE chain_id = $1 AND root IS NOT NULL AND confirmed_at IS NULL ORDER BY epoch",
            self.chain_id() as i64
        )
        .fetch_all(&self.db)
        .await?;
        let mut next = None;
        for epoch in unconfirmed {
            let sending = outbox::latest(&self.db, self.chain_id(), SETTLE, &epoch.to_string()).await?;
            // A confirmed row has confirmed its epoch in the same transaction, so only a
            // live row can be found here; a failed one leaves the epoch to be queued again.
            if sending.is_none_or(|row| row.status == Status::Failed) {
                next = Some(epoch as u64);
                break;
            }
        }
        let Some(epoch) = next else { return Ok(()) };
        let Some(settlement) = epoch::settlement(&self.db, self.chain_id(), epoch).await? else {
            return Err(RelayerError::NeedsOperator(format!(
                "epoch {epoch} has a root but no settlement rows"
            )));
        };
        let calldata: Bytes = AdEscrow::settleCall {
            epoch,
            root: settlement.root,
            debits: settlement.debit_list(),
            totals: settlement.total_list(),
        }
        .abi_encode()
        .into();
        match self
            .rpc
            .estimate_gas(self.sender(), self.config.escrow, &calldata)
            .await
        {
            Ok(gas) => {
                let new = NewTransaction {
                    kind: SETTLE,
                    key: epoch.to_string(),
                    target: self.config.escrow,
                    calldata,
                    gas_limit: Some(with_margin(gas)),
                };
                let mut conn = self.db.acquire().await?;
                outbox::enqueue(&mut conn, self.chain_id(), &new).await?;
                Ok(())
            }
            Err(RpcError::Reverted { data, message }) => {
                let reason = data
                    .as_deref()
                    .and_then(|data| AdEscrow::AdEscrowErrors::abi_decode(data).ok());
                match reason {
                    Some(AdEscrow::AdEscrowErrors::AdEscrowWrongEpoch(wrong)) if wrong.expected > epoch => {
                        self.reconcile(epoch, settlement.root).await
                    }
                    // The previous root waits out its challenge window; `plan_activation`
                    // activates it when the window is over.
                    Some(AdEscrow::AdEscrowErrors::AdEscrowSettlementPending(_)) => Ok(()),
                    other => {
                        let detail = match other {
                            Some(error) => format!("{error:?}"),
                            None => message,
                        };
                        Err(RelayerError::NeedsOperator(format!(
                            "settling epoch {epoch} would revert: {detail}"
                        )))
                    }
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The chain is past `epoch`: done if the root it holds for it is ours.
    async fn reconcile(&self, epoch: u64, root: B256) -> Result<()> {
        let filter = Filter::new()
            .address(self.config.escrow)
            .event_signature(AdEscrow::Settled::SIGNATURE_HASH)
            .topic1(B256::from(alloy::primitives::U256::from(epoch)))
            .from_block(self.config.escrow_block);
        let logs = self.rpc.logs(&filter).await?;
        let ours = logs.iter().rev().find_map(|log| {
            let settled = AdEscrow::Settled::decode_log_data(log.data()).ok()?;
            (settled.root == root).then_some(log.transaction_hash?)
        });
        match ours {
            Some(tx_hash) => {
                let mut conn = self.db.acquire().await?;
                epoch::confirm(&mut conn, self.chain_id(), epoch, tx_hash).await?;
                tracing::info!(epoch, tx = %tx_hash, "epoch already on chain; reconciled");
                Ok(())
            }
            None => Err(RelayerError::NeedsOperator(format!(
                "epoch {epoch} is settled on chain with a root that is not ours"
            ))),
        }
    }

    /// Records which epochs claims can use (the chain's current root), and queues
    /// `activate(debitsHash, totals)` once a pending root's challenge window is over, so that
    /// claims use it and the next settlement is accepted. The arguments are what the epoch
    /// settled, as stored when it was built: the contract checks them against its commitment.
    pub async fn plan_activation(&self) -> Result<()> {
        let state = self
            .rpc
            .view(self.config.escrow, AdEscrow::settlementStateCall {}.abi_encode().into())
            .await?;
        let state = AdEscrow::settlementStateCall::abi_decode_returns(&state).map_err(|error| {
            RelayerError::NeedsOperator(format!("the escrow's settlementState() is not as expected: {error}"))
        })?;
        sqlx::query!(
            "UPDATE settlement_epochs SET activated_at = now()
             WHERE chain_id = $1 AND epoch <= $2 AND confirmed_at IS NOT NULL AND activated_at IS NULL",
            self.chain_id() as i64,
            state.currentEpoch as i64
        )
        .execute(&self.db)
        .await?;
        // A reorg can take an activation back out of the chain (the outbox sends it again):
        // until it lands again, claims cannot use that root, so its epoch is not activated.
        sqlx::query!(
            "UPDATE settlement_epochs SET activated_at = NULL
             WHERE chain_id = $1 AND epoch > $2 AND activated_at IS NOT NULL",
            self.chain_id() as i64,
            state.currentEpoch as i64
        )
        .execute(&self.db)
        .await?;
        // The chain's clock, not ours, decides when the window is over: `estimate_gas` below
        // reverts until then.
        if state.pendingClaimableAt.is_zero() || state.paused {
            return Ok(());
        }
        // The pending root is the last epoch's.
        let epoch = state.lastEpoch;
        let key = epoch.to_string();
        let sending = outbox::latest(&self.db, self.chain_id(), ACTIVATE, &key).await?;
        if sending.is_some_and(|row| row.status != Status::Failed) {
            return Ok(());
        }
        let Some(settlement) = epoch::settlement(&self.db, self.chain_id(), epoch).await? else {
            return Err(RelayerError::NeedsOperator(format!(
                "epoch {epoch} is pending on chain but was not built here"
            )));
        };
        let calldata: Bytes = AdEscrow::activateCall {
            debitsHash: settlement.debits_hash(),
            totals: settlement.total_list(),
        }
        .abi_encode()
        .into();
        let gas = match self
            .rpc
            .estimate_gas(self.sender(), self.config.escrow, &calldata)
            .await
        {
            Ok(gas) => gas,
            Err(RpcError::Reverted { data, message }) => {
                let reason = data
                    .as_deref()
                    .and_then(|data| AdEscrow::AdEscrowErrors::abi_decode(data).ok());
                return match reason {
                    // The chain's clock has not reached the end of the window yet (or the
                    // root was activated or revoked since the state was read), or a pause
                    // began: the next tick looks again.
                    Some(
                        AdEscrow::AdEscrowErrors::AdEscrowNotClaimableYet(_)
                        | AdEscrow::AdEscrowErrors::AdEscrowPaused(_),
                    ) => Ok(()),
                    // A commitment mismatch: what this database says the epoch settled is not
                    // what the chain holds.
                    other => {
                        let detail = match other {
                            Some(error) => format!("{error:?}"),
                            None => message,
                        };
                        Err(RelayerError::NeedsOperator(format!(
                            "activating epoch {epoch} would revert: {detail}"
                        )))
                    }
                };
            }
            Err(error) => return Err(error.into()),
        };
        let new = NewTransaction {
            kind: ACTIVATE,
            key,
            target: self.config.escrow,
            calldata,
            gas_limit: Some(with_margin(gas)),
        };
        let mut conn = self.db.acquire().await?;
        outbox::enqueue(&mut conn, self.chain_id(), &new).await?;
        Ok(())
    }

    /// Gauges for dashboards and alerts: epochs by state, outbox depth and the age of the
    /// oldest unconfirmed transaction, and the relayer key's balance.
    pub async fn report(&self) -> Result<()> {
        let status = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE confirmed_at IS NULL) AS "pending_epochs!",
                      count(*) FILTER (WHERE confirmed_at IS NOT NULL) AS "confirmed_epochs!"
               FROM settlement_epochs WHERE chain_id = $1"#,
            self.chain_id() as i64
        )
        .fetch_one(&self.db)
        .await?;
        metrics::gauge!("relayer_epochs", "state" => "pending").set(status.pending_epochs as f64);
        metrics::gauge!("relayer_epochs", "state" => "confirmed").set(status.confirmed_epochs as f64);
        self.outbox.report().await?;
        let balance = self.rpc.balance(self.sender()).await?;
        let balance = u128::try_from(balance).unwrap_or(u128::MAX);
        metrics::gauge!("relayer_balance_wei").set(balance as f64);
        if balance < self.config.low_balance {
            metrics::counter!("relayer_alerts_total", "reason" => "low_balance").increment(1);
            tracing::warn!(balance, sender = %self.sender(), "the relayer key is running low on gas money");
        }
        Ok(())
    }
}

/// The relayer role: one leader at a time, a [`Relayer::tick`] every poll interval. A step
/// that fails for a reason an operator must look at raises an alert and is retried like a
/// transient one, since the cause (a paused escrow, say) may be lifted; losing the lock's
/// session ends the run before another step is taken.
impl Role for Relayer {
    fn name(&self) -> &'static str {
        "relayer"
    }

    fn leadership(&self) -> Option<Leadership> {
        Some(Leadership {
            db: self.db.clone(),
            key: LEADER_KEY,
            poll: self.config.poll_interval.max(Duration::from_millis(500)),
        })
    }

    fn longest_quiet(&self) -> Duration {
        self.config.poll_interval
    }

    fn retry(&self) -> Backoff {
        Backoff::new(self.config.poll_interval, Duration::from_secs(30))
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        tracing::info!(sender = %self.sender(), "relayer active");
        Ok(())
    }

    async fn step(&mut self) -> std::result::Result<Duration, StepError> {
        match self.tick().await {
            Ok(()) => Ok(self.config.poll_interval),
            Err(error) => {
                if !error.is_transient() {
                    alert("step_failed", &error.to_string());
                }
                Err(StepError::Retry(error.into()))
            }
        }
    }

    async fn stop(&mut self) {
        tracing::info!("relayer stopped");
    }
}
