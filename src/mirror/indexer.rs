//! `adescrow indexer` (and `serve --with-indexer`): wires configuration, the deployment file
//! and the RPC endpoints into the chain follower of `adescrow-indexer`.

use std::time::Duration;

use adescrow_chain::rpc::ChainRpc;
use adescrow_indexer::events::Contracts;
use adescrow_indexer::follower::{Follower, FollowerConfig, Step};
use anyhow::Context;
use sqlx::PgPool;
use url::Url;

use crate::platform::config::FollowArgs;
use crate::platform::deploy::Deployment;
use crate::platform::worker::{Backoff, Role, StepError};
use crate::programs::market;

/// Builds a follower for the deployment named in `args`, after checking that the RPC serves
/// the chain the deployment was made on.
pub async fn follower(db: PgPool, rpc_urls: Vec<Url>, chain_id: u64, args: &FollowArgs) -> anyhow::Result<Follower> {
    let deployment = Deployment::load(&args.deployment)?;
    deployment.expect_chain(&args.deployment, chain_id)?;
    let rpc = ChainRpc::with_failover(rpc_urls, chain_id, args.rpc_timeout).role("indexer");
    rpc.check().await.context("the chain RPC is not usable")?;

    let contracts = Contracts {
        escrow: deployment.ad_escrow.address,
        consent: deployment.consent_registry.address,
    };
    let mut config = FollowerConfig::new(
        contracts,
        deployment.ad_escrow.block.min(deployment.consent_registry.block),
    );
    config.finality_depth = args.finality_depth;
    config.max_range = args.max_log_range.max(1);
    config.window = args.reorg_window.max(1);
    config.poll_interval = args.poll_interval;
    Ok(Follower::new(rpc, db, config))
}

/// The indexer role: one follower step after another, at once while there is more to read
/// and every poll interval once caught up. Transient faults are retried with backoff; a
/// fatal one (a reorg deeper than the window, an RPC error that will not pass) restarts the
/// role, which resumes from the checkpoint, and shows in `/readyz` until it is resolved.
///
/// After each step it pays the marketplace orders whose funding the mirror now shows, so
/// that a purchase is usable within one step of its funding block (not a poll later).
#[derive(Debug, Clone)]
pub struct Indexer {
    follower: Follower,
    db: PgPool,
    chain_id: u64,
}

impl Indexer {
    pub fn new(follower: Follower, db: PgPool, chain_id: u64) -> Self {
        Self { follower, db, chain_id }
    }
}

impl Role for Indexer {
    fn name(&self) -> &'static str {
        "indexer"
    }

    fn longest_quiet(&self) -> Duration {
        self.follower.config().poll_interval
    }

    fn retry(&self) -> Backoff {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        tracing::info!("indexer following the chain");
        Ok(())
    }

    async fn step(&mut self) -> Result<Duration, StepError> {
        let next = match self.follower.step().await {
            Ok(Step::Idle) => self.follower.config().poll_interval,
            Ok(_) => Duration::ZERO,
            Err(error) if error.is_fatal() => return Err(StepError::Fatal(error.into())),
            Err(error) => return Err(StepError::Retry(error.into())),
        };
        // Every step, not only those that read blocks: one that failed here is retried.
        market::after_index_step(&self.db, self.chain_id)
            .await
            .map_err(|error| StepError::Retry(error.into()))?;
        Ok(next)
    }
}
