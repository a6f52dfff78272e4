//! Follows one chain into the mirror, in two zones:
//!
//! - **Backfill**, below the finalized height (head minus the finality depth): wide
//!   `eth_getLogs` ranges, halved when the provider refuses or times out and doubled back on
//!   success, up to a cap. Blocks there are final, so no parent checks.
//! - **Head**, above it: block by block. Each block's parent must be the stored hash of the
//!   block before; on a mismatch the follower walks back through the stored window to the
//!   common ancestor and rolls the mirror back in the transaction that moves the checkpoint.
//!   A node that is merely behind is waited for, never taken for a reorg; a reorg deeper
//!   than the window stops the follower with an error rather than guessing.
//!
//! Each step is one database transaction (rows, window, checkpoint), so a crash at any point
//! loses nothing and duplicates nothing: the next start resumes from the checkpoint.

use std::future::Future;
use std::time::{Duration, Instant};

use adescrow_chain::rpc::{BlockRef, ChainRpc, RpcError};
use alloy::rpc::types::Filter;
use sqlx::PgPool;

use crate::events::{Contracts, Rows};
use crate::store::{self, Checkpoint};

#[derive(Debug, Clone)]
pub struct FollowerConfig {
    pub contracts: Contracts,
    /// The first block to mirror (the earliest deployment block).
    pub start_block: u64,
    /// Blocks this far below the head are final.
    pub finality_depth: u64,
    /// The widest `eth_getLogs` range.
    pub max_range: u64,
    /// How many recent blocks are kept to find a common ancestor; deeper reorgs are fatal.
    pub window: u64,
    /// How often to look for a new head when caught up.
    pub poll_interval: Duration,
}

impl FollowerConfig {
    pub fn new(contracts: Contracts, start_block: u64) -> Self {
        Self {
            contracts,
            start_block,
            finality_depth: 12,
            max_range: 10_000,
            window: 256,
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A range below the finalized height.
    Backfilled { from: u64, to: u64, rows: usize },
    /// One block near the head.
    Indexed { block: u64, rows: usize },
    /// A reorg was rolled back to the common ancestor.
    RolledBack { ancestor: u64, depth: u64 },
    /// The provider refused a log range; the next step tries a smaller one.
    ShrankRange { range: u64 },
    /// Nothing new (or the node is behind).
    Idle,
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "reorg deeper than the stored window: no common ancestor between block {floor} and {from}; \
         re-index from an earlier checkpoint or raise the window"
    )]
    DeepReorg { floor: u64, from: u64 },
}

impl FollowError {
    /// Faults that may pass are retried with backoff; the rest stop the follower. Of the
    /// RPC's, only a permanent one will not pass: a refused range is shrunk, and the answers
    /// about transactions do not come from the reads a follower makes.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Rpc(error) => matches!(error, RpcError::Permanent { .. }),
            Self::Database(_) => false,
            Self::DeepReorg { .. } => true,
        }
    }
}

/// A long backfill reports how far it got at most this often, so it is seen to move.
const BACKFILL_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Cloning gives a follower in the same state, reading from the same RPC and database.
#[derive(Debug, Clone)]
pub struct Follower {
    rpc: ChainRpc,
    db: PgPool,
    config: FollowerConfig,
    range: u64,
    last_progress: Instant,
}

impl Follower {
    pub fn new(rpc: ChainRpc, db: PgPool, config: FollowerConfig) -> Self {
        let range = config.max_range;
        Self {
            rpc,
            db,
            config,
            range,
            last_progress: Instant::now(),
        }
    }

    fn chain_id(&self) -> u64 {
        self.rpc.chain_id()
    }

    pub fn config(&self) -> &FollowerConfig {
        &self.config
    }

    /// Follows until `shutdown` resolves or a fatal error. Transient faults back off
    /// exponentially (up to 30 s) and never end the loop.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), FollowError> {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(200);
        loop {
            let wait = match self.step().await {
                Ok(Step::Idle) => self.config.poll_interval,
                Ok(_) => {
                    backoff = Duration::from_millis(200);
                    Duration::ZERO
                }
                Err(error) if error.is_fatal() => {
                    tracing::error!(%error, "indexer stopped");
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "indexer step failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One unit of progress: a backfill range, one head block, a rollback, or nothing.
    pub async fn step(&mut self) -> Result<Step, FollowError> {
        let head = self.rpc.head().await?;
        let finalized = head.saturating_sub(self.config.finality_depth);
        metrics::gauge!("indexer_head_block").set(head as f64);
        metrics::gauge!("indexer_finalized_block").set(finalized as f64);

        let checkpoint = store::checkpoint(&self.db, self.chain_id()).await?;
        let next = checkpoint.map_or(self.config.start_block, |c| c.indexed_block + 1);
        if let Some(checkpoint) = checkpoint {
            metrics::gauge!("indexer_indexed_block").set(checkpoint.indexed_block as f64);
            metrics::gauge!("indexer_lag_blocks").set(head.saturating_sub(checkpoint.indexed_block) as f64);
        }

        if next <= finalized {
            return self.backfill(next, finalized, head).await;
        }
        if next > head {
            // Nothing new: make sure what we hold is still the chain (a reorg at the same
            // height, a rollback, or one that happened while we were down). When a new block
            // exists, its parent check below does this job.
            if let Some(checkpoint) = checkpoint
                && let Some(step) = self.verify_tip(checkpoint.indexed_block.min(head)).await?
            {
                return Ok(step);
            }
            return Ok(Step::Idle);
        }
        let Some(block) = self.rpc.block(next).await? else {
            return Ok(Step::Idle); // this endpoint is behind; wait for it
        };
        if let Some(checkpoint) = checkpoint
            && let Some(parent) = store::block_hash(&self.db, self.chain_id(), checkpoint.indexed_block).await?
            && parent != block.parent_hash
        {
            return self.roll_back_from(checkpoint.indexed_block).await;
        }
        self.index_block(block, finalized, head).await
    }

    async fn backfill(&mut self, from: u64, finalized: u64, head: u64) -> Result<Step, FollowError> {
        let to = finalized.min(from + self.range - 1);
        let filter = self.filter().from_block(from).to_block(to);
        let logs = match self.rpc.logs(&filter).await {
            Ok(logs) => logs,
            // A timeout is how some providers refuse a range, so it shrinks the range too.
            Err(error @ (RpcError::RangeTooLarge { .. } | RpcError::Transient { .. })) if self.range > 1 => {
                self.range = (self.range / 2).max(1);
                tracing::info!(%error, range = self.range, "log range refused; shrinking");
                return Ok(Step::ShrankRange { range: self.range });
            }
            Err(error) => return Err(error.into()),
        };
        self.range = (self.range * 2).min(self.config.max_range);
        // The last block of the range seeds the window for the head zone's parent checks.
        let Some(last) = self.rpc.block(to).await? else {
            return Err(RpcError::Transient {
                call: "eth_getBlockByNumber",
                message: format!("block {to} missing"),
            }
            .into());
        };

        let mut rows = Rows::default();
        for log in &logs {
            rows.push_log(self.config.contracts, log);
        }
        let mut tx = self.db.begin().await?;
        store::insert(&mut tx, self.chain_id(), &rows).await?;
        store::record_block(&mut tx, self.chain_id(), last).await?;
        store::prune_window(&mut tx, self.chain_id(), to.saturating_sub(self.config.window)).await?;
        let checkpoint = Checkpoint {
            indexed_block: to,
            finalized_block: finalized,
            head_block: head,
        };
        store::save_checkpoint(&mut tx, self.chain_id(), checkpoint).await?;
        tx.commit().await?;
        metrics::counter!("indexer_rows_written_total").increment(rows.len() as u64);
        if to < finalized && self.last_progress.elapsed() >= BACKFILL_PROGRESS_EVERY {
            self.last_progress = Instant::now();
            tracing::info!(
                indexed = to,
                finalized,
                left = finalized - to,
                range = self.range,
                "backfilling"
            );
        }
        Ok(Step::Backfilled {
            from,
            to,
            rows: rows.len(),
        })
    }

    async fn index_block(&mut self, block: BlockRef, finalized: u64, head: u64) -> Result<Step, FollowError> {
        let logs = self.rpc.logs(&self.filter().at_block_hash(block.hash)).await?;
        let mut rows = Rows::default();
        for log in &logs {
            rows.push_log(self.config.contracts, log);
        }
        let mut tx = self.db.begin().await?;
        store::insert(&mut tx, self.chain_id(), &rows).await?;
        store::record_block(&mut tx, self.chain_id(), block).await?;
        store::prune_window(
            &mut tx,
            self.chain_id(),
            block.number.saturating_sub(self.config.window),
        )
        .await?;
        let checkpoint = Checkpoint {
            indexed_block: block.number,
            finalized_block: finalized.min(block.number),
            head_block: head,
        };
        store::save_checkpoint(&mut tx, self.chain_id(), checkpoint).await?;
        tx.commit().await?;
        metrics::counter!("indexer_rows_written_total").increment(rows.len() as u64);
        Ok(Step::Indexed {
            block: block.number,
            rows: rows.len(),
        })
    }

    /// Compares the stored hash at `height` with the chain's; a difference is a reorg (this
    /// also catches one that happened while the indexer was down).
    async fn verify_tip(&mut self, height: u64) -> Result<Option<Step>, FollowError> {
        let Some(stored) = store::block_hash(&self.db, self.chain_id(), height).await? else {
            return Ok(None);
        };
        match self.rpc.block(height).await? {
            Some(block) if block.hash != stored => Ok(Some(self.roll_back_from(height).await?)),
            _ => Ok(None),
        }
    }

    /// Walks back from `height` to the highest block whose stored hash the chain still has,
    /// and rolls the mirror back to it.
    async fn roll_back_from(&mut self, height: u64) -> Result<Step, FollowError> {
        let started = Instant::now();
        let floor = store::window_floor(&self.db, self.chain_id()).await?.unwrap_or(height);
        let mut ancestor = None;
        for number in (floor..=height).rev() {
            let stored = store::block_hash(&self.db, self.chain_id(), number).await?;
            let Some(on_chain) = self.rpc.block(number).await? else {
                continue;
            };
            if stored == Some(on_chain.hash) {
                ancestor = Some(number);
                break;
            }
        }
        let Some(ancestor) = ancestor else {
            return Err(FollowError::DeepReorg { floor, from: height });
        };
        // Blocks in the window were recorded with a checkpoint; without one there is nothing
        // to roll back.
        let Some(previous) = store::checkpoint(&self.db, self.chain_id()).await? else {
            return Ok(Step::Idle);
        };
        let depth = previous.indexed_block.saturating_sub(ancestor);

        let mut tx = self.db.begin().await?;
        let removed = store::rollback(&mut tx, self.chain_id(), ancestor).await?;
        let checkpoint = Checkpoint {
            indexed_block: ancestor,
            finalized_block: previous.finalized_block.min(ancestor),
            head_block: previous.head_block,
        };
        store::save_checkpoint(&mut tx, self.chain_id(), checkpoint).await?;
        tx.commit().await?;

        metrics::counter!("indexer_reorgs_total").increment(1);
        metrics::histogram!("indexer_reorg_depth_blocks").record(depth as f64);
        tracing::warn!(ancestor, depth, removed, took = ?started.elapsed(), "reorg rolled back");
        Ok(Step::RolledBack { ancestor, depth })
    }

    fn filter(&self) -> Filter {
        Filter::new().address(vec![self.config.contracts.escrow, self.config.contracts.consent])
    }
}
